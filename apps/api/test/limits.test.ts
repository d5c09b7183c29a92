import Redis from 'ioredis';
import { requestHash } from '@mcp-gateway/broker';
import { resilienceKeys } from '@mcp-gateway/resilience';
import { startBackend, takeAndAbandon, testRedisUrl, type TestBackend } from '@mcp-gateway/testing';
import { eventually, startGateway, type Running } from './harness';

/**
 * The API's side of the shared limits: it refuses at once (without queueing) what would only
 * fail later, and a job held by the rate limit ends RATE_LIMITED when its deadline comes first.
 */
let backend: TestBackend;
let gw: Running;

beforeAll(async () => {
  backend = await startBackend();
  gw = await startGateway(
    {
      services: {
        // No worker serves "full": its queue only grows.
        full: { endpoint: backend.url, maxQueueDepth: 2 },
        // No worker serves "parked" either.
        parked: { endpoint: backend.url },
        // One token, refilled once a second.
        slow: { endpoint: backend.url, rateLimit: { requestsPerMinute: 60, burstLimit: 1 } },
        held: { endpoint: backend.url, rateLimit: { requestsPerMinute: 60, burstLimit: 2 } },
        // Served only by the workers the trial-permit test starts.
        trial: { endpoint: backend.url, circuitBreaker: { failureThreshold: 1, recoveryTimeout: 1000, halfOpenMaxCalls: 1 } },
        // Served only by the workers the "run before it may have called" tests start.
        once: {
          endpoint: backend.url,
          operations: [
            { name: 'create', method: 'POST', path: '/items' },
            { name: 'read', method: 'GET', path: '/items' },
          ],
        },
      },
      // A dead worker's job is taken over within about a second (the stalled check runs every 500 ms).
      worker: { lockMs: 1000 },
    },
    ['slow'],
  );
});

afterAll(async () => {
  await gw.close();
  await backend.close();
});

beforeEach(() => {
  backend.requests.length = 0;
});

const post = (body: object) => gw.http.post('/mcp/request').send(body);

it('answers 503 OVERLOADED at once when the service queue holds maxQueueDepth jobs', async () => {
  for (let i = 0; i < 2; i++) expect((await post({ service: 'full', operation: 'op' }).set('Prefer', 'respond-async')).status).toBe(202);
  const res = await post({ service: 'full', operation: 'op' }).set('Prefer', 'respond-async');
  expect(res.status).toBe(503);
  expect(res.body.error).toMatchObject({ code: 'OVERLOADED', retryable: true });
  expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  expect((await gw.api.deps.broker.counts('full')).waiting).toBe(2);
});

it('the same id joins its request even while the queue is full (fast fail is for new requests)', async () => {
  // "full" already holds its two waiting jobs (previous test): a new request is refused...
  expect((await post({ service: 'full', operation: 'op' }).set('Prefer', 'respond-async')).status).toBe(503);
  // ...but the id of one already accepted joins it.
  const [first] = await gw.api.deps.broker.queue('full').getJobs(['prioritized', 'waiting'], 0, 0);
  const again = await post({ id: first!.id, service: 'full', operation: 'op' }).set('Prefer', 'respond-async');
  expect(again.status).toBe(202);
  expect(again.body).toEqual({ id: first!.id, state: 'queued' });
});

it('requests that come while a fast-fail read is out share its answer; a request more than 20 ms after it sends its own', async () => {
  const { resilience } = gw.api.deps;
  const peek = resilience.peek.bind(resilience);
  let sent = 0;
  // Every read answers 100 ms late, so the concurrent requests below come while the first is out.
  resilience.peek = async (...args: Parameters<typeof peek>) => {
    sent += 1;
    const answer = await peek(...args);
    await new Promise((r) => setTimeout(r, 100));
    return answer;
  };
  try {
    const parked = () => post({ service: 'parked', operation: 'op' }).set('Prefer', 'respond-async');
    const together = await Promise.all(Array.from({ length: 8 }, parked));
    expect(together.map((r) => r.status)).toEqual(Array(8).fill(202));
    expect(sent).toBeGreaterThanOrEqual(1);
    expect(sent).toBeLessThan(8);
    const before = sent;
    // Within 20 ms of a reading a fresh request goes straight in on it (fast-fail.test.ts); later, it reads.
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setTimeout(r, 30));
      expect((await parked()).status).toBe(202);
    }
    expect(sent).toBe(before + 2);
  } finally {
    resilience.peek = peek;
  }
});

it('answers 429 RATE_LIMITED with Retry-After when the token wait exceeds the deadline, without queueing', async () => {
  expect((await post({ service: 'slow', operation: 'op' })).status).toBe(200);
  const res = await post({ service: 'slow', operation: 'op', metadata: { timeout: 300 } });
  expect(res.status).toBe(429);
  expect(res.body.error.code).toBe('RATE_LIMITED');
  expect(res.body.error.retryAfterMs).toBeGreaterThan(300);
  expect(res.headers['retry-after']).toBe('1');
  expect(backend.requests).toHaveLength(1);
  // With a deadline long enough to wait for the next token, the same call goes through.
  const patient = await post({ service: 'slow', operation: 'op', metadata: { timeout: 3000 } });
  expect(patient.status).toBe(200);
  expect(backend.requests).toHaveLength(2);
});

it('a backend answering 429 without Retry-After still gives the caller Retry-After: the next delay of the retry schedule', async () => {
  const throttling = await startBackend(() => ({ status: 429, body: { error: 'slow down' } }));
  const gw2 = await startGateway({
    services: {
      throttling: {
        endpoint: throttling.url,
        retryPolicy: { maxAttempts: 2, backoffStrategy: 'linear', initialDelay: 1500, maxDelay: 5000, jitter: false },
        operations: [
          { name: 'read', method: 'GET', path: '/read' },
          { name: 'write', method: 'POST', path: '/write' },
        ],
      },
    },
  });
  try {
    // Retried once (1.5 s later), then given up: the schedule's next delay would be 1500 × 2 ms.
    const read = await gw2.http.post('/mcp/request').send({ service: 'throttling', operation: 'read', metadata: { timeout: 10_000 } });
    expect(read.status).toBe(429);
    expect(read.body.error).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 3000 });
    expect(read.body.metadata).toMatchObject({ attempts: 2, backendStatus: 429 });
    expect(read.headers['retry-after']).toBe('3');
    // The stored result (what a poll reads) carries it too.
    const polled = await gw2.http.get(`/mcp/requests/${read.body.id}`);
    expect(polled.body.error).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 3000 });
    // Not idempotent, so not retried: the delay the first retry would have had.
    const write = await gw2.http.post('/mcp/request').send({ service: 'throttling', operation: 'write' });
    expect(write.status).toBe(429);
    expect(write.body.error).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 1500 });
    expect(write.body.metadata).toMatchObject({ attempts: 1 });
    expect(write.headers['retry-after']).toBe('2');
    expect(throttling.requests.map((r) => r.path)).toEqual(['/read', '/read', '/write']);
  } finally {
    await gw2.close();
    await throttling.close();
  }
});

it('a queued job the rate limit holds past its deadline ends RATE_LIMITED and is never sent', async () => {
  // Three accepted while no worker runs: two tokens now, the third due 1 s after the first two.
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await post({ service: 'held', operation: 'op', metadata: { timeout: 1500 } }).set('Prefer', 'respond-async');
    expect(res.status).toBe(202);
    ids.push(res.body.id);
  }
  await new Promise((r) => setTimeout(r, 600));
  await gw.startWorkers(['held']);
  const ended = await Promise.all(
    ids.map((id) =>
      eventually(async () => {
        const p = await gw.http.get(`/mcp/requests/${id}`);
        return ['completed', 'failed'].includes(p.body.state) ? p.body : undefined;
      }),
    ),
  );
  expect(ended.map((b) => b.status).sort()).toEqual(['error', 'success', 'success']);
  const limited = ended.find((b) => b.status === 'error')!;
  expect(limited.error).toMatchObject({ code: 'RATE_LIMITED' });
  expect(limited.metadata.attempts).toBe(0);
  expect(backend.requests).toHaveLength(2);
});

it('leaves no key without a TTL outside the bounded BullMQ queue structures', async () => {
  expect((await post({ service: 'slow', operation: 'op', metadata: { timeout: 3000 } })).status).toBe(200);
  const redis = new Redis(testRedisUrl());
  try {
    const keys = await redis.keys(`${gw.config.redis.keyPrefix}:*`);
    expect(keys.some((k) => k.includes(':{slow}:bucket'))).toBe(true);
    expect(keys.some((k) => k.includes(':req:'))).toBe(true);
    // A job in a lane (`{svc}` or `{svc}urgent`) of its service's queue.
    const queued = async (lane: string, id: string) => {
      const q = `${gw.config.redis.keyPrefix}:${lane}`;
      const [w, p, d, a] = await Promise.all([
        redis.lpos(`${q}:wait`, id),
        redis.zscore(`${q}:prioritized`, id),
        redis.zscore(`${q}:delayed`, id),
        redis.lpos(`${q}:active`, id),
      ]);
      return w !== null || p !== null || d !== null || a !== null;
    };
    for (const key of keys) {
      const queueKey =
        /:\{[^}]+\}(urgent)?:(wait|prioritized|delayed|active|paused|meta|id|events|marker|limiter|pc|stalled-check|completed|failed|de)$/.test(
          key,
        );
      if (queueKey) continue;
      // The sweep's index holds requests that have not ended, and at most a few that ended as they
      // were indexed (a sync request ending as its API process indexed it): the sweep drops those.
      if (gw.api.deps.broker.keys.pendingShards().includes(key)) {
        const ended = [];
        for (const id of await redis.zrange(key, 0, -1)) if ((await gw.api.deps.broker.records.get(id))?.state !== 'queued') ended.push(id);
        if (ended.length > 0) await gw.api.deps.broker.records.overdue(Number.MAX_SAFE_INTEGER, 0, 10_000);
        for (const id of ended) expect({ id, indexed: await redis.zscore(key, id) }).toEqual({ id, indexed: null });
        continue;
      }
      // A breaker that is open or half-open keeps that state until a trial closes it (one hash per service).
      if (/:\{[^}]+\}:breaker$/.test(key) && /^(open|half_open)$/.test((await redis.hget(key, 'state')) ?? '')) continue;
      // A BullMQ job hash lives while its job is in the queue (bounded by maxQueueDepth), then is removed.
      const job = /:(\{[^}]+\}(?:urgent)?):([^:]+)$/.exec(key);
      if (job && !/^(bucket|breaker|trials)$/.test(job[2]!) && (await queued(job[1]!, job[2]!))) continue;
      expect({ key, ttlPositive: (await redis.pttl(key)) > 0 }).toEqual({ key, ttlPositive: true });
    }
    expect(await redis.xlen(`${gw.config.redis.keyPrefix}:{slow}:events`)).toBeLessThanOrEqual(10_000);
    // Each service's resilience keys share its hash tag, so a script touches one cluster slot.
    for (const key of keys.filter((k) => /:(bucket|breaker|trials)$/.test(k))) expect(key).toMatch(/:\{(full|slow|held)\}:/);
  } finally {
    redis.disconnect();
  }
});

it('a claimed id whose job was never added (Redis dropped between the two) is completed by the retry', async () => {
  const now = Date.now();
  const hash = requestHash('slow', 'op', {}, undefined);
  const claim = { hash, service: 'slow', acceptedAt: now, deadline: now + 30_000, correlationId: 'corr-orphan' };
  await gw.api.deps.broker.records.claim({ ...claim, id: 'orphan-1' });
  expect(await gw.api.deps.broker.queue('slow').getJob('orphan-1')).toBeUndefined();
  const res = await post({ id: 'orphan-1', service: 'slow', operation: 'op', metadata: { timeout: 5000 } });
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject({ id: 'orphan-1', status: 'success' });
  // The job is added with the claim's deadline (the one the record and the sweep hold), not the
  // retry's: seen on an orphan left in a queue no worker serves, where the job's data can be read.
  await gw.api.deps.broker.records.claim({ ...claim, id: 'orphan-2', hash: requestHash('parked', 'op', {}, undefined), service: 'parked' });
  expect(
    (await post({ id: 'orphan-2', service: 'parked', operation: 'op', metadata: { timeout: 60_000 } }).set('Prefer', 'respond-async'))
      .status,
  ).toBe(202);
  expect((await gw.api.deps.broker.queue('parked').getJob('orphan-2'))!.data).toMatchObject({ acceptedAt: now, deadline: now + 30_000 });
});

it('a job handed back by an earlier run, whose request ended meanwhile, is not run and takes no trial permit', async () => {
  const { broker } = gw.api.deps;
  // A request cancelled while a run held its job, which that run then handed back to wait for
  // admission: the job is queued again, its request has ended, and a worker must skip it without
  // calling the backend.
  const queued = await post({ service: 'trial', operation: 'op', id: 'ended-while-queued' }).set('Prefer', 'respond-async');
  expect(queued.status).toBe(202);
  const job = (await broker.queue('trial').getJob('ended-while-queued'))!;
  await job.updateData({ ...job.data, startedAt: Date.now() - 1000 });
  const stored = {
    id: 'ended-while-queued',
    status: 'success' as const,
    data: { earlier: true },
    metadata: {
      correlationId: 'c',
      service: 'trial',
      operation: 'op',
      attempts: 1,
      queuedMs: 0,
      processingTime: 0,
      completedAt: new Date().toISOString(),
    },
  };
  expect(await broker.records.finish(stored, 'completed', (await broker.records.get('ended-while-queued'))!)).toBe(true);
  // An open circuit past its recovery time: the next admission half-opens it and takes the one trial permit.
  const k = resilienceKeys(gw.config.redis.keyPrefix, 'trial');
  const redis = new Redis(testRedisUrl());
  await redis.hset(k.breaker, 'state', 'open', 'openedAt', Date.now() - 5000, 'failures', 1);

  await gw.startWorkers(['trial']);
  await eventually(async () =>
    (await broker.counts('trial')).waiting === 0 && (await broker.counts('trial')).active === 0 ? true : undefined,
  );
  expect(backend.requests).toHaveLength(0);
  expect(await redis.zcard(k.trials)).toBe(0);
  // The permit is free, so the next request is the trial: it reaches the backend and closes the circuit.
  const next = await post({ service: 'trial', operation: 'op' });
  expect(next.status).toBe(200);
  expect(backend.requests).toHaveLength(1);
  expect(await redis.hget(k.breaker, 'state')).toBe('closed');
  expect((await gw.http.get('/mcp/requests/ended-while-queued')).body).toMatchObject({ state: 'completed', data: { earlier: true } });
  redis.disconnect();
});

describe('a job whose earlier run may have sent its call and never ended (its worker died)', () => {
  // Such a run took the job and left its lock to expire: a live worker's stalled check hands it back, counted as stalled.
  async function leftByADeadRun(id: string, operation: string, timeout = 30_000): Promise<void> {
    const queued = await post({ service: 'once', operation, id, metadata: { timeout } }).set('Prefer', 'respond-async');
    expect(queued.status).toBe(202);
    const { broker } = gw.api.deps;
    await takeAndAbandon(gw.config.redis.keyPrefix, broker.keys.queueName('once'), id);
    expect((await gw.http.get(`/mcp/requests/${id}`)).body).toMatchObject({ state: 'active' });
  }
  const ended = (id: string) =>
    eventually(async () => {
      const r = await gw.http.get(`/mcp/requests/${id}`);
      return r.body.state === 'queued' || r.body.state === 'active' ? undefined : r.body;
    });

  beforeAll(async () => {
    // Both are left before any worker serves "once".
    await leftByADeadRun('dead-run-post', 'create');
    await leftByADeadRun('dead-run-get', 'read');
    // One whose deadline passes before another worker takes it over.
    await leftByADeadRun('dead-run-late', 'create', 300);
    await new Promise((r) => setTimeout(r, 400));
    await gw.startWorkers(['once']);
  });

  it('is not called again when the operation is not idempotent: the outcome is unknown, and said so', async () => {
    const body = await ended('dead-run-post');
    expect(body).toMatchObject({
      state: 'failed',
      status: 'error',
      error: { code: 'BACKEND_ERROR', retryable: false, details: { outcome: 'unknown' } },
    });
    expect(body.error.message).toMatch(/not idempotent.*not sent again/);
    // The run that may have sent it is an attempt.
    expect(body.metadata.attempts).toBe(1);
    // Past its deadline too, it says the outcome is unknown: not a TIMEOUT the caller would simply retry.
    expect(await ended('dead-run-late')).toMatchObject({
      state: 'failed',
      error: { code: 'BACKEND_ERROR', retryable: false, details: { outcome: 'unknown' } },
    });
    expect(backend.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
  });

  it('is called again when the operation is idempotent, and a POST whose run ended normally is called as usual', async () => {
    expect(await ended('dead-run-get')).toMatchObject({ state: 'completed', status: 'success' });
    // A POST whose only run ended normally never stalled: the next request is called as usual.
    const fresh = await post({ service: 'once', operation: 'create' });
    expect(fresh.status).toBe(200);
    expect(fresh.body).toMatchObject({ status: 'success' });
    const calls = backend.requests.map((r) => `${r.method} ${r.path}`);
    expect(calls.filter((c) => c === 'POST /items')).toHaveLength(1);
  });
});
