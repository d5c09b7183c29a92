import type Redis from 'ioredis';

export interface LatencySummary {
  p50: number | null;
  p95: number | null;
  p99: number | null;
  /** How many recent requests the percentiles are over. */
  window: number;
}

export interface ServiceStatsSnapshot {
  latency: LatencySummary;
  /** Ended requests by outcome: `success` or an error code. */
  counts: Record<string, number>;
}

const WEEK_MS = 7 * 24 * 3600 * 1000;

export function statsKeys(prefix: string, service: string) {
  const base = `${prefix}:{${service}}:stats`;
  return { counts: `${base}:counts`, latency: `${base}:latency` };
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/**
 * Per-service request statistics every worker adds to and any API replica reads: counts by outcome
 * and the latencies of the last `window` requests (a capped list), so percentiles are the same
 * whichever process answers. Keys share the service hash tag, are bounded, and expire when idle.
 */
export class ServiceStats {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly window = 1000,
  ) {}

  async record(service: string, outcome: string, latencyMs: number): Promise<void> {
    const k = statsKeys(this.prefix, service);
    await this.redis
      .multi()
      .hincrby(k.counts, outcome, 1)
      .pexpire(k.counts, WEEK_MS)
      .lpush(k.latency, Math.max(0, Math.round(latencyMs)))
      .ltrim(k.latency, 0, this.window - 1)
      .pexpire(k.latency, WEEK_MS)
      .exec();
  }

  async snapshot(service: string): Promise<ServiceStatsSnapshot> {
    const k = statsKeys(this.prefix, service);
    const [[, counts], [, latencies]] = (await this.redis.multi().hgetall(k.counts).lrange(k.latency, 0, -1).exec()) as [
      [null, Record<string, string>],
      [null, string[]],
    ];
    const sorted = latencies.map(Number).sort((a, b) => a - b);
    return {
      latency: { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), window: sorted.length },
      counts: Object.fromEntries(Object.entries(counts).map(([o, n]) => [o, Number(n)])),
    };
  }
}
