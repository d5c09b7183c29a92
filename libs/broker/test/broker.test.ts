import { Worker } from 'bullmq';
import { subscribe, type RedisClient } from '@mcp-gateway/redis';
import type { MCPResponse, Priority } from '@mcp-gateway/protocol';
import {
  Broker,
  BrokerKeys,
  RECORD_SHARDS,
  ResultWaiter,
  WorkerPresence,
  recordShard,
  requestHash,
  type GatewayJobData,
  type Lane,
  type SubmitOutcome,
  type Waiter,
} from '@mcp-gateway/broker';
import { takeAndAbandon, testRedis, uniquePrefix } from '@mcp-gateway/testing';

/** Whose request the tests' records are (the hash they submit with, no agent). */
const OWNER = { hash: 'h' };
let redis: RedisClient;
let subscriber: RedisClient;
let broker: Broker;
let prefix: string;

beforeEach(() => {
  prefix = uniquePrefix('brk');
  redis = testRedis();
  subscriber = testRedis('subscriber');
  broker = new Broker({ redis, keyPrefix: prefix, resultTtlSeconds: 60 });
});

afterEach(async () => {
  await broker.close();
  redis.disconnect();
  subscriber.disconnect();
});

function job(id: string, parameters: Record<string, unknown> = { a: 1 }): GatewayJobData {
  const now = Date.now();
  return {
    id,
    service: 'svc',
    operation: 'op',
    parameters,
    correlationId: 'c-1',
    traceparent: '',
    acceptedAt: now,
    deadline: now + 5000,
    priority: 'normal',
  };
}

function result(id: string, data: unknown): MCPResponse {
  return {
    id,
    status: 'success',
    data,
    metadata: {
      correlationId: 'c-1',
      service: 'svc',
      operation: 'op',
      attempts: 1,
      queuedMs: 1,
      processingTime: 1,
      completedAt: new Date().toISOString(),
    },
  };
}

describe('Broker.submit', () => {
  it('creates one job per id and joins a repeat with the same body', async () => {
    const d = job('req-1');
    const hash = requestHash('svc', 'op', d.parameters);
    expect(await broker.submit(d, hash, { maxAttempts: 3 })).toEqual({ kind: 'created' });
    expect(await broker.submit(d, hash, { maxAttempts: 3 })).toEqual({ kind: 'joined', state: 'queued' });
    const counts = await broker.counts('svc');
    expect(counts.waiting).toBe(1);
    const bull = await broker.queue('svc').getJob('req-1');
    expect(bull?.data.parameters).toEqual({ a: 1 });
    expect(bull?.opts.attempts).toBe(3);
  });

  it('answers CONFLICT for the same id with another body', async () => {
    await broker.submit(job('req-2'), requestHash('svc', 'op', { a: 1 }), { maxAttempts: 1 });
    await expect(broker.submit(job('req-2', { a: 2 }), requestHash('svc', 'op', { a: 2 }), { maxAttempts: 1 })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });

  it('hashes parameters independently of key order', () => {
    expect(requestHash('s', 'o', { a: 1, b: { c: 2, d: 3 } })).toBe(requestHash('s', 'o', { b: { d: 3, c: 2 }, a: 1 }));
    expect(requestHash('s', 'o', { a: 1 })).not.toBe(requestHash('s', 'o', { a: '1' }));
    // Another agent reusing an id is a different request (CONFLICT), never a way into someone's job.
    expect(requestHash('s', 'o', { a: 1 }, 'planner')).not.toBe(requestHash('s', 'o', { a: 1 }, 'billing'));
  });

  it('returns the stored result to a late duplicate', async () => {
    const d = job('req-3');
    const hash = requestHash('svc', 'op', d.parameters);
    await broker.submit(d, hash, { maxAttempts: 1 });
    const r = result('req-3', { ok: true });
    expect(await broker.records.finish(r, 'completed', { hash })).toBe(true);
    const again = await broker.submit(d, hash, { maxAttempts: 1 });
    expect(again).toMatchObject({ kind: 'joined', state: 'completed' });
    const stored = again.kind === 'joined' ? again.result : undefined;
    // The result as stored: its JSON, byte for byte the worker's, parsed on demand.
    expect(stored?.json).toBe(JSON.stringify(r));
    expect(stored?.result).toMatchObject({ id: 'req-3', status: 'success', data: { ok: true } });
    expect(stored?.result).toBe(stored?.result);
    // Ended, the record still knows the body it was claimed with: another body is a conflict.
    await expect(broker.submit(job('req-3', { a: 2 }), requestHash('svc', 'op', { a: 2 }), { maxAttempts: 1 })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });
});

describe('Broker.submitFresh', () => {
  it('claims a fresh id and queues its job, sent together', async () => {
    const d = job('fresh-1');
    const hash = requestHash('svc', 'op', d.parameters);
    expect(await broker.submitFresh(d, hash, { maxAttempts: 2 })).toEqual({ kind: 'created' });
    expect(await broker.records.get('fresh-1')).toMatchObject({ state: 'queued', service: 'svc' });
    const bull = await broker.queue('svc').getJob('fresh-1');
    expect([bull?.data.parameters, bull?.data.hash, bull?.opts.attempts]).toEqual([{ a: 1 }, hash, 2]);
    // The claim is the same as submit's: the id sent again with the same body joins it.
    expect(await broker.submit(d, hash, { maxAttempts: 2 })).toEqual({ kind: 'joined', state: 'queued' });
  });

  it('leaves no claim behind when Redis refuses the job', async () => {
    // The queue's meta key of the wrong type: BullMQ's add fails in Redis.
    await redis.set(broker.queue('svc').keys.meta, 'not a hash');
    const d = job('fresh-2');
    await expect(broker.submitFresh(d, requestHash('svc', 'op', d.parameters), { maxAttempts: 1 })).rejects.toThrow(/WRONGTYPE/);
    expect(await broker.records.get('fresh-2')).toBeUndefined();
  });
});

describe('priorities', () => {
  it('puts critical and high requests in the urgent lane, then high; normal then low in the normal lane; each in the order accepted', async () => {
    const submitted: Array<[string, Priority]> = [
      ['n1', 'normal'],
      ['l1', 'low'],
      ['h1', 'high'],
      ['n2', 'normal'],
      ['c1', 'critical'],
      ['h2', 'high'],
      ['l2', 'low'],
      ['n3', 'normal'],
    ];
    for (const [id, priority] of submitted) {
      const d = { ...job(id), priority };
      await broker.submit(d, requestHash('svc', 'op', d.parameters), { maxAttempts: 1 });
    }
    // A normal request is a standard BullMQ job (no priority counter, no prioritized set): only the lows are prioritized.
    expect(await redis.lrange(broker.keys.queueKey('svc', 'wait'), 0, -1)).toEqual(['n3', 'n2', 'n1']);
    expect(await redis.zrange(broker.keys.queueKey('svc', 'prioritized'), 0, -1)).toEqual(['l1', 'l2']);
    const connection = testRedis();
    const takeAll = async (lane: Lane) => {
      const worker = new Worker(broker.keys.queueName('svc', lane), null, { connection, prefix: broker.keys.prefix, autorun: false });
      const taken: string[] = [];
      for (let next = await worker.getNextJob('test-token'); next; next = await worker.getNextJob('test-token')) {
        taken.push(String(next.id));
        await next.moveToCompleted('done', 'test-token', false);
      }
      await worker.close();
      return taken;
    };
    expect(await takeAll('urgent')).toEqual(['c1', 'h1', 'h2']);
    expect(await takeAll('normal')).toEqual(['n1', 'n2', 'n3', 'l1', 'l2']);
    connection.disconnect();
  });
});

describe('records.finish with the data as JSON text', () => {
  it('stores the text in place of data, in its usual place, and publishes the same', async () => {
    const waiter = new ResultWaiter(subscriber, broker.records, broker.keys);
    await waiter.start();
    await broker.submit(job('req-raw'), 'h', { maxAttempts: 1 });
    const woken = waiter.register('req-raw').wait(5000);
    const r = result('req-raw', { ignored: true });
    expect(await broker.records.finish(r, 'completed', OWNER, { dataJson: '{"big": 12345678901234567890}' })).toBe(true);
    const expected = `{"id":"req-raw","status":"success","data":{"big": 12345678901234567890},"metadata":${JSON.stringify(r.metadata)}}`;
    expect((await woken)?.json).toBe(expected);
    // Kept as the backend's text, and read back as the same JSON.
    expect(await redis.get(broker.keys.request('req-raw'))).toContain('"data":{"big": 12345678901234567890}');
    expect((await broker.records.results(['req-raw'])).get('req-raw')?.json).toBe(expected);
    await waiter.close();
  });
});

describe('a stored result', () => {
  it('is kept as one string after the record’s state, hash and agent, without the id its key holds', async () => {
    await broker.submit({ ...job('req-small'), agentId: 'planner' }, 'h', { maxAttempts: 1 });
    const r = result('req-small', { ok: true, item: { id: 42, name: 'Item 42' } });
    expect(await broker.records.finish(r, 'completed', { hash: 'h', agentId: 'planner' })).toBe(true);
    const { id: _id, ...withoutId } = r;
    expect(await redis.get(broker.keys.request('req-small'))).toBe(`completed\nh\n"planner"\n${JSON.stringify(withoutId)}`);
    expect((await broker.records.get('req-small'))?.result).toEqual(r);
  });

  it('keeps an agent id with a line break whole, claimed and ended', async () => {
    const agentId = 'agent\nwith a break';
    await broker.submit({ ...job('req-agent'), agentId }, 'h', { maxAttempts: 1 });
    expect(await broker.records.get('req-agent')).toMatchObject({ state: 'queued', agentId, service: 'svc' });
    expect(await broker.records.finish(result('req-agent', 1), 'completed', { hash: 'h', agentId })).toBe(true);
    expect(await broker.records.get('req-agent')).toMatchObject({ state: 'completed', agentId, result: { data: 1 } });
  });

  it('of the layout before records were text (a hash) can still be read for its TTL', async () => {
    const key = broker.keys.request('req-old');
    await redis.hset(key, 'state', 'completed', 'service', 'svc', 'correlationId', 'c-1', 'hash', 'h', 'data', '1');
    await redis.hset(key, 'operation', 'op', 'attempts', '1', 'queuedMs', '2', 'processingTime', '3', 'completedAt', 'T');
    expect(await broker.status('req-old')).toMatchObject({ id: 'req-old', state: 'completed', data: 1, metadata: { operation: 'op' } });
  });

  it('stores a result once: a second finish does not overwrite it', async () => {
    const d = job('req-4');
    await broker.submit(d, 'h', { maxAttempts: 1 });
    expect(await broker.records.finish(result('req-4', 1), 'completed', OWNER)).toBe(true);
    const kept = await redis.get(broker.keys.request('req-4'));
    expect(await broker.records.finish(result('req-4', 2), 'failed', OWNER)).toBe(false);
    expect(await redis.get(broker.keys.request('req-4'))).toBe(kept);
    const status = await broker.status('req-4');
    expect(status).toMatchObject({ id: 'req-4', state: 'completed', data: 1 });
  });

  it('says where a request that has not ended is in its run, from its job', async () => {
    await broker.submit(job('req-5'), 'h', { maxAttempts: 1 });
    expect(await broker.status('req-5')).toEqual({ id: 'req-5', state: 'queued' });
    await takeAndAbandon(prefix, broker.keys.queueName('svc'), 'req-5', 60_000);
    expect(await broker.status('req-5')).toEqual({ id: 'req-5', state: 'active' });
  });
});

describe('Broker.sweepOverdue', () => {
  it('ends every overdue request in batches, removes their jobs, and leaves requests not yet overdue alone', async () => {
    const past = Date.now() - 60_000;
    const overdue = ['sw-1', 'sw-2', 'sw-3', 'sw-4', 'sw-5'];
    for (const id of overdue)
      await broker.submit({ ...job(id), service: 'swept', acceptedAt: past, deadline: past + 1000 }, 'h', { maxAttempts: 1 });
    await broker.submit({ ...job('sw-later'), service: 'swept' }, 'h', { maxAttempts: 1 });
    // Batches of 2: one sweep still goes through all five.
    const ended = await broker.sweepOverdue(10_000, 5000, 2);
    expect(ended.sort()).toEqual(overdue);
    for (const id of overdue) {
      expect(await broker.status(id)).toMatchObject({
        state: 'failed',
        error: { code: 'TIMEOUT', retryable: true, details: { state: 'queued' } },
        metadata: { service: 'swept', operation: 'op' },
      });
      expect(await broker.queue('swept').getJob(id)).toBeUndefined();
    }
    expect(await broker.status('sw-later')).toMatchObject({ state: 'queued' });
    expect((await Promise.all(broker.keys.pendingShards().map((k) => redis.zrange(k, 0, -1)))).flat()).toEqual(['sw-later']);
    // The lock: another sweep within the period does nothing.
    // (An index entry whose record cannot be read is dropped, not read again by every sweep: see below.)
    expect(await broker.sweepOverdue(0, 5000, 2)).toEqual([]);
    expect(await broker.status('sw-later')).toMatchObject({ state: 'queued' });
  });
});

describe('a submission joining its request', () => {
  it('whose job ended since the claim was read gets the stored result, and no job is added again', async () => {
    const d = job('join-1');
    await broker.submit(d, 'h', { maxAttempts: 1 });
    // The worker stored the result and BullMQ removed the finished job.
    expect(await broker.records.finish(result('join-1', 'done'), 'completed', OWNER)).toBe(true);
    await (await broker.queue('svc').getJob('join-1'))!.remove();
    // What a join that read the claim just before the finish does next (private, so reached as the broker does).
    const joining = broker as unknown as { join(d: GatewayJobData, claimed: object, retry: object): Promise<SubmitOutcome> };
    const joined = await joining.join(d, { kind: 'joined', state: 'queued' }, { maxAttempts: 1 });
    expect(joined).toMatchObject({ kind: 'joined', state: 'completed' });
    expect(joined.kind === 'joined' && joined.result?.result.data).toBe('done');
    expect(await broker.queue('svc').getJob('join-1')).toBeUndefined();
  });

  it('whose job was never added adds it again, marked so that its run reads the record first', async () => {
    const now = Date.now();
    await broker.records.claim({
      id: 'join-2',
      hash: 'h',
      service: 'svc',
      acceptedAt: now - 100,
      deadline: now + 4900,
      correlationId: 'c-1',
    });
    expect(await broker.submit(job('join-2'), 'h', { maxAttempts: 1 })).toEqual({ kind: 'joined', state: 'queued' });
    expect((await broker.queue('svc').getJob('join-2'))?.data).toMatchObject({
      rejoined: true,
      acceptedAt: now - 100,
      deadline: now + 4900,
    });
  });
});

describe('Broker.sweepOverdue with a record it cannot read', () => {
  it('drops that entry from the index and still ends the others', async () => {
    const past = Date.now() - 60_000;
    await redis.set(broker.keys.request('sw-bad'), 'queued\nh\n"unterminated\n{}');
    await redis.zadd(broker.keys.pending('sw-bad'), past, 'sw-bad');
    await broker.submit({ ...job('sw-good'), service: 'swept', acceptedAt: past, deadline: past + 1000 }, 'h', { maxAttempts: 1 });
    expect(await broker.sweepOverdue(10_000, 5000, 10)).toEqual(['sw-good']);
    expect(await redis.zscore(broker.keys.pending('sw-bad'), 'sw-bad')).toBeNull();
  });
});

describe('Broker.cancel', () => {
  it('cancels a queued request: job removed, result CANCELLED', async () => {
    await broker.submit(job('req-7'), 'h', { maxAttempts: 1 });
    const status = await broker.cancel('req-7');
    expect(status).toMatchObject({ id: 'req-7', state: 'cancelled', status: 'error', error: { code: 'CANCELLED' } });
    expect(await broker.queue('svc').getJob('req-7')).toBeUndefined();
  });

  it('cancels a running request and tells the workers; refuses an ended one and an unknown id', async () => {
    await broker.submit(job('req-8'), 'h', { maxAttempts: 1 });
    // A worker holds its job (a locked job cannot be removed).
    await takeAndAbandon(prefix, broker.keys.queueName('svc'), 'req-8', 60_000);
    const listener = testRedis('subscriber');
    let resolveHeard: (id: string) => void = () => undefined;
    const heard = new Promise<string>((resolve) => (resolveHeard = resolve));
    await subscribe(
      listener,
      [broker.keys.cancelsChannel()],
      (channel, id) => channel === broker.keys.cancelsChannel() && resolveHeard(id),
    );
    try {
      const status = await broker.cancel('req-8');
      expect(status).toMatchObject({ id: 'req-8', state: 'cancelled', error: { code: 'CANCELLED', details: { state: 'active' } } });
      expect(await heard).toBe('req-8');
    } finally {
      listener.disconnect();
    }
    await expect(broker.cancel('req-8')).rejects.toMatchObject({ code: 'CONFLICT', details: { state: 'cancelled' } });
    // A job whose worker died holding it (its lock expired, no live worker handed it back): its call
    // may have been made, and the cancel says so.
    await broker.submit(job('req-8b'), 'h', { maxAttempts: 1 });
    await takeAndAbandon(prefix, broker.keys.queueName('svc'), 'req-8b', 100);
    await new Promise((r) => setTimeout(r, 250));
    expect(await broker.cancel('req-8b')).toMatchObject({ error: { code: 'CANCELLED', details: { state: 'active' } } });
    expect(await broker.queue('svc').getJob('req-8b')).toBeUndefined();
    await expect(broker.cancel('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

/**
 * The timers that waits start, told apart from the process's others (a Redis client's, an earlier
 * file's) by the argument a wait's timer carries: its waiter.
 */
function watchWaitTimers() {
  const set = jest.spyOn(global, 'setTimeout');
  const clear = jest.spyOn(global, 'clearTimeout');
  return {
    of(waiters: Waiter[]): { started: number; leftRunning: number } {
      const started = set.mock.calls.flatMap((call, i) =>
        waiters.includes((call as unknown[])[2] as Waiter) ? [set.mock.results[i]!.value as unknown] : [],
      );
      const cleared = new Set(clear.mock.calls.map((call) => call[0] as unknown));
      return { started: started.length, leftRunning: started.filter((t) => !cleared.has(t)).length };
    },
  };
}

describe('ResultWaiter', () => {
  afterEach(() => jest.restoreAllMocks());

  it('wakes every waiter of an id from one subscription', async () => {
    const waiter = new ResultWaiter(subscriber, broker.records, broker.keys);
    await waiter.start();
    await broker.submit(job('req-9'), 'h', { maxAttempts: 1 });
    const a = waiter.register('req-9').wait(5000);
    const b = waiter.register('req-9').wait(5000);
    expect(waiter.size).toBe(2);
    const r = result('req-9', 'x');
    await broker.records.finish(r, 'completed', OWNER);
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra?.result.data).toBe('x');
    expect(rb?.state).toBe('completed');
    // The message carries the result's JSON exactly as a later read of the record rebuilds it.
    expect(ra?.json).toBe(JSON.stringify(r));
    expect((await broker.records.results(['req-9'])).get('req-9')?.json).toBe(ra?.json);
    expect(waiter.size).toBe(0);
    await waiter.close();
  });

  it('finds a result whose notification was missed (sweep read)', async () => {
    const waiter = new ResultWaiter(subscriber, broker.records, broker.keys, { sweepIntervalMs: 100 });
    await waiter.start();
    await broker.submit(job('req-10'), 'h', { maxAttempts: 1 });
    const pending = waiter.register('req-10').wait(10_000);
    // Written without PUBLISH: only the fallback read can find it.
    const { id: _id, ...stored } = result('req-10', 'late');
    await redis.set(broker.keys.request('req-10'), `completed\nh\n\n${JSON.stringify(stored)}`);
    const started = Date.now();
    const got = await pending;
    expect(got?.result.data).toBe('late');
    expect(Date.now() - started).toBeLessThan(5000);
    await waiter.close();
  });

  it('resolves undefined when nothing arrives in time', async () => {
    const waiter = new ResultWaiter(subscriber, broker.records, broker.keys);
    await waiter.start();
    await broker.submit(job('req-11'), 'h', { maxAttempts: 1 });
    expect(await waiter.register('req-11').wait(50)).toBeUndefined();
    expect(waiter.size).toBe(0);
    await waiter.close();
  });

  it('a waiter cancelled before its wait began resolves undefined at once and leaves no timer behind', async () => {
    const waiter = new ResultWaiter(subscriber, broker.records, broker.keys);
    await waiter.start();
    const timers = watchWaitTimers();
    const w = waiter.register('req-12');
    w.cancel();
    expect(await w.wait(60_000)).toBeUndefined();
    expect(timers.of([w])).toEqual({ started: 0, leftRunning: 0 });
    expect(waiter.size).toBe(0);
    await waiter.close();
  });

  it("cancelling one of an id's waiters leaves the others waiting; cancelAll ends every wait at once, timers too", async () => {
    const waiter = new ResultWaiter(subscriber, broker.records, broker.keys);
    await waiter.start();
    const timers = watchWaitTimers();
    await broker.submit(job('req-13'), 'h', { maxAttempts: 1 });
    const [a, b, c] = [waiter.register('req-13'), waiter.register('req-13'), waiter.register('req-13')];
    const [wa, wb, wc] = [a.wait(60_000), b.wait(60_000), c.wait(60_000)];
    // The one in the middle.
    b.cancel();
    expect(await wb).toBeUndefined();
    expect(waiter.size).toBe(2);
    await broker.records.finish(result('req-13', 'y'), 'completed', OWNER);
    expect([(await wa)?.result.data, (await wc)?.result.data]).toEqual(['y', 'y']);
    // Cancelled again, or after it ended: nothing to count down.
    b.cancel();
    a.cancel();
    expect(waiter.size).toBe(0);
    const others = [waiter.register('req-14'), waiter.register('req-15'), waiter.register('req-15')];
    const rest = others.map((w) => w.wait(60_000));
    expect(waiter.size).toBe(3);
    waiter.cancelAll();
    expect(await Promise.all(rest)).toEqual([undefined, undefined, undefined]);
    expect(waiter.size).toBe(0);
    expect(timers.of([a, b, c, ...others])).toEqual({ started: 6, leftRunning: 0 });
    await waiter.close();
  });
});

describe('WorkerPresence', () => {
  it('counts workers heard from recently, with the services they serve', async () => {
    const presence = new WorkerPresence(redis, broker.keys, 1000);
    await presence.beat('w1', ['a', 'b'], 10_000);
    await presence.beat('w2', ['a'], 10_500);
    expect(await presence.live(10_900)).toEqual([
      { id: 'w1', services: ['a', 'b'] },
      { id: 'w2', services: ['a'] },
    ]);
    expect((await presence.live(11_200)).map((w) => w.id)).toEqual(['w2']);
    await presence.leave('w2');
    expect(await presence.live(10_900)).toEqual([{ id: 'w1', services: ['a', 'b'] }]);
    // A worker silent for 4 × the stale time is dropped from both keys; both keys expire.
    await presence.beat('w3', ['a'], 14_100);
    expect(await redis.zrange(broker.keys.workers(), 0, -1)).toEqual(['w3']);
    expect(await redis.hkeys(`${broker.keys.workers()}:services`)).toEqual(['w3']);
    expect(await redis.pttl(broker.keys.workers())).toBeGreaterThan(0);
    expect(await redis.pttl(`${broker.keys.workers()}:services`)).toBeGreaterThan(0);
  });
});

/** The parts of three ids under FNV-1a mod 16, as first stored: a changed hash would fail here. */
const PINNED_SHARDS = [11, 1, 0];

describe('BrokerKeys: request records and the sweep index', () => {
  it('puts a record and its index entry under one hash tag (one cluster slot), spread over every part', () => {
    const keys = new BrokerKeys('p');
    const tag = (key: string) => /\{([^}]+)\}/.exec(key)?.[1];
    const used = new Set<string>();
    for (let i = 0; i < 400; i += 1) {
      const id = `req-${i}-${(i * 7919).toString(36)}`;
      expect(tag(keys.request(id))).toBe(tag(keys.pending(id)));
      expect(keys.request(id).endsWith(`:${id}`)).toBe(true);
      used.add(keys.pending(id));
    }
    expect([...used].sort()).toEqual([...keys.pendingShards()].sort());
    expect(keys.pendingShards()).toHaveLength(RECORD_SHARDS);
    // The layout is fixed: records stored by an earlier process must be found by id alone (polls,
    // cancels), so an id's part may never change.
    expect(['a-fixed-id', 'req-1', 'order-2026-11-26'].map(recordShard)).toEqual(PINNED_SHARDS);
    expect(keys.request('req-1')).toBe(`p:req:{r${PINNED_SHARDS[1]}}:req-1`);
  });

  it('indexes a new claim in the write that makes it, and takes it out when its result is stored', async () => {
    const now = Date.now();
    const claim = { id: 'idx-1', hash: 'h', service: 'svc', correlationId: 'c-1' };
    expect(await broker.records.claim({ ...claim, acceptedAt: now, deadline: now + 5000 })).toEqual({ kind: 'created' });
    expect(Number(await redis.zscore(broker.keys.pending('idx-1'), 'idx-1'))).toBe(now + 5000);
    // A join neither re-adds nor moves it.
    expect((await broker.records.claim({ ...claim, acceptedAt: now + 10, deadline: now + 9000 })).kind).toBe('joined');
    expect(Number(await redis.zscore(broker.keys.pending('idx-1'), 'idx-1'))).toBe(now + 5000);
    expect(await broker.records.finish(result('idx-1', 'x'), 'completed', OWNER)).toBe(true);
    expect(await redis.zscore(broker.keys.pending('idx-1'), 'idx-1')).toBeNull();
  });
});
