import { SHORT, settle, startCluster, submit, type Cluster } from './harness';

/** Processes die: workers (kill -9, repeatedly), the API, Redis (kill -9 with AOF). Nothing accepted is lost. */
let c: Cluster | undefined;
afterEach(async () => {
  await c?.stop();
  c = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('kill -9 of workers in the middle of load: every request ends; a call in flight is never made twice', async () => {
  // A service with no definition: every operation is a POST, which is not idempotent.
  c = await startCluster({
    handler: () => ({ status: 200, body: { ok: true }, delayMs: 150 }),
    workers: 3,
    env: { MCP_SERVICE_SVC_CONCURRENCY: '4' },
  });
  const n = SHORT ? 60 : 200;
  const kills = SHORT ? 2 : 4;
  const load = submit(c, 'wk', n, (i) => ({ service: 'svc', operation: 'op', parameters: { i } }), 5);
  let inFlightAtKills = 0;
  for (let k = 0; k < kills; k++) {
    await sleep(250);
    const victim = c.workers.find((w) => w.child.exitCode === null && w.child.signalCode === null)!;
    // Calls in flight at the kill end with an unknown outcome: the worker that takes the job over does
    // not send them again.
    inFlightAtKills += 4;
    victim.child.kill('SIGKILL');
    await c.startWorker();
  }
  const { accepted } = await load;
  const t = await settle(c, `worker kill -9 x${kills}`, n, accepted);
  expect(t.accepted).toBe(n);
  expect(t.lost).toBe(0);
  expect(t.duplicates).toBe(0);
  const { BACKEND_ERROR: unknown = 0, ...others } = t.failed;
  expect(others).toEqual({});
  expect(unknown).toBeLessThanOrEqual(inFlightAtKills);
  expect(t.completed + unknown).toBe(n);
  // Every accepted request reached the backend, or ended with the error that says it may have.
  for (const id of accepted) expect((c.calls.get(id) ?? 0) + unknown).toBeGreaterThanOrEqual(1);
});

it('the API killed with async requests pending: a new API process answers their polls', async () => {
  c = await startCluster({ handler: () => ({ status: 200, body: { ok: true }, delayMs: 300 }), workers: 2 });
  const n = SHORT ? 20 : 60;
  const { accepted } = await submit(c, 'api', n, (i) => ({ service: 'svc', operation: 'op', parameters: { i } }));
  c.apis[0]!.child.kill('SIGKILL');
  await c.startApi();
  const t = await settle(c, 'API kill -9 with async requests pending', n, accepted);
  expect(t).toMatchObject({ accepted: n, completed: n, lost: 0, duplicates: 0 });
});

it.each(['kill -9', 'graceful stop'])(
  'Redis (%s) and restarted during load: 503 at once while down, everything accepted completes after',
  async (how) => {
    c = await startCluster({ handler: () => ({ status: 200, body: { ok: true }, delayMs: 50 }), workers: 2 });
    const n = SHORT ? 30 : 100;
    const before = await submit(c, 'rd', n, (i) => ({ service: 'svc', operation: 'op', parameters: { i } }));
    if (how === 'kill -9') c.redis.kill9();
    else await c.redis.shutdown();
    await sleep(100);
    // While Redis is down: quick, coded refusals, nothing hangs.
    const started = Date.now();
    const during = await submit(c, 'rd-down', 10, (i) => ({ service: 'svc', operation: 'op', parameters: { i } }));
    const perRequest = (Date.now() - started) / 10;
    expect(during.accepted).toHaveLength(0);
    expect(during.refused).toEqual({ UNAVAILABLE: 10 });
    expect(perRequest).toBeLessThan(1000);
    await c.redis.restart();
    const t = await settle(c, `Redis ${how} + restart (AOF always)`, n, before.accepted, 60_000);
    expect(t.lost).toBe(0);
    expect(t.completed + Object.values(t.failed).reduce((a, b) => a + b, 0)).toBe(before.accepted.length);
    expect(before.accepted.length).toBe(n);
    // And it serves again.
    const after = await submit(c, 'rd-after', 5, (i) => ({ service: 'svc', operation: 'op', parameters: { i } }));
    expect(after.accepted).toHaveLength(5);
  },
);
