import path from 'node:path';
import { SHORT, settle, startCluster, submit, type Cluster } from './harness';

/** Backends misbehave, and worker clocks disagree. Every request ends with a result or a coded error. */
let c: Cluster | undefined;
afterEach(async () => {
  await c?.stop();
  c = undefined;
});

it('a backend that flaps, hangs, resets connections, returns garbage or 10 MB: every request ends, coded', async () => {
  let flap = 0;
  const huge = 'x'.repeat(11 * 1024 * 1024);
  c = await startCluster({
    services: { flap: '/flap', hang: '/hang', reset: '/reset', garbage: '/garbage', huge: '/huge' },
    handler: (req) => {
      if (req.path.startsWith('/flap')) return flap++ % 2 === 0 ? { status: 503, body: { e: 1 } } : { status: 200, body: { ok: true } };
      if (req.path.startsWith('/hang')) return { status: 200, body: {}, delayMs: 3000 };
      if (req.path.startsWith('/reset')) return { destroy: true };
      if (req.path.startsWith('/garbage')) return { status: 200, headers: { 'content-type': 'application/json' }, body: '{"not json' };
      return { status: 200, headers: { 'content-type': 'text/plain' }, body: huge };
    },
    env: {
      MCP_SERVICE_HANG_TIMEOUT: '500',
      MCP_SERVICE_HANG_RETRY_MAX_ATTEMPTS: '1',
      MCP_SERVICE_RESET_CB_FAILURE_THRESHOLD: '1000',
      MCP_SERVICE_FLAP_CB_FAILURE_THRESHOLD: '1000',
    },
  });
  const n = SHORT ? 4 : 10;
  const results: Record<string, Awaited<ReturnType<typeof settle>>> = {};
  for (const svc of ['flap', 'hang', 'reset', 'garbage', 'huge']) {
    // These services have no definition: every call is a POST, not idempotent, so never repeated.
    const { accepted } = await submit(c, svc, n, () => ({ service: svc, operation: 'op', parameters: {} }));
    results[svc] = await settle(c, `backend ${svc}`, n, accepted, 60_000);
    expect([svc, results[svc]!.lost]).toEqual([svc, 0]);
    expect([svc, results[svc]!.accepted]).toEqual([svc, n]);
  }
  // Flapping 503/200: each call ends as the backend answered it; none is sent twice.
  expect(results.flap!.completed + (results.flap!.failed.BACKEND_ERROR ?? 0)).toBe(n);
  expect(results.flap!.completed).toBeGreaterThan(0);
  for (const r of Object.values(results)) expect(r.duplicates).toBe(0);
  // Past the deadline: TIMEOUT, never a hang.
  expect(results.hang!.failed).toEqual({ TIMEOUT: n });
  // Connections reset: coded backend errors after the retries.
  expect(results.reset!.failed).toEqual({ BACKEND_ERROR: n });
  // Not JSON: delivered as text, not a crash.
  expect(results.garbage!.completed).toBe(n);
  // Over the 10 MB response limit: refused, not buffered.
  expect(results.huge!.failed).toEqual({ BACKEND_ERROR: n });
});

it('two workers whose clocks differ by 5 s keep one shared rate limit', async () => {
  const received: number[] = [];
  c = await startCluster({
    handler: () => {
      received.push(Date.now());
      return { status: 200, body: { ok: true } };
    },
    workers: 1,
    env: {
      MCP_SERVICE_SVC_RATE_LIMIT_RPM: '600',
      MCP_SERVICE_SVC_BURST_LIMIT: '5',
      MCP_SERVICE_SVC_CONCURRENCY: '10',
      MCP_DEFAULT_TIMEOUT: '20000',
    },
  });
  await c.startWorker({ CLOCK_OFFSET_MS: '5000' }, ['--require', path.join(__dirname, 'clock-offset.js')]);
  const n = SHORT ? 25 : 40;
  const { accepted } = await submit(c, 'clk', n, (i) => ({ service: 'svc', operation: 'op', parameters: { i } }));
  const t = await settle(c, 'worker clocks 5 s apart, one rate limit', n, accepted, 60_000);
  expect(t).toMatchObject({ completed: n, lost: 0 });
  const times = [...received].sort((a, b) => a - b);
  const t0 = times[0]!;
  // Never more than burst + rate x elapsed (10/s), whichever worker made the call.
  times.forEach((at, i) => expect([i, i + 1 <= 5 + Math.floor(((at - t0) / 1000) * 10) + 1]).toEqual([i, true]));
});
