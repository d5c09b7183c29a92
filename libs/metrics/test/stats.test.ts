import Redis from 'ioredis';
import { percentile, ServiceStats, statsKeys } from '@mcp-gateway/metrics';
import { testRedisUrl, uniquePrefix } from '@mcp-gateway/testing';

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
  expect(await new ServiceStats(redis, prefix).snapshot('other')).toEqual({ latency: { p50: null, p95: null, p99: null, window: 0 }, counts: {} });
});
