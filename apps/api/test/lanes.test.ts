import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { eventually, startGateway, type Running } from './harness';

/**
 * A service's queue in two lanes, with real workers: `critical` and `high` requests have worker slots
 * of their own and never wait behind `normal` work; full answers, nothing lost, each lane within the
 * service's concurrency.
 */
let gw: Running;
let backend: TestBackend;
let inFlight = 0;
let mostInFlight = 0;
/** Normal and low calls are held at the backend until the test opens this gate; urgent ones are answered at once. */
let openGate: () => void = () => undefined;
const gate = new Promise<void>((resolve) => (openGate = resolve));

beforeAll(async () => {
  backend = await startBackend(async (req) => {
    inFlight += 1;
    mostInFlight = Math.max(mostInFlight, inFlight);
    const tag = (req.body as { tag: string }).tag;
    if (/^[nl]/.test(tag)) await gate;
    inFlight -= 1;
    return { status: 200, body: { ok: true, tag } };
  });
  gw = await startGateway({ services: { single: { endpoint: backend.url, concurrency: 1 } } }, ['single']);
});

afterAll(async () => {
  openGate();
  await gw.close();
  await backend.close();
});

const send = (tag: string, priority: string) =>
  gw.http
    .post('/mcp/request')
    .set('Prefer', 'respond-async')
    .send({ service: 'single', operation: 'op', parameters: { tag }, metadata: { priority, timeout: 30_000 } });

const tags = () => backend.requests.map((q) => (q.body as { tag: string }).tag);

async function ended(id: string): Promise<{ status: string; data: { tag: string } }> {
  return eventually(async () => {
    const s = await gw.http.get(`/mcp/requests/${id}`);
    return s.body.state === 'completed' ? s.body : undefined;
  }, 20_000);
}

it('runs critical and high requests while a normal call holds the normal lane, in their order; then the normal lane in its order', async () => {
  // The normal lane's one slot is taken by n0, held at the backend; five more normal and a low wait behind it.
  const normals = [await send('n0', 'normal')];
  await eventually(async () => (tags().includes('n0') ? true : undefined));
  for (let i = 1; i < 6; i++) normals.push(await send(`n${i}`, 'normal'));
  const low = await send('l0', 'low');
  // The urgent lane: h0 is taken at once; c0 and h1 queue behind it, critical first.
  const urgent = [await send('h0', 'high'), await send('c0', 'critical'), await send('h1', 'high')];
  const all = [...normals, low, ...urgent];
  expect(all.map((r) => r.status)).toEqual(all.map(() => 202));

  // All three urgent requests end while n0 still holds the normal lane.
  for (const r of urgent) expect(await ended(r.body.id)).toMatchObject({ status: 'success', data: { ok: true } });
  expect(tags()).toEqual(['n0', 'h0', 'c0', 'h1']);

  openGate();
  for (const r of [...normals, low]) expect(await ended(r.body.id)).toMatchObject({ status: 'success', data: { ok: true } });
  expect(tags()).toEqual(['n0', 'h0', 'c0', 'h1', 'n1', 'n2', 'n3', 'n4', 'n5', 'l0']);
  // One call at a time per lane: two at once at most, and two while n0 was held.
  expect(mostInFlight).toBe(2);
}, 30_000);
