import type { RedisClient } from '@mcp-gateway/redis';

/**
 * The last hour of a service, minute by minute, kept in Redis for the console's charts: ended
 * requests by outcome and a latency histogram (added by the workers' stats flush), and the queue
 * depth and circuit state sampled by the API (the most seen in the minute). One hash per service and
 * minute, in the service's slot, expiring after the hour it is shown for.
 */
export const SERIES_STEP_MS = 60_000;
export const SERIES_POINTS = 60;
const SERIES_TTL_MS = (SERIES_POINTS + 5) * SERIES_STEP_MS;

/** Upper bounds (ms) of the latency histogram's buckets; one more bucket holds the rest. */
export const LATENCY_BOUNDS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000];

export type CircuitLevel = 0 | 1 | 2;

/** One minute of a service. */
export interface SeriesPoint {
  /** The minute's start (epoch ms). */
  t: number;
  /** Ended requests by outcome. */
  counts: Record<string, number>;
  /** Latency percentiles (ms, the bucket's upper bound; null: no request ended). */
  p50: number | null;
  p95: number | null;
  /** The deepest the queue was seen (jobs waiting); null: not sampled. */
  queue: number | null;
  /** The worst circuit state seen: 0 closed, 1 half-open, 2 open; null: not sampled. */
  circuit: CircuitLevel | null;
}

export function seriesKey(prefix: string, service: string, minute: number): string {
  return `${prefix}:{${service}}:series:${minute}`;
}

const minuteOf = (at: number) => Math.floor(at / SERIES_STEP_MS) * SERIES_STEP_MS;

/** The HINCRBY fields and amounts of ended requests: `o:<outcome>` and `l:<latency bucket>`. */
export function seriesIncrements(counts: ReadonlyMap<string, number>, latencies: readonly number[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const [outcome, n] of counts) out.set(`o:${outcome}`, n);
  for (const ms of latencies) {
    let i = LATENCY_BOUNDS_MS.findIndex((bound) => ms <= bound);
    if (i < 0) i = LATENCY_BOUNDS_MS.length;
    out.set(`l:${i}`, (out.get(`l:${i}`) ?? 0) + 1);
  }
  return out;
}

/** The key and TTL the stats flush adds a minute's increments to. */
export function seriesTarget(prefix: string, service: string, at = Date.now()): { key: string; ttlMs: number } {
  return { key: seriesKey(prefix, service, minuteOf(at)), ttlMs: SERIES_TTL_MS };
}

/** Keeps the larger of each sample and what the minute holds. KEYS[1] the minute. ARGV: ttl, q, c. */
const SAMPLE_LUA = `
for i, field in ipairs({ 'q', 'c' }) do
  local v = tonumber(ARGV[i + 1])
  if v > (tonumber(redis.call('HGET', KEYS[1], field)) or -1) then redis.call('HSET', KEYS[1], field, v) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;

interface SeriesCommands {
  mcpSeriesSample(key: string, ttlMs: number, queue: number, circuit: number): Promise<unknown>;
}

function percentileOf(histogram: number[], p: number): number | null {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil((p / 100) * total);
  let seen = 0;
  for (const [i, n] of histogram.entries()) {
    seen += n;
    if (seen >= rank) return LATENCY_BOUNDS_MS[Math.min(i, LATENCY_BOUNDS_MS.length - 1)]!;
  }
  return null;
}

/** Reads and samples a service's last hour. */
export class ServiceSeries {
  private readonly redis: RedisClient & SeriesCommands;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
  ) {
    if (!(redis as Partial<SeriesCommands>).mcpSeriesSample) redis.defineCommand('mcpSeriesSample', { numberOfKeys: 1, lua: SAMPLE_LUA });
    this.redis = redis as RedisClient & SeriesCommands;
  }

  /** Records what the queue and circuit look like now (the minute keeps the worst). */
  async sample(service: string, queue: number, circuit: CircuitLevel, at = Date.now()): Promise<void> {
    await this.redis.mcpSeriesSample(seriesKey(this.prefix, service, minuteOf(at)), SERIES_TTL_MS, queue, circuit);
  }

  /** The last hour, oldest minute first, the current one last. */
  async read(service: string, at = Date.now()): Promise<SeriesPoint[]> {
    const last = minuteOf(at);
    const minutes = Array.from({ length: SERIES_POINTS }, (_, i) => last - (SERIES_POINTS - 1 - i) * SERIES_STEP_MS);
    const pipeline = this.redis.pipeline();
    for (const m of minutes) pipeline.hgetall(seriesKey(this.prefix, service, m));
    const replies = (await pipeline.exec()) ?? [];
    return minutes.map((t, i) => {
      const fields = (replies[i]?.[1] ?? {}) as Record<string, string>;
      const counts: Record<string, number> = {};
      const histogram = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
      for (const [field, value] of Object.entries(fields)) {
        if (field.startsWith('o:')) counts[field.slice(2)] = Number(value);
        else if (field.startsWith('l:')) histogram[Number(field.slice(2))] = Number(value);
      }
      return {
        t,
        counts,
        p50: percentileOf(histogram, 50),
        p95: percentileOf(histogram, 95),
        queue: fields.q === undefined ? null : Number(fields.q),
        circuit: fields.c === undefined ? null : (Number(fields.c) as CircuitLevel),
      };
    });
  }
}
