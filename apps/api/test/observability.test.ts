import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { capturingLogger, startGateway, type Running } from './harness';

/** Metrics and logs after real traffic: the values, not just their presence. */
let backend: TestBackend;
let gw: Running;
const log = capturingLogger('info');

beforeAll(async () => {
  backend = await startBackend((req) =>
    req.path.startsWith('/fail') ? { status: 500, body: { error: 'boom' } } : { status: 200, body: { ok: true }, delayMs: 20 },
  );
  gw = await startGateway(
    {
      retryPolicy: { maxAttempts: 2, backoffStrategy: 'linear', initialDelay: 10, maxDelay: 10, jitter: false },
      services: {
        users: {
          endpoint: backend.url,
          operations: [
            {
              name: 'getUser',
              method: 'GET',
              path: '/users/{id}',
              parameters: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
            },
            { name: 'fail', method: 'GET', path: '/fail' },
          ],
        },
        rpc: { endpoint: backend.url },
      },
    },
    undefined,
    { logger: log.logger },
  );
  for (let i = 0; i < 4; i++) {
    const res = await gw.http
      .post('/mcp/request')
      .set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')
      .send({ service: 'users', operation: 'getUser', parameters: { id: `u${i}` }, metadata: { agentId: 'planner' } });
    expect(res.status).toBe(200);
  }
  expect((await gw.http.post('/mcp/request').send({ service: 'users', operation: 'fail' })).status).toBe(502);
  for (const op of ['alpha', 'beta', 'gamma'])
    expect((await gw.http.post('/mcp/request').send({ service: 'rpc', operation: op })).status).toBe(200);
  expect((await gw.http.post('/mcp/request').send({ service: 'nope', operation: 'x' })).status).toBe(404);
  expect((await gw.http.get('/mcp/requests/no-such-request')).status).toBe(404);
});

afterAll(async () => {
  await gw.close();
  await backend.close();
});

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    const got = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('GET /metrics', () => {
  it('counts ended requests by service, operation and outcome, with bounded labels', async () => {
    const res = await gw.http.get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const text = res.text;
    expect(sample(text, 'mcp_gateway_requests_total', { service: 'users', operation: 'getUser', outcome: 'success' })).toBe(4);
    expect(sample(text, 'mcp_gateway_requests_total', { service: 'users', operation: 'fail', outcome: 'BACKEND_ERROR' })).toBe(1);
    // Operations of a service without definitions are whatever callers send: one label value for all.
    expect(sample(text, 'mcp_gateway_requests_total', { service: 'rpc', operation: '_dynamic', outcome: 'success' })).toBe(3);
    expect(text).not.toMatch(/operation="alpha"/);
    expect(sample(text, 'mcp_gateway_retries_total', { service: 'users' })).toBe(1);
    expect(sample(text, 'mcp_gateway_backend_duration_seconds_count', { service: 'users', operation: 'fail' })).toBe(2);
    expect(sample(text, 'mcp_gateway_request_duration_seconds_count', { service: 'users', outcome: 'success' })).toBe(4);
    expect(sample(text, 'mcp_gateway_queue_wait_seconds_count', { service: 'users' })).toBe(5);
    expect(sample(text, 'mcp_gateway_http_requests_total', { route: '/mcp/request', method: 'POST', status: '200' })).toBe(7);
    expect(sample(text, 'mcp_gateway_http_requests_total', { route: '/mcp/requests/:id', method: 'GET', status: '404' })).toBe(1);
    expect(sample(text, 'mcp_gateway_api_errors_total', { code: 'UNKNOWN_SERVICE' })).toBe(1);
    expect(sample(text, 'mcp_gateway_circuit_state', { service: 'users' })).toBe(0);
    expect(sample(text, 'mcp_gateway_rate_limiter_tokens', { service: 'users' })).toBeGreaterThan(40);
    expect(sample(text, 'mcp_gateway_queue_jobs', { service: 'users', state: 'waiting' })).toBe(0);
    // The test's one worker pool serves every service (from its heartbeat).
    expect(sample(text, 'mcp_gateway_workers', { service: 'users' })).toBe(1);
    expect(sample(text, 'mcp_gateway_sync_waiters', {})).toBeUndefined();
    expect(text).toMatch(/^mcp_gateway_sync_waiters 0$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    // No request id, correlation id or trace id ever becomes a label.
    expect(text).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/);
    expect(text).not.toContain('0af7651916cd43dd8448eb211c80319c');
  });
});

describe('GET /mcp/services/:name/metrics', () => {
  it('answers the shared numbers: circuit, limiter, queue, latency percentiles and counts', async () => {
    // Workers write their request stats every STATS_FLUSH_MS (250 ms), not per request.
    let res = await gw.http.get('/mcp/services/users/metrics');
    for (let tries = 0; res.body.latency?.window !== 5 && tries < 50; tries++) {
      await new Promise((r) => setTimeout(r, 100));
      res = await gw.http.get('/mcp/services/users/metrics');
    }
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      service: 'users',
      circuit: { state: 'closed', failures: 2 },
      rateLimiter: { capacity: 50, refillPerSecond: 10 },
      queue: { waiting: 0, active: 0, delayed: 0, completed: 4, failed: 1 },
      counts: { success: 4, BACKEND_ERROR: 1 },
      latency: { window: 5 },
    });
    const { p50, p95, p99 } = res.body.latency;
    expect(p50).toBeGreaterThanOrEqual(20);
    expect(p95).toBeGreaterThanOrEqual(p50);
    expect(p99).toBeGreaterThanOrEqual(p95);
    // Every field of the contract is there while closed too: the times are null until it opens.
    expect(res.body.circuit).toEqual({ state: 'closed', failures: 2, successes: expect.any(Number), openedAt: null, nextAttemptAt: null });
    expect((await gw.http.get('/mcp/services/nope/metrics')).body.error.code).toBe('UNKNOWN_SERVICE');
  });
});

describe('logs', () => {
  it('one line per ended request with what an operator needs, the caller trace continued', () => {
    const finished = log.lines.filter((l) => l.msg === 'request finished');
    expect(finished).toHaveLength(8);
    const ok = finished.find((l) => l.operation === 'getUser')!;
    expect(ok).toMatchObject({ service: 'users', agentId: 'planner', outcome: 'success', attempts: 1, backendStatus: 200, level: 30 });
    for (const field of ['id', 'correlationId', 'queuedMs', 'processingTime', 'totalMs', 'backendMs'])
      expect(ok[field]).toEqual(expect.anything());
    expect(String(ok.traceparent)).toContain('0af7651916cd43dd8448eb211c80319c');
    const failed = finished.find((l) => l.operation === 'fail')!;
    expect(failed).toMatchObject({ outcome: 'BACKEND_ERROR', attempts: 2, backendStatus: 500 });
    expect(log.lines.filter((l) => l.msg === 'retry scheduled')).toHaveLength(1);
  });
});
