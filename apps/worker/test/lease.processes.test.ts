import Redis from 'ioredis';
import request from 'supertest';
import {
  API,
  WORKER,
  freePort,
  startBackend,
  startNodeProcess,
  startRedisServer,
  uniquePrefix,
  type RunningProcess,
  type TestBackend,
  type TestRedis,
} from '@mcp-gateway/testing';

/**
 * Admission from leases across real processes: one API and three workers (the built entry points)
 * on a private Redis whose slow log records every command, so the admit.lua calls can be counted.
 */

const WORKERS = 3;
const RATE = 60; // tokens per second
const BURST = 60;
const LEASE_MAX = 32;
const LEASE_MS = 1000;
/** The README's bound on extra calls in any window: min(workers × lease, rate × lease life). */
const LEASE_BOUND = Math.min(WORKERS * LEASE_MAX, (RATE * LEASE_MS) / 1000);

let redis: (TestRedis & { stop(): Promise<void> }) | undefined;
let backend: TestBackend | undefined;
let procs: RunningProcess[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGTERM', 5000)));
  await backend?.close();
  await redis?.stop();
});

async function startCluster(): Promise<ReturnType<typeof request>> {
  redis = await startRedisServer({ args: ['--slowlog-log-slower-than', '0', '--slowlog-max-len', '100000'] });
  backend = await startBackend(() => ({ status: 200, body: { ok: true } }));
  const port = await freePort();
  const env: Record<string, string> = {
    REDIS_URL: redis.url,
    MCP_REDIS_KEY_PREFIX: uniquePrefix('lease'),
    MCP_SERVICES: 'svc',
    MCP_SERVICE_SVC_ENDPOINT: backend.url,
    MCP_SERVICE_SVC_RATE_LIMIT_RPM: String(RATE * 60),
    MCP_SERVICE_SVC_BURST_LIMIT: String(BURST),
    MCP_SERVICE_SVC_CONCURRENCY: '10',
    WORKER_LEASE_MAX_TOKENS: String(LEASE_MAX),
    WORKER_LEASE_MS: String(LEASE_MS),
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    NODE_ENV: 'test',
  };
  procs = [...Array.from({ length: WORKERS }, () => startNodeProcess(WORKER, env)), startNodeProcess(API, env)];
  // Ready is logged at info: wait for the processes to answer instead.
  const http = request(`http://127.0.0.1:${port}`);
  for (let i = 0; i < 200; i++) {
    const health = await http.get('/mcp/health').catch(() => undefined);
    if (health?.body?.services?.svc?.workers === WORKERS) return http;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the cluster did not start: ${procs.map((p) => p.output().slice(-500)).join('\n')}`);
}

/** admit.lua calls in the slow log: EVALSHA on the service's trial permits and bucket (record has no bucket, peek no permits). */
async function admitCalls(url: string): Promise<number> {
  const client = new Redis(url);
  const entries = (await client.call('SLOWLOG', 'GET', '-1')) as [number, number, number, string[]][];
  client.disconnect();
  return entries.filter(([, , , args]) => {
    const a = args.map(String);
    return a[0]?.toLowerCase() === 'evalsha' && a.some((x) => x.endsWith('{svc}:trials')) && a.some((x) => x.endsWith('{svc}:bucket'));
  }).length;
}

/** The most calls the backend received in any window of `ms` starting at a call. */
function mostInWindow(times: number[], ms: number): number {
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (j < times.length && times[j]! < times[i]! + ms) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

it('three worker processes admit from leases, and calls in any window stay within burst + rate × window + the lease bound', async () => {
  const http = await startCluster();
  const call = () =>
    http
      .post('/mcp/request')
      .send({ service: 'svc', operation: 'op', parameters: {}, metadata: { timeout: 30_000 } })
      .then((r) => r.status);
  const client = new Redis(redis!.url);
  await client.call('SLOWLOG', 'RESET');
  client.disconnect();

  // Below the rate (about 30 a second, 4 callers): the bucket stays full and workers admit from leases.
  const paced: number[] = [];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 15; i++) {
        paced.push(await call());
        await new Promise((r) => setTimeout(r, 100));
      }
    }),
  );
  expect(paced).toEqual(Array(60).fill(200));
  const admits = await admitCalls(redis!.url);
  // Without leases every call is at least one admit.lua call.
  expect(admits).toBeLessThan(60 * 0.75);

  // Then far over the rate at once: leases held meet a burst, and the limit must still hold.
  const N = 240;
  const statuses = await Promise.all(Array.from({ length: N }, call));
  expect(statuses).toEqual(Array(N).fill(200));
  const times = backend!.requests.map((r) => r.receivedAt).sort((a, b) => a - b);
  expect(times).toHaveLength(60 + N);
  for (const ms of [250, 500, 1000, 2000]) {
    // +2: the backend's millisecond clock and the refill's rounding.
    expect(mostInWindow(times, ms)).toBeLessThanOrEqual(BURST + Math.floor((RATE * ms) / 1000) + LEASE_BOUND + 2);
  }
  // And the limit was what paced the burst: its N calls take at least (N - burst - bound) / rate.
  const burstTimes = times.slice(60);
  expect(burstTimes[N - 1]! - burstTimes[0]!).toBeGreaterThanOrEqual(((N - BURST - LEASE_BOUND) / RATE) * 1000 - 100);
}, 90_000);
