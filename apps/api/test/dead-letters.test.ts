import { startBackend, type BackendHandler, type TestBackend } from '@mcp-gateway/testing';
import { eventually, startGateway, type Running } from './harness';

/**
 * Dead letters through the real API and worker: a request that failed for a reason that may pass
 * later is kept (bounded, in Redis) with what it asked and who asked it; the admin API lists, reads,
 * replays (a new request recording replayOf), deletes and purges them.
 */
const ADMIN = 'admin-token-dead-letters-0123';
const KEY = 'key-dead-letters-0123456';
const BACKEND_TOKEN = 'backend-secret-token-never-stored-0123';

let backend: TestBackend;
const usual: BackendHandler = (req) => {
  if (req.path === '/flaky') return healed ? { status: 200, body: { ok: true } } : { status: 503, body: { down: true } };
  if (req.path === '/bad') return { status: 400, body: { bad: true } };
  if (req.path === '/charge') return { status: 200, body: { charged: true }, delayMs: healed ? 0 : 1500 };
  return { status: 200, body: { ok: true } };
};
let healed = false;
let gw: Running;

beforeAll(async () => {
  backend = await startBackend(usual);
  gw = await startGateway({
    security: { adminToken: ADMIN, apiKeys: [{ key: KEY, agentId: 'planner' }] },
    retryPolicy: { maxAttempts: 2, backoffStrategy: 'linear', initialDelay: 10, maxDelay: 10, jitter: false },
    deadLetters: { maxPerService: 3, maxAgeHours: 1 },
    services: {
      orders: {
        endpoint: backend.url,
        auth: { type: 'bearer', credentials: { token: BACKEND_TOKEN } },
        // The failures here are the test's: the circuit stays closed.
        circuitBreaker: { failureThreshold: 1000, recoveryTimeout: 1000, halfOpenMaxCalls: 1 },
        operations: [
          { name: 'flaky', method: 'GET', path: '/flaky' },
          { name: 'bad', method: 'GET', path: '/bad' },
          { name: 'ok', method: 'GET', path: '/ok' },
          { name: 'charge', method: 'POST', path: '/charge' },
        ],
      },
    },
  });
});

afterAll(async () => {
  await gw.close();
  await backend.close();
});

const call = (operation: string, extra: object = {}) =>
  gw.http
    .post('/mcp/request')
    .set('Authorization', `Bearer ${KEY}`)
    .send({ service: 'orders', operation, parameters: { note: operation }, ...extra });
const admin = (req: ReturnType<Running['http']['get']>) => req.set('Authorization', `Bearer ${ADMIN}`);
const listed = async (query = '') => (await admin(gw.http.get(`/mcp/dead-letters${query}`))).body as { deadLetters: { id: string }[] };

describe('dead letters', () => {
  let failedId: string;

  it('keeps a request that failed for a reason that may pass later, with what it asked and who asked, and nothing else', async () => {
    const failed = await call('flaky');
    expect([failed.status, failed.body.error.code]).toEqual([502, 'BACKEND_ERROR']);
    failedId = failed.body.id;
    // A 4xx from the backend, a success and bad input are not kept.
    expect((await call('bad')).status).toBe(502);
    expect((await call('ok')).status).toBe(200);
    expect((await call('nope')).status).toBe(404);
    const { deadLetters } = await listed();
    expect(deadLetters.map((l) => l.id)).toEqual([failedId]);
    const one = await admin(gw.http.get(`/mcp/dead-letters/${failedId}`));
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({
      id: failedId,
      service: 'orders',
      operation: 'flaky',
      parameters: { note: 'flaky' },
      agentId: 'planner',
      error: { code: 'BACKEND_ERROR' },
      attempts: 2,
      replays: [],
    });
    // The gateway's credential for the backend is never in a dead letter.
    expect(JSON.stringify(one.body)).not.toContain(BACKEND_TOKEN);
    const metrics = await gw.http.get('/metrics');
    expect(metrics.text).toMatch(/^mcp_gateway_dead_letters\{service="orders"\} 1$/m);
  });

  it('filters by service, code, agent and time, and answers only the admin token', async () => {
    expect((await listed('?code=BACKEND_ERROR&agent=planner&service=orders')).deadLetters).toHaveLength(1);
    expect((await listed('?code=TIMEOUT')).deadLetters).toHaveLength(0);
    expect((await listed('?agent=someone-else')).deadLetters).toHaveLength(0);
    expect((await listed(`?since=${Date.now() + 60_000}`)).deadLetters).toHaveLength(0);
    expect((await listed(`?since=${new Date(Date.now() - 60_000).toISOString()}`)).deadLetters).toHaveLength(1);
    expect((await admin(gw.http.get('/mcp/dead-letters?code=NOPE'))).status).toBe(400);
    expect((await gw.http.get('/mcp/dead-letters').set('Authorization', `Bearer ${KEY}`)).status).toBe(401);
    expect((await admin(gw.http.get('/mcp/dead-letters/no-such-id'))).status).toBe(404);
  });

  it('replays one as a new request that records replayOf, and the dead letter records the replay and its outcome', async () => {
    healed = true;
    const replay = await admin(gw.http.post(`/mcp/dead-letters/${failedId}/replay`)).send({});
    expect(replay.status).toBe(202);
    const replayId = replay.body.replay.id as string;
    expect(replayId).not.toBe(failedId);
    const done = await eventually(async () => {
      const r = await gw.http.get(`/mcp/requests/${replayId}`).set('Authorization', `Bearer ${KEY}`);
      return r.body.state === 'completed' ? r : undefined;
    });
    // The replay is the agent's request (it can poll it), and says what it replays.
    expect(done.body.metadata.replayOf).toBe(failedId);
    const letter = await admin(gw.http.get(`/mcp/dead-letters/${failedId}`));
    expect(letter.body.replays).toEqual([{ id: replayId, at: expect.any(Number), state: 'completed' }]);
    healed = false;
  });

  it('takes state changes as JSON only: a form posted from another site is refused', async () => {
    const form = await admin(gw.http.post(`/mcp/dead-letters/${failedId}/replay`))
      .type('form')
      .send('force=true');
    expect([form.status, form.body.error.code]).toEqual([400, 'VALIDATION_ERROR']);
    const bulk = await admin(gw.http.post('/mcp/dead-letters/replay')).type('form').send('code=BACKEND_ERROR');
    expect(bulk.status).toBe(400);
  });

  it("keeps a backend's large error answer cut short, and a replay keeps the request's deadline and priority", async () => {
    backend.setHandler((req) =>
      req.path === '/flaky' ? { status: 500, body: { page: 'x'.repeat(20_000) } } : { status: 200, body: { ok: true } },
    );
    const failed = await call('flaky', { metadata: { timeout: 12_345, priority: 'high' } });
    const letter = await eventually(async () => {
      const r = await admin(gw.http.get(`/mcp/dead-letters/${failed.body.id}`));
      return r.status === 200 ? r.body : undefined;
    });
    expect(letter.error.details).toEqual({ truncated: true, bytes: expect.any(Number) });
    expect(letter.error.details.bytes).toBeGreaterThan(20_000);
    expect([letter.timeoutMs, letter.priority]).toEqual([12_345, 'high']);
    // Its replay fails too (the backend still answers 500): its own dead letter shows what it was sent with.
    const replay = await admin(gw.http.post(`/mcp/dead-letters/${failed.body.id}/replay`)).send({});
    const again = await eventually(async () => {
      const r = await admin(gw.http.get(`/mcp/dead-letters/${replay.body.replay.id}`));
      return r.status === 200 ? r.body : undefined;
    });
    expect([again.replayOf, again.timeoutMs, again.priority]).toEqual([failed.body.id, 12_345, 'high']);
    backend.setHandler(usual);
    for (const id of [failed.body.id, again.id]) expect((await admin(gw.http.delete(`/mcp/dead-letters/${id}`))).status).toBe(200);
  });

  it('needs force to replay a non-idempotent request whose outcome is unknown', async () => {
    const timedOut = await call('charge', { metadata: { timeout: 300 } });
    expect(timedOut.body.error).toMatchObject({ details: { outcome: 'unknown' } });
    const id = timedOut.body.id as string;
    await eventually(async () => ((await listed()).deadLetters.some((l) => l.id === id) ? true : undefined));
    const refused = await admin(gw.http.post(`/mcp/dead-letters/${id}/replay`)).send({});
    expect([refused.status, refused.body.error.code]).toEqual([409, 'CONFLICT']);
    expect(refused.body.error.message).toMatch(/force: true/);
    healed = true;
    const forced = await admin(gw.http.post(`/mcp/dead-letters/${id}/replay`)).send({ force: true });
    expect(forced.status).toBe(202);
    // Healed until it has run: it keeps the 300 ms deadline, and a slow backend would make it a dead letter too.
    await eventually(async () => {
      const done = await gw.http.get(`/mcp/requests/${forced.body.replay.id}`).set('Authorization', `Bearer ${KEY}`);
      return done.body.state === 'completed' ? true : undefined;
    });
    healed = false;
  });

  it('replays a filtered set, deletes one, and purges by filter (everything only with all=true)', async () => {
    const again = (await call('flaky')).body.id as string;
    healed = true;
    const bulk = await admin(gw.http.post('/mcp/dead-letters/replay')).send({ code: 'BACKEND_ERROR' });
    expect(bulk.status).toBe(200);
    const replayed = bulk.body.replayed as { id: string; replay: { id: string } }[];
    expect(replayed.map((r) => r.id)).toEqual([again]);
    // The one replayed before is not sent again unless asked (again: true).
    expect(bulk.body.refused).toEqual([{ id: failedId, error: expect.objectContaining({ code: 'CONFLICT' }) }]);
    for (const r of replayed)
      await eventually(async () => {
        const done = await gw.http.get(`/mcp/requests/${r.replay.id}`).set('Authorization', `Bearer ${KEY}`);
        return done.body.state === 'completed' ? true : undefined;
      });
    healed = false;
    const before = (await listed()).deadLetters;
    const gone = await admin(gw.http.delete(`/mcp/dead-letters/${before[0]!.id}`));
    expect(gone.body).toEqual({ id: before[0]!.id, removed: true });
    expect((await admin(gw.http.delete(`/mcp/dead-letters/${before[0]!.id}`))).status).toBe(404);
    expect((await admin(gw.http.delete('/mcp/dead-letters'))).status).toBe(400);
    const purged = await admin(gw.http.delete('/mcp/dead-letters?service=orders'));
    expect(purged.body.removed).toBe(before.length - 1);
    expect((await listed()).deadLetters).toEqual([]);
  });

  it('keeps at most maxPerService per service, the newest, and they outlive the API process', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await call('flaky')).body.id as string);
    await eventually(async () => ((await listed()).deadLetters.length === 3 ? true : undefined));
    expect((await listed()).deadLetters.map((l) => l.id)).toEqual(ids.slice(2).reverse());
    // Another API process on the same Redis reads the same.
    const again = await startGateway(
      { security: { adminToken: ADMIN }, redis: { keyPrefix: gw.config.redis.keyPrefix }, services: { orders: { endpoint: backend.url } } },
      [],
    );
    try {
      const other = await again.http.get('/mcp/dead-letters').set('Authorization', `Bearer ${ADMIN}`);
      expect(other.body.deadLetters.map((l: { id: string }) => l.id)).toEqual(ids.slice(2).reverse());
    } finally {
      await again.close();
    }
  });
});
