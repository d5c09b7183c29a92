import type { RedisClient } from '@mcp-gateway/redis';
import { startBackend, takeAndAbandon, type TestBackend, testRedis } from '@mcp-gateway/testing';
import { capturingLogger, eventually, startGateway, type Running } from './harness';

/**
 * Delivery's backstop: a request accepted into a queue that no worker serves (or whose worker took it
 * and never finished) still ends, with TIMEOUT, a little after its deadline.
 */
let backend: TestBackend;
let gw: Running;
let redis: RedisClient;
const log = capturingLogger();

beforeAll(async () => {
  backend = await startBackend();
  redis = testRedis();
  gw = await startGateway(
    {
      services: {
        // No worker serves "parked".
        parked: { endpoint: backend.url },
        served: { endpoint: backend.url },
      },
    },
    ['served'],
    { logger: log.logger, sweep: { everyMs: 100, graceMs: 300 } },
  );
});

afterAll(async () => {
  await gw.close();
  await backend.close();
  redis.disconnect();
});

const post = (body: object) => gw.http.post('/mcp/request').send(body);
const ended = (id: string) =>
  eventually(async () => {
    const r = await gw.http.get(`/mcp/requests/${id}`);
    return ['queued', 'active', 'retrying'].includes(r.body.state) ? undefined : r.body;
  });

it('ends a request no worker takes with TIMEOUT after its deadline, and removes its job', async () => {
  const accepted = Date.now();
  const res = await post({ id: 'never-taken', service: 'parked', operation: 'op', metadata: { timeout: 300 } }).set(
    'Prefer',
    'respond-async',
  );
  expect(res.status).toBe(202);
  expect(await redis.zscore(gw.api.deps.broker.keys.pending('never-taken'), 'never-taken')).not.toBeNull();
  const body = await ended('never-taken');
  // Not before the deadline and its grace.
  expect(Date.now() - accepted).toBeGreaterThanOrEqual(600);
  expect(body).toMatchObject({
    id: 'never-taken',
    state: 'failed',
    status: 'error',
    error: { code: 'TIMEOUT', retryable: true, details: { state: 'queued' } },
    metadata: { service: 'parked', operation: 'op', attempts: 0 },
  });
  expect(body.error.message).toMatch(/still queued .* no worker took it/);
  expect(await gw.api.deps.broker.queue('parked').getJob('never-taken')).toBeUndefined();
  expect(await redis.zscore(gw.api.deps.broker.keys.pending('never-taken'), 'never-taken')).toBeNull();
  expect(
    log.lines.some(
      (l) => l.msg === 'ended requests that outlived their deadline without a result' && (l.ids as string[]).includes('never-taken'),
    ),
  ).toBe(true);
  // Its own line, as any ended request has, and it counts in the service's numbers.
  expect(log.lines.filter((l) => l.msg === 'request finished' && l.id === 'never-taken')).toEqual([
    expect.objectContaining({ service: 'parked', outcome: 'TIMEOUT', attempts: 0, totalMs: expect.any(Number) }),
  ]);
  expect((await gw.http.get('/mcp/services/parked/metrics')).body.counts).toMatchObject({ TIMEOUT: expect.any(Number) });
  // A TIMEOUT may pass later: the request is kept as a dead letter, with what it asked.
  const letter = await eventually(() => gw.api.deps.deadLetters.get(['parked'], 'never-taken'));
  expect(letter).toMatchObject({ id: 'never-taken', service: 'parked', operation: 'op', parameters: {}, error: { code: 'TIMEOUT' } });
});

it('ends a request whose worker took it and never finished (died), saying so', async () => {
  const res = await post({ id: 'taken-then-lost', service: 'parked', operation: 'op', metadata: { timeout: 300 } }).set(
    'Prefer',
    'respond-async',
  );
  expect(res.status).toBe(202);
  // What a worker that died mid-call leaves: its job active, its lock soon expired, and no live worker
  // serving "parked" to hand it back.
  await takeAndAbandon(gw.config.redis.keyPrefix, gw.api.deps.broker.keys.queueName('parked'), 'taken-then-lost', 300);
  const body = await ended('taken-then-lost');
  expect(body).toMatchObject({
    state: 'failed',
    error: { code: 'TIMEOUT', retryable: false, details: { state: 'active', outcome: 'unknown' } },
  });
  expect(body.error.message).toMatch(/still active .* never finished it, and its call may have been made/);
});

it('a sync caller still waiting on such a request gets the result the sweep stored', async () => {
  // The sync wait lasts a little past the deadline (1 s); this sweep's grace (300 ms) ends it before.
  const res = await post({ id: 'waited-on', service: 'parked', operation: 'op', metadata: { timeout: 300 } });
  expect(res.status).toBe(504);
  expect(res.body).toMatchObject({ id: 'waited-on', status: 'error', error: { code: 'TIMEOUT', details: { state: 'queued' } } });
  expect(await ended('waited-on')).toMatchObject({ state: 'failed', error: { code: 'TIMEOUT', details: { state: 'queued' } } });
});

it('leaves requests that end normally out of its index, and never touches them', async () => {
  const ids = ['ok-1', 'ok-2', 'ok-3'];
  for (const id of ids) {
    const res = await post({ id, service: 'served', operation: 'op', metadata: { timeout: 300 } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, status: 'success' });
  }
  for (const id of ids) expect(await redis.zscore(gw.api.deps.broker.keys.pending(id), id)).toBeNull();
  // Well past their deadlines and the grace: still their own results.
  await new Promise((r) => setTimeout(r, 800));
  for (const id of ids) expect((await gw.http.get(`/mcp/requests/${id}`)).body).toMatchObject({ state: 'completed', status: 'success' });
});

it('drops index entries of requests that are gone (an undone claim) without ending anything', async () => {
  const key = gw.api.deps.broker.keys.pending('claim-undone');
  await redis.zadd(key, Date.now() - 10_000, 'claim-undone');
  await eventually(async () => ((await redis.zscore(key, 'claim-undone')) === null ? true : undefined));
  expect((await gw.http.get('/mcp/requests/claim-undone')).status).toBe(404);
});

it('indexes a sync request for the sweep only once its caller has waited a second, and ends it after its deadline', async () => {
  const { broker } = gw.api.deps;
  const waiting = post({ id: 'held-sync', service: 'parked', operation: 'op', metadata: { timeout: 2500 } }).then((r) => r);
  // Read without polling it (a poll would index it): the record, then the first moment its entry is there.
  const rec = await eventually(async () => broker.records.get('held-sync'), 3000, 10);
  const seenAt = await eventually(
    async () => ((await redis.zscore(broker.keys.pending('held-sync'), 'held-sync')) === null ? undefined : Date.now()),
    3000,
    10,
  );
  const { acceptedAt, deadline } = rec as { acceptedAt: number; deadline: number };
  expect(seenAt - acceptedAt).toBeGreaterThanOrEqual(1000);
  expect(seenAt).toBeLessThan(deadline);
  expect(Number(await redis.zscore(broker.keys.pending('held-sync'), 'held-sync'))).toBe(deadline);
  const res = await waiting;
  expect(res.status).toBe(504);
  expect(res.body).toMatchObject({ id: 'held-sync', status: 'error', error: { code: 'TIMEOUT', details: { state: 'queued' } } });
});
