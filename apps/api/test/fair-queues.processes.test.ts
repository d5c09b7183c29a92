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
 * Fair queues across real processes: one worker process serving a slow service 4 calls at a time,
 * and two API processes on one Redis, one sharing the service fairly among agents (the default) and
 * one with MCP_FAIR_QUEUES=false (the control: first come, first served).
 */
const CALL_MS = 100;
const SLOTS = 4;
const KEYS = {
  flood: 'key-flood-0123456789', // 600/min with a burst of 200: its flood is held to that
  steady: 'key-steady-0123456789',
  rush: 'key-rush-01234567890', // no quota: floods the control
  heavy: 'key-heavy-0123456789', // weight 3
  light: 'key-light-0123456789', // weight 1
};

let redis: (TestRedis & { stop(): Promise<void> }) | undefined;
let backend: TestBackend;
let procs: RunningProcess[] = [];
let fair: ReturnType<typeof request>;
let fifo: ReturnType<typeof request>;

beforeAll(async () => {
  redis = await startRedisServer();
  backend = await startBackend(() => ({ status: 200, body: { ok: true }, delayMs: CALL_MS }));
  const [fairPort, fifoPort] = [await freePort(), await freePort()];
  const env: Record<string, string> = {
    REDIS_URL: redis.url,
    MCP_REDIS_KEY_PREFIX: uniquePrefix('fair'),
    MCP_SERVICES: 'slow',
    MCP_SERVICE_SLOW_ENDPOINT: backend.url,
    MCP_SERVICE_SLOW_RATE_LIMIT_RPM: '600000',
    MCP_SERVICE_SLOW_BURST_LIMIT: '10000',
    MCP_SERVICE_SLOW_CONCURRENCY: String(SLOTS),
    MCP_GATEWAY_API_KEYS: Object.entries(KEYS)
      .map(([agent, key]) => `${key}:${agent}`)
      .join(','),
    MCP_AGENT_FLOOD_RATE_LIMIT_RPM: '600',
    MCP_AGENT_FLOOD_BURST_LIMIT: '200',
    MCP_AGENT_HEAVY_WEIGHT: '3',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    NODE_ENV: 'test',
  };
  procs = [
    startNodeProcess(WORKER, env),
    startNodeProcess(API, { ...env, PORT: String(fairPort) }),
    startNodeProcess(API, { ...env, PORT: String(fifoPort), MCP_FAIR_QUEUES: 'false' }),
  ];
  fair = request(`http://127.0.0.1:${fairPort}`);
  fifo = request(`http://127.0.0.1:${fifoPort}`);
  for (let i = 0; i < 200; i++) {
    const [a, b] = await Promise.all([fair, fifo].map((h) => h.get('/mcp/health').catch(() => undefined)));
    if (a?.body?.services?.slow?.workers === 1 && b?.status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the processes did not start: ${procs.map((p) => p.output().slice(-500)).join('\n')}`);
}, 30_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGTERM', 5000)));
  await backend?.close();
  await redis?.stop();
});

const send = (http: ReturnType<typeof request>, agent: keyof typeof KEYS, async: boolean) => {
  const req = http.post('/mcp/request').set('Authorization', `Bearer ${KEYS[agent]}`);
  if (async) req.set('Prefer', 'respond-async');
  return req.send({ service: 'slow', operation: 'work', parameters: { agent }, metadata: { timeout: 60_000 } });
};

/** The steady agent's latencies: `n` requests, one every `everyMs`, each waited for. */
async function steadyLatencies(http: ReturnType<typeof request>, n: number, everyMs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = Date.now();
    const r = await send(http, 'steady', false);
    expect(r.status).toBe(200);
    out.push(Date.now() - t);
    await new Promise((res) => setTimeout(res, Math.max(0, everyMs - (Date.now() - t))));
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Waits until the backend has had `n` calls in all. */
async function drained(n: number): Promise<void> {
  for (let i = 0; i < 600 && backend.requests.length < n; i++) await new Promise((r) => setTimeout(r, 50));
  expect(backend.requests.length).toBe(n);
}

it("keeps a steady agent's latency near its own while another floods the service, and holds the flood to its quota", async () => {
  const alone = median(await steadyLatencies(fair, 8, 150));

  const flood = await Promise.all(Array.from({ length: 1000 }, () => send(fair, 'flood', true)));
  const accepted = flood.filter((r) => r.status === 202).length;
  const refused = flood.filter((r) => r.status === 429);
  // The burst, plus the tokens refilled (10 a second) while the flood was being sent.
  expect(accepted).toBeGreaterThanOrEqual(200);
  expect(accepted).toBeLessThan(260);
  expect(refused).toHaveLength(1000 - accepted);
  for (const r of refused) {
    expect(r.body.error).toMatchObject({ code: 'RATE_LIMITED', details: { scope: 'agent', limit: 'rate' } });
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  }

  // The flood takes accepted × 100 ms / 4 slots (5 s or more) to drain; meanwhile the steady agent's
  // requests go first in each round of the agents' turns.
  const during = await steadyLatencies(fair, 10, 200);
  const callsBefore = backend.requests.length;
  expect(callsBefore).toBeLessThan(8 + accepted + 10);
  expect(median(during)).toBeLessThanOrEqual(3 * alone);
  await drained(8 + accepted + 10);

  // The control: first come, first served, the steady agent waits behind the whole flood.
  const rush = await Promise.all(Array.from({ length: 60 }, () => send(fifo, 'rush', true)));
  expect(rush.every((r) => r.status === 202)).toBe(true);
  const behind = await steadyLatencies(fifo, 1, 0);
  expect(behind[0]!).toBeGreaterThan(3 * alone);
  await drained(8 + accepted + 10 + 60 + 1);
}, 90_000);

it("shares the service's workers by the agents' weights", async () => {
  const before = backend.requests.length;
  const sent = await Promise.all(Array.from({ length: 240 }, (_, i) => send(fair, i % 2 === 0 ? 'heavy' : 'light', true)));
  expect(sent.every((r) => r.status === 202)).toBe(true);
  await drained(before + 240);
  const order = backend.requests.slice(before).map((r) => (r.body as { agent: string }).agent);
  // Weight 3 against 1: three of every four calls while both have work queued (the first few calls
  // started before the rest were queued; the last ones are the light agent's, once the heavy one's ran out).
  const share = order.slice(SLOTS, 120).filter((a) => a === 'heavy').length / (120 - SLOTS);
  expect(share).toBeGreaterThan(0.65);
  expect(share).toBeLessThan(0.85);
  expect(order.slice(-40).every((a) => a === 'light')).toBe(true);
}, 60_000);
