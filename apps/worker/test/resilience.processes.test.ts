import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import {
  API,
  WORKER,
  freePort,
  startBackend,
  startNodeProcess,
  testRedisUrl,
  uniquePrefix,
  type BackendHandler,
  type RunningProcess,
  type TestBackend,
} from '@mcp-gateway/testing';

/**
 * Shared limits across processes: one API and three worker processes (the real entry points) on one
 * service, configured through the environment like a deployment.
 */

interface Cluster {
  http: ReturnType<typeof request>;
  backend: TestBackend;
  procs: RunningProcess[];
  stop(): Promise<void>;
}

async function startCluster(handler: BackendHandler, serviceEnv: Record<string, string>, workers = 3): Promise<Cluster> {
  const backend = await startBackend(handler);
  const port = await freePort();
  const env: Record<string, string> = {
    REDIS_URL: testRedisUrl(),
    MCP_REDIS_KEY_PREFIX: uniquePrefix('res'),
    MCP_SERVICES: 'svc',
    MCP_SERVICE_SVC_ENDPOINT: backend.url,
    MCP_RETRY_INITIAL_DELAY: '50',
    MCP_RETRY_MAX_DELAY: '200',
    MCP_RETRY_JITTER: 'false',
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    NODE_ENV: 'test',
    ...serviceEnv,
  };
  const procs = [...Array.from({ length: workers }, () => startNodeProcess(WORKER, env)), startNodeProcess(API, env)];
  const stop = async () => {
    await Promise.all(procs.map((p) => p.stop('SIGTERM', 5000)));
    await backend.close();
  };
  // A start that fails (a process that never says it is ready) stops what it started: nothing outlives the test.
  await Promise.all(procs.map((p) => p.waitForLog((l) => l.msg === 'worker ready' || l.msg === 'api ready'))).catch(
    async (err: unknown) => {
      await stop();
      throw err;
    },
  );
  return { http: request(`http://127.0.0.1:${port}`), backend, procs, stop };
}

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const call = (http: Cluster['http'], operation = 'op', extra: object = {}) =>
  http.post('/mcp/request').send({ service: 'svc', operation, parameters: {}, ...extra });

it('admitted calls never exceed burstLimit + rate × elapsed across three workers', async () => {
  cluster = await startCluster(() => ({ status: 200, body: { ok: true } }), {
    MCP_SERVICE_SVC_RATE_LIMIT_RPM: '600', // 10 per second
    MCP_SERVICE_SVC_BURST_LIMIT: '5',
    MCP_SERVICE_SVC_CONCURRENCY: '5',
  });
  const N = 30;
  const results = await Promise.all(Array.from({ length: N }, () => call(cluster!.http, 'op', { metadata: { timeout: 15_000 } })));
  expect(results.map((r) => r.status)).toEqual(Array(N).fill(200));
  const times = cluster.backend.requests.map((r) => r.receivedAt).sort((a, b) => a - b);
  expect(times).toHaveLength(N);
  const t0 = times[0]!;
  // The backend sees each call some time after its admission, and that delay varies (a worker's first
  // call opens its connection; a loaded machine stalls a process for a while): up to DELIVERY_MS of it
  // is allowed for. Without the limit, all 30 would arrive within that time.
  const DELIVERY_MS = 250;
  times.forEach((t, i) => {
    // The (i+1)-th call may come no earlier than burst + 10/s allows (+1 for clock granularity).
    expect(i + 1).toBeLessThanOrEqual(5 + Math.floor(((t - t0 + DELIVERY_MS) / 1000) * 10) + 1);
  });
  // And the limit did not starve it either: 30 calls at 10/s after a burst of 5 take about 2.5 s.
  expect(times[N - 1]! - t0).toBeGreaterThanOrEqual(2000);
  const workersUsed = new Set(cluster.backend.requests.map((r) => r.headers['x-gateway-worker']));
  expect(workersUsed.size).toBeGreaterThanOrEqual(2);
});

it('a failing backend stops receiving calls after the threshold, answers CIRCUIT_OPEN, and recovers once healed', async () => {
  let healthy = false;
  cluster = await startCluster(() => (healthy ? { status: 200, body: { ok: true } } : { status: 500, body: { error: 'boom' } }), {
    MCP_SERVICE_SVC_CB_FAILURE_THRESHOLD: '3',
    MCP_SERVICE_SVC_CB_RECOVERY_TIMEOUT: '1500',
    MCP_SERVICE_SVC_CB_HALF_OPEN_MAX_CALLS: '1',
    MCP_SERVICE_SVC_RETRY_MAX_ATTEMPTS: '1',
  });
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) statuses.push((await call(cluster.http)).status);
  expect(statuses.slice(0, 3)).toEqual([502, 502, 502]);
  expect(statuses.slice(3)).toEqual([503, 503, 503, 503, 503]);
  expect(cluster.backend.requests).toHaveLength(3);
  const open = await call(cluster.http);
  expect(open.body.error.code).toBe('CIRCUIT_OPEN');
  expect(Number(open.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  // Any API process reads the breaker from the shared state.
  expect((await cluster.http.get('/mcp/health')).body.services.svc).toMatchObject({ circuit: 'open', status: 'degraded', workers: 3 });
  expect((await cluster.http.get('/mcp/services')).body.services[0]).toMatchObject({ name: 'svc', circuit: 'open' });

  healthy = true;
  await new Promise((r) => setTimeout(r, 1600));
  const trial = await call(cluster.http);
  expect(trial.status).toBe(200);
  const after = await Promise.all(Array.from({ length: 5 }, () => call(cluster!.http)));
  expect(after.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
  // Log lines leave in batches, up to 100 ms after they were logged: wait for the recovery's lines.
  for (const to of ['half_open', 'closed']) {
    await Promise.any(cluster.procs.map((p) => p.waitForLog((l) => l.msg === 'circuit state changed' && l.to === to, 3000)));
  }
  const transitions = cluster.procs.flatMap((p) =>
    p
      .logLines()
      .filter((l) => l.msg === 'circuit state changed')
      .map((l) => `${l.from}->${l.to}`),
  );
  expect(transitions).toEqual(expect.arrayContaining(['closed->open', 'open->half_open', 'half_open->closed']));
  expect((await cluster.http.get('/mcp/health')).body.services.svc).toMatchObject({ circuit: 'closed', status: 'healthy' });
});

it('half-open lets at most halfOpenMaxCalls trials through across all workers', async () => {
  let healthy = false;
  let closedAt = Infinity;
  const healthyCalls: number[] = [];
  cluster = await startCluster(
    async () => {
      if (!healthy) return { status: 503, body: { error: 'down' } };
      healthyCalls.push(Date.now());
      await new Promise((r) => setTimeout(r, 400));
      // The first trial's success closes the circuit right after this answer.
      closedAt = Math.min(closedAt, Date.now());
      return { status: 200, body: { ok: true } };
    },
    {
      MCP_SERVICE_SVC_CB_FAILURE_THRESHOLD: '2',
      MCP_SERVICE_SVC_CB_RECOVERY_TIMEOUT: '1000',
      MCP_SERVICE_SVC_CB_HALF_OPEN_MAX_CALLS: '2',
      MCP_SERVICE_SVC_RETRY_MAX_ATTEMPTS: '1',
      MCP_SERVICE_SVC_CONCURRENCY: '10',
    },
  );
  await call(cluster.http);
  await call(cluster.http);
  expect((await call(cluster.http)).status).toBe(503);
  healthy = true;
  await new Promise((r) => setTimeout(r, 1100));
  // 12 at once while half-open: two trials go through; the rest wait in the queue until it closes.
  const calls = await Promise.all(Array.from({ length: 12 }, () => call(cluster!.http, 'op', { metadata: { timeout: 10_000 } })));
  expect(calls.map((r) => r.status)).toEqual(Array(12).fill(200));
  const duringHalfOpen = healthyCalls.filter((t) => t < closedAt);
  expect(duringHalfOpen.length).toBeGreaterThanOrEqual(1);
  expect(duringHalfOpen.length).toBeLessThanOrEqual(2);
  expect(healthyCalls).toHaveLength(12);
});

it('a flaky backend (fails twice, then succeeds) gives success with attempts: 3', async () => {
  let n = 0;
  cluster = await startCluster(() => (++n <= 2 ? { status: 503, body: { error: 'busy' } } : { status: 200, body: { n } }), {
    MCP_SERVICE_SVC_DEFINITION: definitionFile(),
    MCP_SERVICE_SVC_RETRY_MAX_ATTEMPTS: '3',
  });
  const res = await call(cluster.http, 'read');
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject({ status: 'success', data: { n: 3 }, metadata: { attempts: 3, backendStatus: 200 } });
  expect(cluster.backend.requests).toHaveLength(3);
});

it('a backend answering 429 with Retry-After: 1 is retried no sooner than 1 s later', async () => {
  let n = 0;
  cluster = await startCluster(
    () => (++n === 1 ? { status: 429, headers: { 'Retry-After': '1' }, body: { error: 'slow down' } } : { status: 200, body: { n } }),
    { MCP_SERVICE_SVC_DEFINITION: definitionFile(), MCP_SERVICE_SVC_RETRY_MAX_ATTEMPTS: '3' },
    1,
  );
  const res = await call(cluster.http, 'read');
  expect(res.status).toBe(200);
  expect(res.body.metadata.attempts).toBe(2);
  const [first, second] = cluster.backend.requests;
  expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(1000);
});

function definitionFile(): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'mcp-def-')), 'svc.json');
  writeFileSync(file, JSON.stringify({ operations: [{ name: 'read', method: 'GET', path: '/read' }] }));
  return file;
}
