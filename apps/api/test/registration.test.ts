import { freePort, startBackend, type TestBackend } from '@mcp-gateway/testing';
import { eventually, startGateway, type Running } from './harness';

const ADMIN = 'admin-token-registration-0123';
let backend: TestBackend;
let gw: Running;

beforeAll(async () => {
  backend = await startBackend((req) =>
    req.path.startsWith('/throttled') ? { status: 429, headers: { 'Retry-After': '5' }, body: {} } : { status: 200, body: {} },
  );
  // The worker pool serves a fixed list: a service registered later is never consumed here.
  gw = await startGateway(
    {
      security: { adminToken: ADMIN },
      services: { static: { endpoint: backend.url, operations: [{ name: 'throttled', method: 'GET', path: '/throttled' }] } },
      retryPolicy: { maxAttempts: 5, backoffStrategy: 'linear', initialDelay: 10, maxDelay: 100, jitter: false },
    },
    ['static'],
  );
});
afterAll(async () => {
  await gw.close();
  await backend.close();
});

it('removing a service ends the requests still waiting in its queue with UNKNOWN_SERVICE', async () => {
  const reg = await gw.http.post('/mcp/services').set('X-Admin-Token', ADMIN).send({ name: 'transient', endpoint: backend.url });
  expect(reg.status).toBe(201);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await gw.http.post('/mcp/request').set('Prefer', 'respond-async').send({ service: 'transient', operation: 'op' });
    expect(res.status).toBe(202);
    ids.push(res.body.id);
  }
  expect((await gw.http.delete('/mcp/services/transient').set('X-Admin-Token', ADMIN)).status).toBe(200);
  for (const id of ids) {
    const ended = await eventually(async () => {
      const p = await gw.http.get(`/mcp/requests/${id}`);
      return p.body.state === 'failed' ? p.body : undefined;
    });
    expect(ended.error.code).toBe('UNKNOWN_SERVICE');
  }
  expect(await gw.api.deps.broker.counts('transient')).toMatchObject({ waiting: 0, delayed: 0 });
});

it('a request waiting for a retry can be cancelled', async () => {
  const res = await gw.http.post('/mcp/request').set('Prefer', 'respond-async').send({ service: 'static', operation: 'throttled' });
  // Waiting for its retry: the record says so and the job sits in the delayed set.
  await eventually(async () =>
    (await gw.http.get(`/mcp/requests/${res.body.id}`)).body.state === 'retrying' &&
    (await (await gw.api.deps.broker.queue('static').getJob(res.body.id))?.isDelayed())
      ? true
      : undefined,
  );
  const del = await gw.http.delete(`/mcp/requests/${res.body.id}`);
  expect(del.status).toBe(200);
  expect(del.body).toMatchObject({ state: 'cancelled', error: { code: 'CANCELLED' } });
  expect(await gw.api.deps.broker.queue('static').getJob(res.body.id)).toBeUndefined();
  expect(backend.requests.filter((r) => r.path === '/throttled')).toHaveLength(1);
});

it('the queue UI (bull-board) needs the admin token and follows services registered at run time', async () => {
  expect((await gw.http.get('/admin/queues/api/queues')).status).toBe(401);
  const names = async () => {
    const res = await gw.http.get('/admin/queues/api/queues').set('X-Admin-Token', ADMIN);
    expect(res.status).toBe(200);
    return (res.body.queues as { name: string }[]).map((q) => q.name).sort();
  };
  // Both lanes of each service's queue.
  expect(await names()).toEqual(['{static}', '{static}urgent']);
  expect((await gw.http.post('/mcp/services').set('X-Admin-Token', ADMIN).send({ name: 'late', endpoint: backend.url })).status).toBe(201);
  expect(await eventually(async () => ((await names()).includes('{late}') ? await names() : undefined))).toEqual([
    '{late}',
    '{late}urgent',
    '{static}',
    '{static}urgent',
  ]);
  expect((await gw.http.delete('/mcp/services/late').set('X-Admin-Token', ADMIN)).status).toBe(200);
});

it('a registration whose OpenAPI document cannot be fetched (connection refused) is 502 BACKEND_ERROR, not a Redis outage', async () => {
  const dead = await freePort();
  const res = await gw.http
    .post('/mcp/services')
    .set('X-Admin-Token', ADMIN)
    .send({ name: 'unreachable', endpoint: backend.url, openapiUrl: `http://127.0.0.1:${dead}/openapi.json` });
  expect(res.status).toBe(502);
  expect(res.body.error).toMatchObject({ code: 'BACKEND_ERROR' });
  expect(res.body.error.message).toMatch(/could not be loaded, nothing was changed: .*ECONNREFUSED/);
  expect(res.headers['retry-after']).toBeUndefined();
  expect((await gw.http.get('/mcp/services')).body.services.map((s: { name: string }) => s.name)).not.toContain('unreachable');
});

it('a registration checks an OpenAPI document against its spec and answers what the import made of it', async () => {
  const doc = {
    openapi: '3.0.3',
    info: { title: 'odd', version: '1' },
    paths: {
      '/items/{id}': { get: { operationId: 'items/get', responses: { '200': { description: 'ok' } } } },
      '/items': { get: { responses: { '200': { description: 'ok' } } }, trace: { responses: { '200': { description: 'ok' } } } },
    },
  };
  const docs = await startBackend(() => ({ body: doc }));
  try {
    const res = await gw.http
      .post('/mcp/services')
      .set('X-Admin-Token', ADMIN)
      .send({ name: 'odd', endpoint: docs.url, openapiUrl: `${docs.url}/openapi.json` });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      definitionSource: 'openapi',
      operations: 2,
      document: { format: 'OpenAPI 3.0.3', title: 'odd', operationsInDocument: 3, filteredOut: 0, leftOut: 1 },
    });
    // The path parameter {id} is not declared: the spec check says so, the import still makes it an argument.
    expect(res.body.document.warnings.join(' ')).toMatch(/id/);
    const def = await gw.http.get('/mcp/services/odd/definition');
    expect(def.body.operations.map((o: { name: string }) => o.name)).toEqual(['items/get', 'get_items']);
    expect(def.body.document.notes).toContainEqual({
      where: 'TRACE /items',
      change: 'left-out',
      reason: 'TRACE echoes the request back, credentials included',
    });
    expect((await gw.http.delete('/mcp/services/odd').set('X-Admin-Token', ADMIN)).status).toBe(200);
  } finally {
    await docs.close();
  }
});
