import type { RedisClient } from '@mcp-gateway/redis';
import { seriesIncrements, seriesTarget } from './series';
import { addUsage, mergeUsage, writeUsage, type UsageIncrements } from './usage';

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
 * Ended requests in one call: add counts by outcome, push latencies (newest last in ARGV), keep the
 * last `window`, keep both keys alive; and add the minute's increments to its series hash
 * (series.ts). KEYS: counts, latency, series minute. ARGV: window, ttl ms, n (outcome pairs), series
 * ttl ms, m (series pairs), then n pairs outcome, count, then m pairs field, count, then the latencies.
 */
const RECORD_LUA = `
local n = tonumber(ARGV[3])
local m = tonumber(ARGV[5])
for i = 0, n - 1 do
  redis.call('HINCRBY', KEYS[1], ARGV[6 + 2 * i], ARGV[7 + 2 * i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local series = 6 + 2 * n
for i = 0, m - 1 do
  redis.call('HINCRBY', KEYS[3], ARGV[series + 2 * i], ARGV[series + 1 + 2 * i])
end
if m > 0 then redis.call('PEXPIRE', KEYS[3], ARGV[4]) end
local first = series + 2 * m
if #ARGV >= first then
  redis.call('LPUSH', KEYS[2], unpack(ARGV, first))
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[1]) - 1)
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1`;

/** RECORD_LUA's KEYS then ARGV, in the order its comment lists: the one place that order is written. */
function recordArgs(
  keys: ReturnType<typeof statsKeys>,
  series: { key: string; ttlMs: number },
  a: { window: number; ttlMs: number; counts: Map<string, number>; latencies: number[] },
) {
  const pairs: (string | number)[] = [];
  for (const [o, n] of a.counts) pairs.push(o, n);
  const increments = seriesIncrements(a.counts, a.latencies);
  const seriesPairs: (string | number)[] = [];
  for (const [field, n] of increments) seriesPairs.push(field, n);
  return [
    keys.counts,
    keys.latency,
    series.key,
    a.window,
    a.ttlMs,
    a.counts.size,
    series.ttlMs,
    increments.size,
    ...pairs,
    ...seriesPairs,
    ...a.latencies,
  ];
}

interface StatsCommands {
  mcpStatsRecord(...args: (string | number)[]): Promise<unknown>;
}
const DEFINED = new WeakSet<RedisClient>();

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

/** The agent a request came from, for its usage (see usage.ts). */
export interface UsageOf {
  agentId: string;
  /** The backend call's duration (the last one when there were retries); none when no call was made. */
  backendMs?: number;
}

/** What one process has counted for a service since its last flush. */
interface Pending {
  counts: Map<string, number>;
  /** Oldest first, at most `window`. */
  latencies: number[];
}

/**
 * Per-service request statistics every worker adds to and any API replica reads: counts by outcome
 * and the latencies of the last `window` requests (a capped list), so percentiles are the same
 * whichever process answers. Keys share the service hash tag, are bounded, and expire when idle.
 *
 * With `flushMs` > 0 (the workers), ends are added up in memory and written once per service every
 * `flushMs`: one script call per service per period instead of one per request. Readers then see a
 * request in the numbers up to `flushMs` after its result; `close()` writes what is left.
 *
 * A request with an agent also counts in that agent's usage (AgentUsage reads it), written with the
 * same flush: one script call per agent per period, and one for the index of agents.
 */
export class ServiceStats {
  private readonly pending = new Map<string, Pending>();
  /** Usage counted since the last flush, by agent id. */
  private readonly pendingUsage = new Map<string, UsageIncrements>();
  private timer?: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly window = 1000,
    private readonly flushMs = 0,
  ) {
    if (!DEFINED.has(redis)) {
      redis.defineCommand('mcpStatsRecord', { numberOfKeys: 3, lua: RECORD_LUA });
      DEFINED.add(redis);
    }
  }

  /**
   * One request's end, and its agent's usage when it has one: written at once, or with the next flush
   * when `flushMs` > 0.
   */
  async record(service: string, outcome: string, latencyMs: number, usage?: UsageOf): Promise<void> {
    const ms = Math.max(0, Math.round(latencyMs));
    if (this.flushMs <= 0) {
      const agents = new Map<string, UsageIncrements>();
      if (usage) {
        const inc: UsageIncrements = new Map();
        addUsage(inc, service, outcome, usage.backendMs);
        agents.set(usage.agentId, inc);
      }
      await Promise.all([this.write(service, new Map([[outcome, 1]]), [ms]), this.writeAgents(agents)]);
      return;
    }
    if (usage) {
      let u = this.pendingUsage.get(usage.agentId);
      if (!u) this.pendingUsage.set(usage.agentId, (u = new Map()));
      addUsage(u, service, outcome, usage.backendMs);
    }
    let p = this.pending.get(service);
    if (!p) this.pending.set(service, (p = { counts: new Map(), latencies: [] }));
    p.counts.set(outcome, (p.counts.get(outcome) ?? 0) + 1);
    p.latencies.push(ms);
    if (p.latencies.length > this.window) p.latencies.shift();
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.flushMs <= 0) return;
    this.timer = setTimeout(() => void this.flush().catch(() => undefined), this.flushMs);
    this.timer.unref();
  }

  /** Puts back a batch whose write failed, in front of what was counted since. */
  private requeue(service: string, p: Pending): void {
    const since = this.pending.get(service);
    if (since) {
      for (const [o, n] of since.counts) p.counts.set(o, (p.counts.get(o) ?? 0) + n);
      p.latencies.push(...since.latencies);
      if (p.latencies.length > this.window) p.latencies.splice(0, p.latencies.length - this.window);
    }
    this.pending.set(service, p);
    this.schedule();
  }

  /** Puts back agents' usage whose write failed, added to what was counted since. */
  private requeueUsage(agents: Map<string, UsageIncrements>): void {
    for (const [agent, inc] of agents) {
      const since = this.pendingUsage.get(agent);
      if (since) mergeUsage(inc, since);
      this.pendingUsage.set(agent, inc);
    }
    this.schedule();
  }

  /**
   * Writes what was counted since the last flush. A service or agent whose write fails keeps its
   * numbers for the next flush (merged with what came since), so a short Redis outage loses nothing.
   */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = [...this.pending];
    this.pending.clear();
    const usage = new Map(this.pendingUsage);
    this.pendingUsage.clear();
    // After a failed flush too (its error went to whoever awaited it).
    this.flushing = this.flushing
      .catch(() => undefined)
      .then(async () => {
        const failed: unknown[] = [];
        await Promise.all([
          ...batch.map(([service, p]) =>
            this.write(service, p.counts, p.latencies).catch((err: unknown) => {
              failed.push(err);
              this.requeue(service, p);
            }),
          ),
          this.writeAgents(usage).catch((err: unknown) => {
            failed.push(err);
          }),
        ]);
        if (failed.length > 0) throw failed[0];
      });
    return this.flushing;
  }

  /** Stops the flush timer after writing what is left. */
  async close(): Promise<void> {
    await this.flush();
  }

  private write(service: string, counts: Map<string, number>, latencies: number[]): Promise<void> {
    const args = recordArgs(statsKeys(this.prefix, service), seriesTarget(this.prefix, service), {
      window: this.window,
      ttlMs: WEEK_MS,
      counts,
      latencies,
    });
    return (this.redis as RedisClient & StatsCommands).mcpStatsRecord(...args).then(() => undefined);
  }

  /**
   * Writes agents' usage; the call rejects when a write failed, and with `flushMs` > 0 an agent whose
   * write failed is kept for the next flush.
   */
  private async writeAgents(agents: Map<string, UsageIncrements>): Promise<void> {
    if (agents.size === 0) return;
    const { failed, error } = await writeUsage(this.redis, this.prefix, WEEK_MS, agents);
    if (failed.length > 0 && this.flushMs > 0) this.requeueUsage(new Map(failed.map((a) => [a, agents.get(a)!])));
    if (error !== undefined) throw error;
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
