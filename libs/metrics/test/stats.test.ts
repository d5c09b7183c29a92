import Redis from 'ioredis';
import { percentile, ServiceStats, statsKeys } from '@mcp-gateway/metrics';
import { fakingOnly, testRedisUrl, uniquePrefix } from '@mcp-gateway/testing';

let redis: Redis;
beforeAll(() => {
  redis = new Redis(testRedisUrl());
});
afterAll(() => redis.disconnect());

it('nearest-rank percentiles', () => {
  const v = Array.from({ length: 100 }, (_, i) => i + 1);
  expect([percentile(v, 50), percentile(v, 95), percentile(v, 99), percentile(v, 100)]).toEqual([50, 95, 99, 100]);
  expect(percentile([], 50)).toBeNull();
  expect(percentile([7], 99)).toBe(7);
});

it('keeps counts by outcome and the latencies of the last window, shared through Redis', async () => {
  const prefix = uniquePrefix('stats');
  const writerA = new ServiceStats(redis, prefix, 10);
  const writerB = new ServiceStats(redis, prefix, 10);
  for (let i = 1; i <= 30; i++) await (i % 2 ? writerA : writerB).record('svc', i % 10 === 0 ? 'TIMEOUT' : 'success', i);
  const snap = await new ServiceStats(redis, prefix, 10).snapshot('svc');
  expect(snap.counts).toEqual({ success: 27, TIMEOUT: 3 });
  // Only the last 10 (21..30) count for the percentiles.
  expect(snap.latency).toEqual({ p50: 25, p95: 30, p99: 30, window: 10 });
  const k = statsKeys(prefix, 'svc');
  for (const key of [k.counts, k.latency]) {
    expect(key).toContain('{svc}');
    expect(await redis.pttl(key)).toBeGreaterThan(0);
  }
  expect(await new ServiceStats(redis, prefix).snapshot('other')).toEqual({
    latency: { p50: null, p95: null, p99: null, window: 0 },
    counts: {},
  });
});

describe('added up in memory and written every flushMs (the workers)', () => {
  it('writes nothing per request, then one batch per service that readers see in order', async () => {
    const prefix = uniquePrefix('stats-batch');
    const writer = new ServiceStats(redis, prefix, 5, 60_000);
    const reader = new ServiceStats(redis, prefix, 5);
    for (let i = 1; i <= 7; i++) await writer.record('svc', i === 3 ? 'TIMEOUT' : 'success', i * 10);
    await writer.record('other', 'success', 1);
    expect(await reader.snapshot('svc')).toEqual({ latency: { p50: null, p95: null, p99: null, window: 0 }, counts: {} });
    await writer.flush();
    // The last 5 latencies (30..70), newest at the head of the list as when written one by one.
    expect(await reader.snapshot('svc')).toEqual({ counts: { success: 6, TIMEOUT: 1 }, latency: { p50: 50, p95: 70, p99: 70, window: 5 } });
    expect(await redis.lrange(statsKeys(prefix, 'svc').latency, 0, -1)).toEqual(['70', '60', '50', '40', '30']);
    expect((await reader.snapshot('other')).counts).toEqual({ success: 1 });
    // A second batch adds to the first.
    await writer.record('svc', 'success', 80);
    await writer.close();
    expect((await reader.snapshot('svc')).counts).toEqual({ success: 7, TIMEOUT: 1 });
    expect(await redis.lrange(statsKeys(prefix, 'svc').latency, 0, -1)).toEqual(['80', '70', '60', '50', '40']);
  });

  it('flushes by itself after flushMs', async () => {
    // The flush is a timer: only setTimeout is faked, Redis stays real.
    jest.useFakeTimers(fakingOnly('setTimeout', 'clearTimeout'));
    try {
      const prefix = uniquePrefix('stats-timer');
      const writer = new ServiceStats(redis, prefix, 10, 50);
      await writer.record('svc', 'success', 5);
      // Writer and reader share one client, so a read sent after the flush's write sees it.
      const reader = new ServiceStats(redis, prefix);
      await jest.advanceTimersByTimeAsync(49);
      expect((await reader.snapshot('svc')).latency.window).toBe(0);
      await jest.advanceTimersByTimeAsync(1);
      expect(await reader.snapshot('svc')).toEqual({ counts: { success: 1 }, latency: { p50: 5, p95: 5, p99: 5, window: 1 } });
      await writer.close();
    } finally {
      jest.useRealTimers();
    }
  });

  it('keeps a batch whose write failed and writes it with the next one', async () => {
    const prefix = uniquePrefix('stats-retry');
    const broken = new Redis(testRedisUrl());
    const writer = new ServiceStats(broken, prefix, 10, 60_000);
    await broken.ping();
    broken.disconnect();
    await writer.record('svc', 'success', 1);
    await writer.record('svc', 'BACKEND_ERROR', 2);
    await expect(writer.flush()).rejects.toThrow();
    await writer.record('svc', 'success', 3);
    await broken.connect();
    await writer.close();
    expect(await new ServiceStats(redis, prefix).snapshot('svc')).toEqual({
      counts: { success: 2, BACKEND_ERROR: 1 },
      latency: { p50: 2, p95: 3, p99: 3, window: 3 },
    });
    expect(await redis.lrange(statsKeys(prefix, 'svc').latency, 0, -1)).toEqual(['3', '2', '1']);
    broken.disconnect();
  });
});
