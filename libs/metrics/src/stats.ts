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

/**
 * One request's end in one call: count it, keep its latency among the last `window`, keep both keys
 * alive. KEYS: counts, latency. ARGV: outcome, latency ms, window, ttl ms.
 */
const RECORD_LUA = `
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1`;

interface StatsCommands {
  mcpStatsRecord(counts: string, latency: string, outcome: string, latencyMs: number, window: number, ttlMs: number): Promise<number>;
}
const DEFINED = new WeakSet<Redis>();

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
  ) {
    if (!DEFINED.has(redis)) {
      redis.defineCommand('mcpStatsRecord', { numberOfKeys: 2, lua: RECORD_LUA });
      DEFINED.add(redis);
    }
  }

  /** On every request's end, so one script call (EVALSHA) rather than a MULTI of five commands. */
  async record(service: string, outcome: string, latencyMs: number): Promise<void> {
    const k = statsKeys(this.prefix, service);
    await (this.redis as Redis & StatsCommands).mcpStatsRecord(k.counts, k.latency, outcome, Math.max(0, Math.round(latencyMs)), this.window, WEEK_MS);
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
