import request from 'supertest';
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
  GATEWAY,
} from '@mcp-gateway/testing';

/**
 * The real entry points as separate processes (what compose and Kubernetes run):
 * one API and two workers on one service queue. Needs `npm run build` (npm test builds first).
 */

let backend: TestBackend;
const procs: RunningProcess[] = [];

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGTERM', 5000)));
  await backend?.close();
});

it('spreads requests over two worker processes and completes every one; WORKER_SERVICES picks the queues', async () => {
  backend = await startBackend((req) => ({ status: 200, body: { n: (req.body as { n: number }).n }, delayMs: 60 }));
  const port = await freePort();
  const env = {
    REDIS_URL: testRedisUrl(),
    MCP_REDIS_KEY_PREFIX: uniquePrefix('proc'),
    MCP_SERVICES: 'orders,billing',
    MCP_SERVICE_ORDERS_ENDPOINT: backend.url,
    MCP_SERVICE_ORDERS_CONCURRENCY: '4',
    MCP_SERVICE_BILLING_ENDPOINT: backend.url,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    NODE_ENV: 'test',
  };
  const metricsPort = await freePort();
  const workers = [
    startNodeProcess(WORKER, { ...env, WORKER_SERVICES: 'orders', WORKER_METRICS_PORT: String(metricsPort) }),
    startNodeProcess(WORKER, { ...env, WORKER_SERVICES: 'orders' }),
  ];
  const billingWorker = startNodeProcess(WORKER, { ...env, WORKER_SERVICES: 'billing' });
  const api = startNodeProcess(API, env);
  procs.push(api, ...workers, billingWorker);
  const [, , billingReady] = await Promise.all([
    ...workers.map((w) => w.waitForLog((l) => l.msg === 'worker ready')),
    billingWorker.waitForLog((l) => l.msg === 'worker ready'),
    api.waitForLog((l) => l.msg === 'api ready'),
  ]);

  const http = request(`http://127.0.0.1:${port}`);
  const N = 40;
  const results = await Promise.all(
    Array.from({ length: N }, (_, n) => http.post('/mcp/request').send({ service: 'orders', operation: 'place', parameters: { n } })),
  );
  expect(results.map((r) => r.status)).toEqual(Array(N).fill(200));
  expect(results.map((r) => r.body.data.n).sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, n) => n));
  expect(backend.requests).toHaveLength(N);

  const byWorker = new Map<string, number>();
  for (const r of backend.requests) {
    const w = String(r.headers['x-gateway-worker']);
    byWorker.set(w, (byWorker.get(w) ?? 0) + 1);
  }
  expect(byWorker.size).toBe(2);
  expect(byWorker.has(String(billingReady!.workerId))).toBe(false);
  for (const count of byWorker.values()) expect(count).toBeGreaterThanOrEqual(4);

  backend.requests.length = 0;
  const bill = await http.post('/mcp/request').send({ service: 'billing', operation: 'charge', parameters: { n: -1 } });
  expect(bill.status).toBe(200);
  expect(backend.requests[0]!.headers['x-gateway-worker']).toBe(billingReady!.workerId);

  const health = await http.get('/mcp/health');
  expect(health.body.workers.count).toBe(3);
  expect(health.body.services).toMatchObject({ orders: { workers: 2, status: 'healthy' }, billing: { workers: 1, status: 'healthy' } });

  // The first worker's own /metrics counts exactly the calls it made.
  const [first] = await Promise.all([workers[0]!.waitForLog((l) => l.msg === 'worker ready')]);
  const scraped = await request(`http://127.0.0.1:${metricsPort}`).get('/metrics');
  expect(scraped.status).toBe(200);
  const line = scraped.text
    .split('\n')
    .find((l) => l.startsWith('mcp_gateway_requests_total{') && l.includes('service="orders"') && l.includes('outcome="success"'));
  expect(Number(line?.split(' ').pop())).toBe(byWorker.get(String(first!.workerId)));

  // Each worker logged one line per request it finished, with the request's id (lines leave in
  // batches, up to 100 ms after they were logged).
  const finishedIds = () =>
    new Set(
      workers.flatMap((w) =>
        w
          .logLines()
          .filter((l) => l.msg === 'request finished')
          .map((l) => l.id),
      ),
    );
  for (let i = 0; i < 40 && finishedIds().size < results.length; i++) await new Promise((r) => setTimeout(r, 50));
  expect(finishedIds()).toEqual(new Set(results.map((r) => r.body.id)));
});

describe('start-up refusals and the all-in-one `npm run gateway`', () => {
  const exitOf = (p: RunningProcess) =>
    new Promise<number | null>((resolve) =>
      p.child.exitCode !== null ? resolve(p.child.exitCode) : p.child.once('exit', (code) => resolve(code)),
    );

  it('a bad variable stops the process with a message naming it, and no secret in it', async () => {
    const p = startNodeProcess(API, {
      REDIS_URL: testRedisUrl(),
      NODE_ENV: 'test',
      MCP_SERVICES: 'orders',
      MCP_SERVICE_ORDERS_ENDPOINT: 'http://127.0.0.1:1',
      MCP_SERVICE_ORDERS_TIMEOUT: 'soon',
      MCP_SERVICE_ORDERS_TOKEN: 'sk-should-not-appear',
      MCP_SERVICE_ORDERS_AUTH_TYPE: 'bearer',
    });
    procs.push(p);
    expect(await exitOf(p)).toBe(1);
    expect(p.output()).toContain('MCP_SERVICE_ORDERS_TIMEOUT');
    expect(p.output()).not.toContain('sk-should-not-appear');
  });

  it('production (the default of the process commands) refuses to serve open', async () => {
    const p = startNodeProcess(API, { REDIS_URL: testRedisUrl(), NODE_ENV: '', MCP_ENVIRONMENT: '' });
    procs.push(p);
    expect(await exitOf(p)).toBe(1);
    expect(p.output()).toMatch(/MCP_GATEWAY_API_KEYS.*production refuses to serve/);
  });

  it('runs API and workers in one process from the environment, behind inbound keys', async () => {
    const port = await freePort();
    const echo = await startBackend();
    const p = startNodeProcess(GATEWAY, {
      REDIS_URL: testRedisUrl(),
      MCP_REDIS_KEY_PREFIX: uniquePrefix('gw'),
      NODE_ENV: '',
      MCP_GATEWAY_API_KEYS: 'agent-key-0123456789:planner',
      MCP_SERVICES: 'echo',
      MCP_SERVICE_ECHO_ENDPOINT: echo.url,
      PORT: String(port),
      HOST: '127.0.0.1',
    });
    procs.push(p);
    try {
      await p.waitForLog((l) => l.msg === 'api ready');
      const http = request(`http://127.0.0.1:${port}`);
      expect((await http.post('/mcp/request').send({ service: 'echo', operation: 'ping' })).status).toBe(401);
      const ok = await http
        .post('/mcp/request')
        .set('Authorization', 'Bearer agent-key-0123456789')
        .send({ service: 'echo', operation: 'ping', parameters: { n: 1 } });
      expect(ok.status).toBe(200);
      expect(ok.body.data).toMatchObject({ method: 'POST', path: '/ping', body: { n: 1 } });
      expect(await p.stop('SIGTERM')).toBe(0);
    } finally {
      await echo.close();
    }
  });
});
