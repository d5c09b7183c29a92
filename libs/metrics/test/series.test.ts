import Redis from 'ioredis';
import { SERIES_POINTS, SERIES_STEP_MS, ServiceSeries, ServiceStats, seriesKey } from '@mcp-gateway/metrics';
import { testRedisUrl, uniquePrefix } from '@mcp-gateway/testing';

let redis: Redis;
beforeAll(() => {
  redis = new Redis(testRedisUrl());
});
afterAll(() => redis.disconnect());

describe("a service's last hour, a minute a point", () => {
  it('adds ended requests by outcome and a latency histogram with the stats, and reads the hour back', async () => {
    const prefix = uniquePrefix('series');
    const stats = new ServiceStats(redis, prefix, 100);
    // All in one minute: not in its last two seconds.
    const into = Date.now() % SERIES_STEP_MS;
    if (into > SERIES_STEP_MS - 2000) await new Promise((r) => setTimeout(r, SERIES_STEP_MS - into + 10));
    for (let i = 0; i < 20; i++) await stats.record('svc', i < 18 ? 'success' : 'TIMEOUT', i < 10 ? 8 : i < 19 ? 40 : 3000);
    const points = await new ServiceSeries(redis, prefix).read('svc');
    expect(points).toHaveLength(SERIES_POINTS);
    const now = points[points.length - 1]!;
    expect(now.counts).toEqual({ success: 18, TIMEOUT: 2 });
    // 10 of 20 within 10 ms, 19 within 50 ms: the buckets' upper bounds.
    expect([now.p50, now.p95]).toEqual([10, 50]);
    expect(points[0]).toMatchObject({ counts: {}, p50: null, queue: null, circuit: null });
    expect(now.t - points[0]!.t).toBe((SERIES_POINTS - 1) * SERIES_STEP_MS);
    // It lives a little longer than the hour it is shown for.
    const ttl = await redis.pttl(seriesKey(prefix, 'svc', now.t));
    expect(ttl).toBeGreaterThan(60 * 60_000);
    expect(ttl).toBeLessThanOrEqual(65 * 60_000);
  });

  it('keeps the deepest queue and the worst circuit seen in a minute, whichever process sampled', async () => {
    const prefix = uniquePrefix('series');
    const a = new ServiceSeries(redis, prefix);
    const b = new ServiceSeries(redis, prefix);
    const at = Math.floor(Date.now() / SERIES_STEP_MS) * SERIES_STEP_MS + 1000;
    await a.sample('svc', 5, 0, at);
    await b.sample('svc', 12, 2, at + 10);
    await a.sample('svc', 3, 1, at + 20);
    const minute = (await a.read('svc', at + 30)).at(-1)!;
    expect([minute.queue, minute.circuit]).toEqual([12, 2]);
    // The next minute starts again.
    await a.sample('svc', 1, 0, at + SERIES_STEP_MS);
    const next = (await a.read('svc', at + SERIES_STEP_MS)).at(-1)!;
    expect([next.queue, next.circuit]).toEqual([1, 0]);
  });
});
