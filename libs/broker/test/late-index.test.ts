import type { RedisClient } from '@mcp-gateway/redis';
import { Broker, INDEX_LATER_MS, LateIndex, mayBeIndexed, requestHash, type GatewayJobData } from '@mcp-gateway/broker';
import { testRedis, uniquePrefix } from '@mcp-gateway/testing';

/**
 * Sync requests kept out of the sweep's index while they are young: indexed by the API process that
 * holds their caller once due, or by anyone who reads or joins them, and taken out by a finish only
 * when they may be in it.
 */
let redis: RedisClient;
let broker: Broker;

beforeEach(() => {
  redis = testRedis();
  broker = new Broker({ redis, keyPrefix: uniquePrefix('late'), resultTtlSeconds: 60 });
});

afterEach(async () => {
  await broker.close();
  redis.disconnect();
});

function syncJob(id: string, timeoutMs = 30_000, acceptedAt = Date.now()): GatewayJobData {
  return {
    id,
    service: 'svc',
    operation: 'op',
    parameters: { a: 1 },
    correlationId: 'c-1',
    traceparent: '',
    acceptedAt,
    deadline: acceptedAt + timeoutMs,
    priority: 'normal',
    indexLater: true,
  };
}

const indexed = (id: string) => redis.zscore(broker.keys.pending(id), id).then((s) => (s === null ? undefined : Number(s)));
const submit = (d: GatewayJobData) => broker.submit(d, requestHash('svc', 'op', d.parameters), { maxAttempts: 1 });

it('claims a sync request without an index entry, and an async one with its deadline', async () => {
  const sync = syncJob('sync-1');
  const { indexLater: _, ...asyncJob } = syncJob('async-1');
  await submit(sync);
  await submit(asyncJob);
  expect(await indexed('sync-1')).toBeUndefined();
  expect(await indexed('async-1')).toBe(asyncJob.deadline);
});

it('indexes a held request once it is due (a second after its acceptance, or its deadline if sooner), and not one dropped', async () => {
  let now = 1_000_000;
  const late = new LateIndex(
    broker.records,
    (err) => {
      throw err;
    },
    () => now,
  );
  try {
    const long = syncJob('held-long', 30_000, now);
    const short = syncJob('held-short', 300, now);
    const answered = syncJob('held-answered', 30_000, now);
    for (const d of [long, short, answered]) {
      await submit(d);
      late.hold(d);
    }
    late.drop('held-answered');
    now += 299;
    await late.flush();
    expect([await indexed('held-long'), await indexed('held-short')]).toEqual([undefined, undefined]);
    now += 1;
    await late.flush();
    expect([await indexed('held-long'), await indexed('held-short')]).toEqual([undefined, short.deadline]);
    now += INDEX_LATER_MS - 300;
    await late.flush();
    expect(await indexed('held-long')).toBe(long.deadline);
    expect(await indexed('held-answered')).toBeUndefined();
    expect(late.size).toBe(0);
  } finally {
    await late.close();
  }
});

it('indexes every request still held when it closes, due or not', async () => {
  const late = new LateIndex(broker.records, (err) => {
    throw err;
  });
  const young = syncJob('held-at-stop');
  await submit(young);
  late.hold(young);
  await late.close();
  expect(await indexed('held-at-stop')).toBe(young.deadline);
});

it('indexes a request not indexed yet when it is read once due, or joined, with its own deadline', async () => {
  // Its API process is gone: nobody holds it. A poll of its id before it is due leaves it (its
  // process may still hold it); one after indexes it.
  const young = syncJob('orphan-young');
  await submit(young);
  expect((await broker.status('orphan-young'))?.state).toBe('queued');
  expect(await indexed('orphan-young')).toBeUndefined();
  const first = syncJob('orphan-1', 30_000, Date.now() - INDEX_LATER_MS);
  await submit(first);
  expect((await broker.status('orphan-1'))?.state).toBe('queued');
  expect(await indexed('orphan-1')).toBe(first.deadline);

  const second = syncJob('orphan-2');
  await submit(second);
  // The same request sent again (a later deadline of its own) joins it and indexes the first deadline.
  const again = { ...second, acceptedAt: second.acceptedAt + 5000, deadline: second.deadline + 5000 };
  expect(await submit(again)).toMatchObject({ kind: 'joined' });
  expect(await indexed('orphan-2')).toBe(second.deadline);
});

it('a finish takes the id out of the index only when it may be there', async () => {
  const t0 = 5_000_000;
  expect(mayBeIndexed({ acceptedAt: t0, deadline: t0 + 30_000 }, t0)).toBe(true);
  const young = { indexLater: true, acceptedAt: t0, deadline: t0 + 30_000 };
  expect(mayBeIndexed(young, t0 + INDEX_LATER_MS / 2 - 1)).toBe(false);
  expect(mayBeIndexed(young, t0 + INDEX_LATER_MS / 2)).toBe(true);
  // Due at its deadline (300 ms): from half a second before that, that is at once.
  expect(mayBeIndexed({ indexLater: true, acceptedAt: t0, deadline: t0 + 300 }, t0)).toBe(true);

  for (const unindex of [false, true]) {
    const d = syncJob(`finished-${unindex}`);
    await submit(d);
    await broker.records.index([d]);
    const stored = await broker.records.finish(
      {
        id: d.id,
        status: 'success',
        data: {},
        metadata: { correlationId: 'c-1', service: 'svc', operation: 'op', attempts: 1, queuedMs: 0, processingTime: 0, completedAt: '' },
      },
      'completed',
      { hash: requestHash('svc', 'op', d.parameters) },
      { unindex },
    );
    expect(stored).toBe(true);
    expect(await indexed(d.id)).toBe(unindex ? undefined : d.deadline);
  }
});
