import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { ERROR_CODES } from '@mcp-gateway/protocol';
import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { eventually, startGateway, type Running } from './harness';

/**
 * The gateway's own API described (`GET /openapi.json`): a valid OpenAPI 3.1 document that lists every
 * route of the live app, and every answer the live API gives fits the document's schema for its
 * path, method and status.
 */
const ADMIN = 'admin-token-openapi-0123456789';
const KEY = 'key-openapi-0123456789';
const OTHER = 'key-openapi-other-0123';
const SLOW = 'key-openapi-slow-01234'; // one request in flight at most

interface Doc {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>>;
  components: { schemas: Record<string, object> };
}

let backend: TestBackend;
let gw: Running;
let doc: Doc;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
// zod writes a startsWith check as a pattern and this format, which only informs.
ajv.addFormat('starts_with', true);

beforeAll(async () => {
  backend = await startBackend((req) =>
    req.path === '/fail'
      ? { status: 500, body: { oops: true } }
      : { status: 200, body: { ok: true, path: req.path }, delayMs: req.path === '/slow' ? 300 : 0 },
  );
  gw = await startGateway({
    security: {
      adminToken: ADMIN,
      apiKeys: [
        { key: KEY, agentId: 'reader' },
        { key: OTHER, agentId: 'other' },
        { key: SLOW, agentId: 'slow-bot' },
      ],
    },
    agents: { 'slow-bot': { maxInFlight: 1 } },
    retryPolicy: { maxAttempts: 1, backoffStrategy: 'exponential', initialDelay: 10, maxDelay: 10, jitter: false },
    services: {
      users: {
        endpoint: backend.url,
        operations: [
          { name: 'getUser', method: 'GET', path: '/users/{id}' },
          { name: 'fail', method: 'GET', path: '/fail' },
          { name: 'slow', method: 'GET', path: '/slow' },
        ],
      },
    },
  });
  doc = (await gw.http.get('/openapi.json')).body as Doc;
});

afterAll(async () => {
  await gw.close();
  await backend.close();
});

/** `/mcp/requests/:id` → `/mcp/requests/{id}` */
const templated = (route: string) => route.replace(/:(\w+)/g, '{$1}');

/** The schema the document gives an answer (path template, method, status), with the components it refers to. */
function answerSchema(pathTemplate: string, method: string, status: number): object | undefined {
  const op = doc.paths[pathTemplate]?.[method];
  expect([pathTemplate, method, op !== undefined]).toEqual([pathTemplate, method, true]);
  const answer = op!.responses[String(status)];
  expect([pathTemplate, method, status, answer !== undefined]).toEqual([pathTemplate, method, status, true]);
  return answer!.content?.['application/json']?.schema;
}

/** Checks a live answer against the document. */
function fits(pathTemplate: string, method: string, res: { status: number; body: unknown }): void {
  const schema = answerSchema(pathTemplate, method, res.status);
  if (!schema) return;
  const validate = ajv.compile({ ...schema, components: doc.components });
  const ok = validate(res.body);
  expect([pathTemplate, method, res.status, ok ? 'fits' : JSON.stringify(validate.errors)]).toEqual([
    pathTemplate,
    method,
    res.status,
    'fits',
  ]);
}

const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document whose errors carry the codes of the one catalog', async () => {
    const { validate } = require('@readme/openapi-parser') as { validate(doc: object): Promise<{ valid: boolean; errors?: unknown }> };
    const result = await validate(structuredClone(doc));
    expect(result).toMatchObject({ valid: true });
    expect(doc.openapi).toBe('3.1.0');
    const codes = (doc.components.schemas.ErrorBody as { properties: { code: { enum: string[] } } }).properties.code.enum;
    expect(codes.sort()).toEqual([...ERROR_CODES].sort());
    // The schemas check what they say: a result without its metadata's fields does not fit.
    const isResult = ajv.compile({ $ref: '#/components/schemas/Result', components: doc.components });
    const metadata = { correlationId: 'c', service: 's', operation: 'o', attempts: 1, queuedMs: 0, processingTime: 1, completedAt: 't' };
    expect(isResult({ id: 'x', status: 'success', data: 1, metadata })).toBe(true);
    expect(isResult({ id: 'x', status: 'success', metadata: { correlationId: 'c' } })).toBe(false);
    expect(isResult({ id: 'x', status: 'done', metadata })).toBe(false);
  });

  it("describes every route of the live app (a page's own scripts and styles aside)", () => {
    interface Layer {
      route?: { path: string | string[]; methods: Record<string, boolean> };
      handle?: { stack?: Layer[] };
    }
    const routes = (stack: Layer[]): [string, string][] =>
      stack.flatMap((layer) => {
        if (layer.route) {
          const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
          const methods = Object.keys(layer.route.methods);
          // app.all: the methods an MCP endpoint answers.
          const used = methods.length > 3 ? ['get', 'post', 'delete'] : methods;
          return paths.flatMap((p) => used.map((m) => [templated(p), m] as [string, string]));
        }
        return layer.handle?.stack ? routes(layer.handle.stack) : [];
      });
    const live = routes((gw.api.app as unknown as { router: { stack: Layer[] } }).router.stack).filter(([p]) => !/\.(js|css)$/.test(p));
    expect(live.length).toBeGreaterThan(25);
    for (const [p, m] of live) expect([p, m, doc.paths[p]?.[m] !== undefined]).toEqual([p, m, true]);
  });
});

describe('the live answers fit the document', () => {
  it('POST /mcp/request: a result, an accepted request, and its errors', async () => {
    const send = (body: object, headers: Record<string, string> = bearer(KEY)) => gw.http.post('/mcp/request').set(headers).send(body);
    fits('/mcp/request', 'post', await send({ service: 'users', operation: 'getUser', parameters: { id: '7' } }));
    const accepted = await send(
      { service: 'users', operation: 'getUser', parameters: { id: '8' } },
      { ...bearer(KEY), Prefer: 'respond-async' },
    );
    expect(accepted.status).toBe(202);
    fits('/mcp/request', 'post', accepted);
    const failed = await send({ service: 'users', operation: 'fail' });
    expect([failed.status, failed.body.error.code]).toEqual([502, 'BACKEND_ERROR']);
    fits('/mcp/request', 'post', failed);
    for (const [body, headers, status] of [
      [{ service: 'users' }, bearer(KEY), 400],
      [{ service: 'users', operation: 'getUser' }, {}, 401],
      [{ service: 'nope', operation: 'x' }, bearer(KEY), 404],
      [{ service: 'users', operation: 'nope' }, bearer(KEY), 404],
    ] as const) {
      const res = await send(body, headers);
      expect(res.status).toBe(status);
      fits('/mcp/request', 'post', res);
    }
    const busy = await send({ service: 'users', operation: 'slow' }, { ...bearer(SLOW), Prefer: 'respond-async' });
    expect(busy.status).toBe(202);
    const limited = await send({ service: 'users', operation: 'slow' }, bearer(SLOW));
    expect(limited.status).toBe(429);
    fits('/mcp/request', 'post', limited);
    const conflict = await send({ id: accepted.body.id, service: 'users', operation: 'getUser', parameters: { id: '9' } });
    expect(conflict.status).toBe(409);
    fits('/mcp/request', 'post', conflict);
  });

  it('GET and DELETE /mcp/requests/{id}', async () => {
    const id = (
      await gw.http
        .post('/mcp/request')
        .set(bearer(KEY))
        .send({ service: 'users', operation: 'getUser', parameters: { id: '1' } })
    ).body.id;
    const poll = await gw.http.get(`/mcp/requests/${id}`).set(bearer(KEY));
    expect(poll.status).toBe(200);
    fits('/mcp/requests/{id}', 'get', poll);
    fits('/mcp/requests/{id}', 'get', await gw.http.get('/mcp/requests/no-such-id').set(bearer(KEY)));
    fits('/mcp/requests/{id}', 'get', await gw.http.get('/mcp/requests/bad%20id').set(bearer(KEY)));
    const ended = await gw.http.delete(`/mcp/requests/${id}`).set(bearer(KEY));
    expect(ended.status).toBe(409);
    fits('/mcp/requests/{id}', 'delete', ended);
    const queued = await gw.http
      .post('/mcp/request')
      .set({ ...bearer(KEY), Prefer: 'respond-async' })
      .send({ service: 'users', operation: 'slow' });
    const cancelled = await gw.http.delete(`/mcp/requests/${queued.body.id}`).set(bearer(KEY));
    expect(cancelled.status).toBe(200);
    fits('/mcp/requests/{id}', 'delete', cancelled);
  });

  it('services, their definitions and numbers, health and probes', async () => {
    for (const [template, url] of [
      ['/mcp/services', '/mcp/services'],
      ['/mcp/services/{name}/definition', '/mcp/services/users/definition'],
      ['/mcp/services/{name}/metrics', '/mcp/services/users/metrics'],
      ['/mcp/services/{name}/metrics', '/mcp/services/nope/metrics'],
    ] as const)
      fits(template, 'get', await gw.http.get(url).set(bearer(KEY)));
    for (const url of ['/mcp/health', '/mcp/health/live', '/mcp/health/ready']) {
      const res = await gw.http.get(url);
      expect(res.status).toBe(200);
      fits(url, 'get', res);
    }
    fits('/.well-known/oauth-protected-resource', 'get', await gw.http.get('/.well-known/oauth-protected-resource'));
  });

  it('registration at run time, and agents, with the admin token', async () => {
    const admin = bearer(ADMIN);
    const registered = await gw.http
      .post('/mcp/services')
      .set(admin)
      .send({ name: 'extra', endpoint: backend.url, ttlSeconds: 60, operations: [{ name: 'ping', method: 'GET', path: '/ping' }] });
    expect(registered.status).toBe(201);
    fits('/mcp/services', 'post', registered);
    fits('/mcp/services', 'post', await gw.http.post('/mcp/services').set(admin).send({ name: 'bad name!' }));
    fits('/mcp/services', 'post', await gw.http.post('/mcp/services').send({ name: 'x', endpoint: backend.url }));
    fits('/mcp/services/{name}/heartbeat', 'put', await gw.http.put('/mcp/services/extra/heartbeat').set(admin));
    fits('/mcp/services/{name}/refresh', 'post', await gw.http.post('/mcp/services/extra/refresh').set(admin));
    fits('/mcp/services/{name}', 'delete', await gw.http.delete('/mcp/services/extra').set(admin));
    fits('/mcp/services/{name}', 'delete', await gw.http.delete('/mcp/services/extra').set(admin));
    const usage = await eventually(async () => {
      const res = await gw.http.get('/mcp/agents/reader/usage').set(bearer(KEY));
      return res.body.services?.users ? res : undefined;
    });
    fits('/mcp/agents/{id}/usage', 'get', usage);
    fits('/mcp/agents/{id}/usage', 'get', await gw.http.get('/mcp/agents/reader/usage').set(bearer(OTHER)));
    fits('/mcp/agents', 'get', await gw.http.get('/mcp/agents').set(admin));
    fits('/mcp/agents', 'get', await gw.http.get('/mcp/agents').set(bearer(KEY)));
    // Dead letters: the BACKEND_ERROR of the first test is one.
    const letters = await eventually(async () => {
      const res = await gw.http.get('/mcp/dead-letters').set(admin);
      return res.body.deadLetters?.length ? res : undefined;
    });
    fits('/mcp/dead-letters', 'get', letters);
    const id = letters.body.deadLetters[0].id as string;
    fits('/mcp/dead-letters/{id}', 'get', await gw.http.get(`/mcp/dead-letters/${id}`).set(admin));
    fits('/mcp/dead-letters/{id}', 'get', await gw.http.get('/mcp/dead-letters/nope').set(admin));
    fits('/mcp/dead-letters/{id}/replay', 'post', await gw.http.post(`/mcp/dead-letters/${id}/replay`).set(admin).send({}));
    fits('/mcp/dead-letters/replay', 'post', await gw.http.post('/mcp/dead-letters/replay').set(admin).send({ service: 'users' }));
    fits('/mcp/dead-letters', 'delete', await gw.http.delete('/mcp/dead-letters').set(admin));
    fits('/mcp/dead-letters/{id}', 'delete', await gw.http.delete(`/mcp/dead-letters/${id}`).set(admin));
    fits('/mcp/dead-letters', 'delete', await gw.http.delete('/mcp/dead-letters?all=true').set(admin));
  });

  it('serves the reference page with its scripts and styles from the gateway itself (no CDN)', async () => {
    const page = await gw.http.get('/docs');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const urls = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(urls.length).toBeGreaterThanOrEqual(3);
    for (const url of urls) {
      expect(url.startsWith('/')).toBe(true);
      const asset = await gw.http.get(url);
      expect([url, asset.status]).toEqual([url, 200]);
    }
    expect((await gw.http.get('/docs/init.js')).text).toContain("url: '/openapi.json'");
  });
});
