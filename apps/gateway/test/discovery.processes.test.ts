import request from 'supertest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  freePort,
  startBackend,
  startNodeProcess,
  testRedisUrl,
  uniquePrefix,
  type RunningProcess,
  type TestBackend,
  API,
  WORKER,
} from '@mcp-gateway/testing';

/**
 * Run-time registration with the real entry points: two API processes and two worker processes
 * (serving every service, so they follow the registry), one Redis.
 */
const ADMIN = 'admin-token-for-tests-0123456789';

let backend: TestBackend;
let healthHits: number[] = [];
let healthStatus = 200;
let openapiStatus = 200;
let extraOperation = false;
const procs: RunningProcess[] = [];
let apiA: ReturnType<typeof request>;
let apiB: ReturnType<typeof request>;
let mcpB: URL;
let workers: RunningProcess[];

const openapi = () => ({
  openapi: '3.0.3',
  info: { title: 'late', version: '1' },
  paths: {
    '/things/{id}': {
      get: { operationId: 'getThing', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }] },
    },
    ...(extraOperation ? { '/other': { post: { operationId: 'doOther' } } } : {}),
  },
});

beforeAll(async () => {
  backend = await startBackend((req) => {
    if (req.path === '/health') {
      healthHits.push(Date.now());
      return { status: healthStatus, body: { ok: healthStatus === 200 } };
    }
    if (req.path === '/openapi.json')
      return openapiStatus === 200 ? { status: 200, body: openapi() } : { status: openapiStatus, body: 'broken' };
    return { status: 200, body: { path: req.path } };
  });
  const [portA, portB] = [await freePort(), await freePort()];
  const env = {
    REDIS_URL: testRedisUrl(),
    MCP_REDIS_KEY_PREFIX: uniquePrefix('disc'),
    MCP_SERVICES: 'static',
    MCP_SERVICE_STATIC_ENDPOINT: backend.url,
    MCP_ADMIN_TOKEN: ADMIN,
    MCP_HEALTH_INTERVAL_MS: '300',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    NODE_ENV: 'test',
  };
  workers = [startNodeProcess(WORKER, env), startNodeProcess(WORKER, env)];
  const apis = [startNodeProcess(API, { ...env, PORT: String(portA) }), startNodeProcess(API, { ...env, PORT: String(portB) })];
  procs.push(...workers, ...apis);
  await Promise.all([...workers, ...apis].map((p) => p.waitForLog((l) => l.msg === 'worker ready' || l.msg === 'api ready')));
  apiA = request(`http://127.0.0.1:${portA}`);
  apiB = request(`http://127.0.0.1:${portB}`);
  mcpB = new URL(`http://127.0.0.1:${portB}/mcp`);
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGTERM', 5000)));
  await backend.close();
});

const admin = (r: request.Test) => r.set('Authorization', `Bearer ${ADMIN}`);
const names = async (api: ReturnType<typeof request>) =>
  ((await api.get('/mcp/services')).body.services as { name: string }[]).map((s) => s.name);
async function within<T>(ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

it('guards registration with the admin token and validates the body like the config', async () => {
  const body = { name: 'late', endpoint: backend.url };
  expect((await apiA.post('/mcp/services').send(body)).status).toBe(401);
  expect((await apiA.post('/mcp/services').set('Authorization', 'Bearer wrong-token').send(body)).status).toBe(401);
  const bad = await admin(apiA.post('/mcp/services')).send({ name: 'late', endpoint: 'ftp://x', rateLimit: { burstLimit: -1 } });
  expect(bad.status).toBe(400);
  expect(bad.body.error.details.map((d: { path: string }) => d.path)).toEqual(expect.arrayContaining(['endpoint', 'rateLimit.burstLimit']));
  expect((await admin(apiA.post('/mcp/services')).send({ name: 'static', endpoint: backend.url })).status).toBe(409);
  expect((await admin(apiA.delete('/mcp/services/static'))).status).toBe(409);
  // A definition that cannot load changes nothing.
  openapiStatus = 500;
  const broken = await admin(apiA.post('/mcp/services')).send({
    name: 'late',
    endpoint: backend.url,
    openapiUrl: `${backend.url}/openapi.json`,
  });
  expect(broken.status).toBe(502);
  expect(broken.body.error.message).toMatch(/nothing was changed/);
  openapiStatus = 200;
  expect(await names(apiA)).toEqual(['static']);
});

it('a registration is seen by every API and worker process within a second, and serves requests', async () => {
  const res = await admin(apiA.post('/mcp/services')).send({
    name: 'late',
    endpoint: backend.url,
    openapiUrl: `${backend.url}/openapi.json`,
    auth: { type: 'bearer', credentials: { token: 'registered-secret-token' } },
  });
  expect(res.status).toBe(201);
  expect(res.body).toMatchObject({ name: 'late', definitionSource: 'openapi', operations: 1 });
  expect(res.text).not.toContain('registered-secret-token');
  const t0 = Date.now();
  await within(1000, async () => ((await names(apiB)).includes('late') ? true : undefined));
  await Promise.all(workers.map((w) => w.waitForLog((l) => l.msg === 'consuming a registered service' && l.service === 'late', 1000)));
  expect(Date.now() - t0).toBeLessThan(1000);

  const call = await apiB.post('/mcp/request').send({ service: 'late', operation: 'getThing', parameters: { id: 'x1' } });
  expect(call.status).toBe(200);
  expect(call.body.data).toEqual({ path: '/things/x1' });
  expect(backend.requests.find((r) => r.path === '/things/x1')!.headers.authorization).toBe('Bearer registered-secret-token');
  const listed = await apiB.get('/mcp/services');
  expect(listed.body.services.find((s: { name: string }) => s.name === 'late')).toMatchObject({
    registered: true,
    status: 'healthy',
    operations: 1,
  });
  expect(listed.text).not.toContain('registered-secret-token');
});

it('refreshes an OpenAPI definition on demand; a broken document keeps the previous one', async () => {
  // An MCP client of the other API process: its tool list follows the refresh, and it is told.
  const client = new Client({ name: 'watcher', version: '1.0.0' });
  let changed = 0;
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
    changed += 1;
  });
  await client.connect(new StreamableHTTPClientTransport(mcpB));
  const toolNames = async () => (await client.listTools()).tools.map((t) => t.name).filter((n) => n.startsWith('late__'));
  expect(await toolNames()).toEqual(['late__getThing']);
  openapiStatus = 503;
  const failed = await admin(apiA.post('/mcp/services/late/refresh'));
  expect(failed.status).toBe(502);
  expect((await apiA.post('/mcp/request').send({ service: 'late', operation: 'getThing', parameters: { id: 'x2' } })).status).toBe(200);
  openapiStatus = 200;
  extraOperation = true;
  const ok = await admin(apiA.post('/mcp/services/late/refresh'));
  expect(ok.body).toMatchObject({ operations: 2 });
  // The other API process follows the announcement.
  await within(1000, async () => ((await apiB.get('/mcp/services/late/definition')).body.operations?.length === 2 ? true : undefined));
  const other = await apiB.post('/mcp/request').send({ service: 'late', operation: 'doOther', parameters: {} });
  expect(other.status).toBe(200);
  // The document declares no parameter for it: an argument it does not know is named, not sent.
  const extra = await apiB.post('/mcp/request').send({ service: 'late', operation: 'doOther', parameters: { a: 1 } });
  expect([extra.status, extra.body.error.details]).toEqual([
    400,
    [{ path: 'parameters.a', message: 'is not a parameter of this operation' }],
  ]);
  expect(await toolNames()).toEqual(['late__getThing', 'late__doOther']);
  await within(1000, async () => (changed > 0 ? true : undefined));
  await client.close();
});

it('deregistration removes the service everywhere; its queue is no longer consumed', async () => {
  expect((await admin(apiB.delete('/mcp/services/late'))).status).toBe(200);
  await within(1000, async () => (!(await names(apiA)).includes('late') ? true : undefined));
  await Promise.all(workers.map((w) => w.waitForLog((l) => l.msg === 'stopped consuming a removed service' && l.service === 'late', 1000)));
  expect((await apiA.post('/mcp/request').send({ service: 'late', operation: 'getThing', parameters: { id: 'x' } })).body.error.code).toBe(
    'UNKNOWN_SERVICE',
  );
  expect((await admin(apiA.delete('/mcp/services/late'))).status).toBe(404);
});

it('a TTL registration lives while heartbeats come and disappears after', async () => {
  const res = await admin(apiA.post('/mcp/services')).send({ name: 'temp', endpoint: backend.url, ttlSeconds: 1 });
  expect(res.status).toBe(201);
  expect((await admin(apiA.put('/mcp/services/static/heartbeat'))).status).toBe(404);
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 500));
    expect((await admin(apiB.put('/mcp/services/temp/heartbeat'))).status).toBe(200);
    expect(await names(apiA)).toContain('temp');
  }
  const stoppedAt = Date.now();
  await within(3000, async () => (!(await names(apiB)).includes('temp') ? true : undefined));
  expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(400);
  expect((await admin(apiA.put('/mcp/services/temp/heartbeat'))).status).toBe(404);
});

it('probes each healthPath once per interval across all replicas, and reports the result', async () => {
  expect((await admin(apiA.post('/mcp/services')).send({ name: 'probed', endpoint: backend.url, healthPath: '/health' })).status).toBe(201);
  await new Promise((r) => setTimeout(r, 300));
  healthHits = [];
  await new Promise((r) => setTimeout(r, 2100));
  // Four processes probe; one probe per 300 ms interval means about 7, never one per process per interval.
  expect(healthHits.length).toBeGreaterThanOrEqual(5);
  expect(healthHits.length).toBeLessThanOrEqual(9);
  const healthy = await apiB.get('/mcp/health');
  expect(healthy.body.services.probed).toMatchObject({ status: 'healthy' });
  expect(Date.now() - Date.parse(healthy.body.services.probed.lastCheck)).toBeLessThan(1500);
  healthStatus = 500;
  await within(2000, async () => ((await apiA.get('/mcp/health')).body.services.probed?.status === 'unhealthy' ? true : undefined));
  const listed = (await apiA.get('/mcp/services')).body.services.find((s: { name: string }) => s.name === 'probed');
  expect(listed).toMatchObject({ status: 'unhealthy', probe: { httpStatus: 500, error: 'answered 500' } });
  healthStatus = 200;
});
