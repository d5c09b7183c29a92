import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { eventually, startGateway, type Running } from './harness';

/**
 * A service's queue in two lanes, with real workers: `critical` and `high` requests have worker slots
 * of their own and never wait behind `normal` work; full answers, nothing lost, each lane within the
 * service's concurrency.
 */
const CALL_MS = 150;
let gw: Running;
let backend: TestBackend;
let inFlight = 0;
let mostInFlight = 0;

beforeAll(async () => {
  // Counts the calls in flight at once.
  backend = await startBackend(() => {
    inFlight += 1;
    mostInFlight = Math.max(mostInFlight, inFlight);
    setTimeout(() => (inFlight -= 1), CALL_MS);
    return { status: 200, body: { ok: true }, delayMs: CALL_MS };
  });
  gw = await startGateway({ services: { single: { endpoint: backend.url, concurrency: 1 } } }, ['single']);
});

afterAll(async () => {
  await gw.close();
  await backend.close();
});

const send = (tag: string, priority: string) =>
  gw.http
    .post('/mcp/request')
    .set('Prefer', 'respond-async')
    .send({ service: 'single', operation: 'op', parameters: { tag }, metadata: { priority, timeout: 30_000 } });

it('runs critical and high requests before a backlog of normal ones, in their order, each lane one call at a time', async () => {
  const normals = [];
  for (let i = 0; i < 6; i++) normals.push(await send(`n${i}`, 'normal'));
  const urgent = [await send('h0', 'high'), await send('c0', 'critical'), await send('h1', 'high')];
  const low = await send('l0', 'low');
  const all = [...normals, ...urgent, low];
  expect(all.map((r) => r.status)).toEqual(all.map(() => 202));
  // Every request ends, with its answer.
  for (const r of all) {
    const done = await eventually(async () => {
      const s = await gw.http.get(`/mcp/requests/${r.body.id}`);
      return s.body.state === 'completed' ? s.body : undefined;
    }, 20_000);
    expect(done).toMatchObject({ status: 'success', data: { ok: true } });
  }
  const order = backend.requests.map((q) => (q.body as { tag: string }).tag);
  expect([...order].sort()).toEqual(['c0', 'h0', 'h1', 'l0', 'n0', 'n1', 'n2', 'n3', 'n4', 'n5']);
  // The urgent lane ran its three (critical before the high one queued behind it) while the normal
  // lane was still on its first two of six; low came last, after every normal.
  const at = (tag: string) => order.indexOf(tag);
  expect(at('h0')).toBeLessThan(at('c0'));
  expect(at('c0')).toBeLessThan(at('h1'));
  expect(at('h1')).toBeLessThan(at('n3'));
  expect(order.filter((t) => t.startsWith('n'))).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', 'n5']);
  expect(order.at(-1)).toBe('l0');
  // One call at a time per lane: never more than two at once.
  expect(mostInFlight).toBe(2);
}, 30_000);
