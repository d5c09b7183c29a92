import type { Job } from 'bullmq';
import { BackendCaller } from '@mcp-gateway/backends';
import { Broker, BrokerKeys, DeadLetters, RequestRecords, requestHash, type GatewayJobData } from '@mcp-gateway/broker';
import { configuredAgentIds, type GatewayConfig } from '@mcp-gateway/config';
import { GatewayMetrics, ServiceStats } from '@mcp-gateway/metrics';
import { createLogger, Tracing } from '@mcp-gateway/observability';
import { coalesceWrites, createRedis, type RedisClient } from '@mcp-gateway/redis';
import { ServiceRegistry } from '@mcp-gateway/registry';
import { ResilienceStore, resilienceKeys } from '@mcp-gateway/resilience';
import { startBackend, testConfig, testRedisTarget, type BackendHandler, type TestBackend } from '@mcp-gateway/testing';
import { InFlightCalls } from '../src/in-flight';
import { createProcessor, RetryLater } from '../src/pipeline';
import { STATS_FLUSH_MS } from '../src/pool';

/**
 * The worker's pipeline driven directly: createProcessor with the parts WorkerPool builds (one
 * coalesced Redis client for records, resilience, stats and the caller; the registry; the HTTP
 * caller), a real backend, and the test's own clock through `now`. Jobs are real BullMQ jobs, submitted
 * through the Broker as the API submits them and read back from their queue; no Worker runs, so
 * nothing takes them but the test. Each test has its own prefix, backend and clients.
 */

const WORKER_ID = 'pipeline-test-worker';
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

interface Fixture {
  config: GatewayConfig;
  backend: TestBackend;
  /** The worker's client (records, resilience, stats, caller). */
  redis: RedisClient;
  broker: Broker;
  records: RequestRecords;
  keys: BrokerKeys;
  registry: ServiceRegistry;
  resilience: ResilienceStore;
  metrics: GatewayMetrics;
  stats: ServiceStats;
  /** The pipeline's clock: only the test moves it. */
  clock: { t: number };
  /** The processor's in-flight calls (what the worker's cancellation subscription aborts). */
  inFlight: InFlightCalls;
  processJob: ReturnType<typeof createProcessor>;
  /** Submits a request as the API does and answers its job as a worker would get it. */
  submit(
    operation: string,
    options?: { service?: string; parameters?: Record<string, unknown>; timeoutMs?: number },
  ): Promise<Job<GatewayJobData>>;
  close(): Promise<void>;
}

let open: Fixture | undefined;
afterEach(async () => {
  await open?.close();
  open = undefined;
});

/** One service, `svc`: an idempotent GET and a POST, with a retry schedule of its own (linear, 700 ms). */
async function fixture(handler: BackendHandler): Promise<Fixture> {
  const backend = await startBackend(handler);
  const config = testConfig({
    services: {
      svc: {
        endpoint: backend.url,
        retryPolicy: { maxAttempts: 4, backoffStrategy: 'linear', initialDelay: 700, maxDelay: 5000, jitter: false },
        operations: [
          { name: 'read', method: 'GET', path: '/items/{id}', parameters: { type: 'object', properties: { id: { type: 'string' } } } },
          { name: 'write', method: 'POST', path: '/items' },
        ],
      },
    },
  });
  const prefix = config.redis.keyPrefix;
  // As WorkerPool: one coalesced client for everything a job sends.
  const redis = coalesceWrites(createRedis(testRedisTarget(), 'blocking', 'pipeline-test'));
  // The API's side, on a client of its own.
  const apiRedis = createRedis(testRedisTarget(), 'blocking', 'pipeline-test-api');
  const keys = new BrokerKeys(prefix);
  const registry = new ServiceRegistry(config);
  await registry.init();
  const records = new RequestRecords(redis, keys, config.results.ttlSeconds);
  const resilience = new ResilienceStore(redis, prefix);
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const stats = new ServiceStats(redis, prefix, undefined, STATS_FLUSH_MS);
  const caller = new BackendCaller({ redis, keyPrefix: prefix });
  const broker = new Broker({ redis: apiRedis, keyPrefix: prefix, resultTtlSeconds: config.results.ttlSeconds });
  const clock = { t: Date.now() };
  const inFlight = new InFlightCalls();
  const processJob = createProcessor({
    config,
    redis,
    registry,
    records,
    caller,
    resilience,
    logger: createLogger({ level: 'silent' }),
    metrics,
    stats,
    agents: configuredAgentIds(config),
    deadLetters: new DeadLetters(redis, keys, { maxPerService: 100, maxAgeHours: 1 }),
    tracing: Tracing.off,
    inFlight,
    workerId: WORKER_ID,
    now: () => clock.t,
  });
  let n = 0;
  const f: Fixture = {
    config,
    backend,
    redis,
    broker,
    records,
    keys,
    registry,
    resilience,
    metrics,
    stats,
    clock,
    inFlight,
    processJob,
    async submit(operation, { service = 'svc', parameters = {}, timeoutMs = 10_000 } = {}) {
      const data: GatewayJobData = {
        id: `req-${++n}`,
        service,
        operation,
        parameters,
        correlationId: `corr-${n}`,
        traceparent: TRACEPARENT,
        acceptedAt: clock.t,
        deadline: clock.t + timeoutMs,
        priority: 'normal',
      };
      const maxAttempts = registry.get(service) ? registry.retryPolicy(service).maxAttempts : 1;
      expect(await broker.submit(data, requestHash(service, operation, parameters), { maxAttempts })).toEqual({ kind: 'created' });
      const job = await broker.queue(service).getJob(data.id);
      expect(job).toBeDefined();
      return job as Job<GatewayJobData>;
    },
    async close() {
      await stats.close().catch(() => undefined);
      await broker.close();
      caller.close();
      redis.disconnect();
      apiRedis.disconnect();
      await backend.close();
    },
  };
  open = f;
  return f;
}

/** The stored result as the API reads it. */
async function stored(f: Fixture, id: string) {
  const rec = await f.records.get(id);
  expect(rec).toBeDefined();
  return rec!;
}

/**
 * A request whose run handed its job back (RetryLater: BullMQ then delays it, and the API reads it as
 * retrying): its record has not ended, and the job keeps the first run's start.
 */
async function handedBack(f: Fixture, job: Job<GatewayJobData>) {
  const rec = await stored(f, job.data.id);
  const kept = await f.broker.queue(job.data.service).getJob(job.data.id);
  return { state: rec.state, ...(rec.result ? { result: rec.result } : {}), startedAt: kept?.data.startedAt };
}

const requestsCounted = async (f: Fixture) => (await f.metrics.requests.get()).values.map((v) => ({ labels: v.labels, value: v.value }));

it('a job taken when its deadline has come ends TIMEOUT without calling the backend or taking a token', async () => {
  const f = await fixture(() => ({ status: 200, body: {} }));
  const accepted = f.clock.t;
  const job = await f.submit('read', { parameters: { id: '1' }, timeoutMs: 1000 });
  // Taken exactly at the deadline: no time is left for a call.
  f.clock.t = accepted + 1000;
  await f.processJob(job);
  expect(f.backend.requests).toHaveLength(0);
  const rec = await stored(f, job.data.id);
  expect(rec.state).toBe('failed');
  expect(rec.result).toMatchObject({
    status: 'error',
    error: { code: 'TIMEOUT', retryable: true, message: 'The deadline passed before the backend could be called' },
    metadata: {
      attempts: 0,
      queuedMs: 1000,
      processingTime: 0,
      completedAt: new Date(accepted + 1000).toISOString(),
    },
  });
  expect(rec.result!.metadata).not.toHaveProperty('backendStatus');
  // Admission was not asked: the service's bucket was never touched.
  expect(await f.redis.exists(resilienceKeys(f.config.redis.keyPrefix, 'svc').bucket)).toBe(0);
  expect(await requestsCounted(f)).toEqual([{ labels: { service: 'svc', operation: 'read', outcome: 'TIMEOUT' }, value: 1 }]);
});

it('a retryable failure of an idempotent call throws RetryLater with the schedule’s delay; its job keeps the first run’s start', async () => {
  const f = await fixture(() => ({ status: 503, body: { error: 'busy' } }));
  const job = await f.submit('read', { parameters: { id: '1' } });
  f.clock.t += 20;
  const thrown = await f.processJob(job).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(thrown).toBeInstanceOf(RetryLater);
  // The service's linear schedule: 700 ms before the first retry.
  expect(thrown).toMatchObject({ delayMs: 700, backendStatus: 503, lastError: { code: 'BACKEND_ERROR', retryable: true } });
  expect(f.backend.requests).toHaveLength(1);
  expect(await handedBack(f, job)).toEqual({ state: 'queued', startedAt: f.clock.t });
  // The failure counts against the breaker, and the retry in the metrics; the request has not ended.
  const svc = f.registry.require('svc');
  expect(await f.resilience.breaker('svc', svc)).toMatchObject({ state: 'closed', failures: 1 });
  expect((await f.metrics.retries.get()).values).toEqual([expect.objectContaining({ labels: { service: 'svc' }, value: 1 })]);
  expect(await requestsCounted(f)).toEqual([]);
});

it('a Retry-After longer than the schedule’s delay sets the retry’s delay', async () => {
  const f = await fixture(() => ({ status: 503, headers: { 'retry-after': '3' }, body: {} }));
  const job = await f.submit('read', { parameters: { id: '1' } });
  await expect(f.processJob(job)).rejects.toMatchObject({ name: 'RetryLater', delayMs: 3000 });
  expect((await handedBack(f, job)).state).toBe('queued');
});

it('a retry that could not start before the deadline is not scheduled: the request ends with the failure', async () => {
  // The backend answers when the clock says; the retry (700 ms later) must start before the deadline.
  let answerAt = 0;
  const f = await fixture(() => {
    f.clock.t = answerAt;
    return { status: 503, body: { error: 'busy' } };
  });
  const accepted = f.clock.t;
  const late = await f.submit('read', { parameters: { id: 'late' }, timeoutMs: 5000 });
  answerAt = accepted + 5000 - 700;
  await f.processJob(late);
  const rec = await stored(f, late.data.id);
  expect(rec.state).toBe('failed');
  expect(rec.result).toMatchObject({
    error: { code: 'BACKEND_ERROR', retryable: true },
    metadata: { attempts: 1, backendStatus: 503, queuedMs: 0, processingTime: 5000 - 700 },
  });
  // One millisecond more before the deadline, and the retry is scheduled.
  f.clock.t = accepted;
  const inTime = await f.submit('read', { parameters: { id: 'in-time' }, timeoutMs: 5000 });
  answerAt = accepted + 5000 - 701;
  await expect(f.processJob(inTime)).rejects.toMatchObject({ name: 'RetryLater', delayMs: 700 });
  expect((await handedBack(f, inTime)).state).toBe('queued');
  expect(f.backend.requests.map((r) => r.path)).toEqual(['/items/late', '/items/in-time']);
});

it('a non-idempotent write whose connection broke after it was sent is not retried, and says it may have been done', async () => {
  // The backend reads the request, then drops the connection without an answer.
  const f = await fixture(() => ({ destroy: true }));
  const write = await f.submit('write', { parameters: { name: 'x' } });
  await f.processJob(write);
  expect(f.backend.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /items']);
  const rec = await stored(f, write.data.id);
  expect(rec.state).toBe('failed');
  expect(rec.result).toMatchObject({
    error: { code: 'BACKEND_ERROR', retryable: false, details: { outcome: 'unknown' } },
    metadata: { attempts: 1 },
  });
  expect(rec.result!.error!.message).toMatch(
    /not idempotent and the backend may have carried it out, so calling it again could do it twice/,
  );
  // The same break on an idempotent read is retried: idempotency is what decides.
  const read = await f.submit('read', { parameters: { id: '1' } });
  await expect(f.processJob(read)).rejects.toMatchObject({ name: 'RetryLater', delayMs: 700 });
  expect((await handedBack(f, read)).state).toBe('queued');
});

it('a success stores the backend’s body as it sent it, with times from the clock', async () => {
  const f = await fixture((req) => {
    // The call takes 250 ms of the test's clock.
    f.clock.t += 250;
    return req.path === '/items/7'
      ? { status: 200, body: '{"id": "7", "n": 12345678901234567890}', headers: { 'content-type': 'application/json' } }
      : { status: 404, body: {} };
  });
  const accepted = f.clock.t;
  const job = await f.submit('read', { parameters: { id: '7' } });
  // 40 ms in the queue.
  f.clock.t += 40;
  await f.processJob(job);
  const [seen] = f.backend.requests;
  expect(seen!.headers).toMatchObject({
    'idempotency-key': job.data.id,
    'x-correlation-id': job.data.correlationId,
    'x-gateway-worker': WORKER_ID,
  });
  const rec = await stored(f, job.data.id);
  expect(rec.state).toBe('completed');
  expect(rec.result).toEqual({
    id: job.data.id,
    status: 'success',
    data: { id: '7', n: 12345678901234567890 },
    metadata: {
      correlationId: job.data.correlationId,
      service: 'svc',
      operation: 'read',
      attempts: 1,
      queuedMs: 40,
      processingTime: 250,
      backendStatus: 200,
      completedAt: new Date(accepted + 290).toISOString(),
    },
  });
  // Stored as the backend wrote it (spacing, and a number no double holds), not serialized again.
  expect(await f.redis.get(f.keys.request(job.data.id))).toContain('"data":{"id": "7", "n": 12345678901234567890},');
  expect((await f.records.results([job.data.id])).get(job.data.id)?.json).toContain(
    '"data":{"id": "7", "n": 12345678901234567890},"metadata":',
  );
  expect(await requestsCounted(f)).toEqual([{ labels: { service: 'svc', operation: 'read', outcome: 'success' }, value: 1 }]);
  // The service's numbers: accepted to ended on the test's clock.
  await f.stats.flush();
  expect(await f.stats.snapshot('svc')).toEqual({ counts: { success: 1 }, latency: { p50: 290, p95: 290, p99: 290, window: 1 } });
});

it('a job for an operation its service no longer defines ends UNKNOWN_OPERATION without a call', async () => {
  const f = await fixture(() => ({ status: 200, body: {} }));
  const job = await f.submit('removedOp');
  await f.processJob(job);
  expect(f.backend.requests).toHaveLength(0);
  const rec = await stored(f, job.data.id);
  expect(rec.state).toBe('failed');
  expect(rec.result).toMatchObject({
    error: { code: 'UNKNOWN_OPERATION', retryable: false, details: { operations: ['read', 'write'] } },
    metadata: { operation: 'removedOp', attempts: 0 },
  });
  // An unknown operation is one bounded label, not the caller's name.
  expect(await requestsCounted(f)).toEqual([{ labels: { service: 'svc', operation: '_unknown', outcome: 'UNKNOWN_OPERATION' }, value: 1 }]);
});

it('a job for a service no longer configured ends UNKNOWN_SERVICE without a call', async () => {
  const f = await fixture(() => ({ status: 200, body: {} }));
  const job = await f.submit('read', { service: 'gone' });
  await f.processJob(job);
  expect(f.backend.requests).toHaveLength(0);
  const rec = await stored(f, job.data.id);
  expect(rec.state).toBe('failed');
  expect(rec.result).toMatchObject({ error: { code: 'UNKNOWN_SERVICE' }, metadata: { service: 'gone', attempts: 0 } });
});

it('a job whose request was cancelled as a worker fetched it is not called, and the CANCELLED result stays', async () => {
  const f = await fixture(() => ({ status: 200, body: {} }));
  const job = await f.submit('read', { parameters: { id: '1' } });
  // The API finds the job taken (locked), so it cancels it as a running one and every worker hears
  // the id; this worker heard it before the job's run began.
  const cancelled = await f.broker.cancel(job.data.id);
  f.inFlight.abort(job.data.id);
  f.clock.t += 10;
  await f.processJob(job);
  expect(f.backend.requests).toHaveLength(0);
  const rec = await stored(f, job.data.id);
  expect(rec.state).toBe('cancelled');
  expect(rec.result).toEqual({ ...cancelled, state: undefined });
  // The worker counted nothing, and took no token: the request ended where it was cancelled.
  expect(await requestsCounted(f)).toEqual([]);
  expect((await f.resilience.limiter('svc', f.registry.require('svc'))).tokens).toBeCloseTo(
    f.registry.require('svc').rateLimit.burstLimit,
    0,
  );
});

it('a job handed back by its earlier run (to wait for admission) whose request ended meanwhile is skipped: no call', async () => {
  const f = await fixture(() => ({ status: 200, body: {} }));
  const job = await f.submit('read', { parameters: { id: '1' } });
  await job.updateData({ ...job.data, startedAt: f.clock.t });
  const cancelled = await f.broker.cancel(job.data.id);
  await f.processJob(job);
  expect(f.backend.requests).toHaveLength(0);
  expect((await stored(f, job.data.id)).result).toEqual({ ...cancelled, state: undefined });
  expect(await requestsCounted(f)).toEqual([]);
  // Its first run, not handed back, is not read first: only the cancellation it heard stops it.
  const fresh = await f.submit('read', { parameters: { id: '2' } });
  await f.processJob(fresh);
  expect(f.backend.requests).toHaveLength(1);
});

it('a success admitted on a closed breaker with no failures writes nothing to the breaker; one admitted after a failure resets it', async () => {
  let status = 200;
  const f = await fixture(() => ({ status, body: { ok: status === 200 } }));
  const breakerKey = resilienceKeys(f.config.redis.keyPrefix, 'svc').breaker;
  await f.processJob(await f.submit('read', { parameters: { id: '1' } }));
  expect((await stored(f, 'req-1')).state).toBe('completed');
  // Nothing was counted, so nothing was written: the breaker has no hash at all.
  expect(await f.redis.exists(breakerKey)).toBe(0);

  status = 500;
  // A POST is not retried: one failure, counted.
  await f.processJob(await f.submit('write'));
  expect(await f.resilience.breaker('svc', f.registry.require('svc'))).toMatchObject({ state: 'closed', failures: 1 });

  status = 200;
  await f.processJob(await f.submit('read', { parameters: { id: '3' } }));
  // Admitted with a failure counted: the success is recorded and resets the count.
  expect(await f.resilience.breaker('svc', f.registry.require('svc'))).toMatchObject({ state: 'closed', failures: 0 });
});

it('a call that times out because it started late in its deadline (a long queue, a Redis stall) does not count against the service', async () => {
  const f = await fixture(() => ({ status: 200, body: { ok: true }, delayMs: 1000 }));
  const job = await f.submit('read', { parameters: { id: '1' }, timeoutMs: f.config.defaultTimeout });
  // Taken with 200 ms of its deadline left: the call gets those 200 ms, not the service's own timeout.
  f.clock.t += f.config.defaultTimeout - 200;
  await f.processJob(job).catch(() => undefined);
  expect((await stored(f, job.id!)).result?.error?.code).toBe('TIMEOUT');
  expect(f.backend.requests).toHaveLength(1);
  expect(await f.resilience.breaker('svc', f.registry.require('svc'))).toMatchObject({ state: 'closed', failures: 0 });
});
