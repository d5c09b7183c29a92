import type { RedisClient } from '@mcp-gateway/redis';

/** What one agent has used of one service: ended requests, their outcomes, and the time backends took. */
export interface ServiceUsage {
  /** Ended requests (the sum of `outcomes`). */
  requests: number;
  /** Ended requests by outcome: `success` or an error code. */
  outcomes: Record<string, number>;
  /**
   * The backend's time, over the requests that called it (`calls`; one that ended before a call, a
   * CIRCUIT_OPEN say, has none). A request's time is its last call's, not the sum of its attempts.
   */
  backendMs: { total: number; mean: number | null; calls: number };
}

/** One agent's usage, by service. */
export interface AgentUsageSnapshot {
  services: Record<string, ServiceUsage>;
}

/** What one process has counted for an agent since its last flush: HINCRBY amounts by hash field. */
export type UsageIncrements = Map<string, number>;

/**
 * An agent's hash: its own hash tag, so a Redis Cluster spreads agents over its slots. The id goes in
 * as it is (ids come from the config or a verified JWT `sub`, at most AGENT_ID_MAX_LENGTH characters);
 * nothing is ever parsed back out of the key, so a `}` or `:` in an id only moves its slot.
 */
export function agentUsageKey(prefix: string, agentId: string): string {
  return `${prefix}:agent:{a:${agentId}}:usage`;
}

/** The agents that have usage, scored by their last flush (ms): what GET /mcp/agents lists, newest first. */
export function agentIndexKey(prefix: string): string {
  return `${prefix}:agents:usage`;
}

// Hash fields are `<service>:<what>`: service names are letters, digits, `_` and `-`, so the first `:` ends them.
const outcomeField = (service: string, outcome: string) => `${service}:o:${outcome}`;
const msField = (service: string) => `${service}:ms`;
const callsField = (service: string) => `${service}:calls`;

/** Adds one ended request of an agent to `into`. */
export function addUsage(into: UsageIncrements, service: string, outcome: string, backendMs: number | undefined): void {
  const add = (field: string, n: number) => into.set(field, (into.get(field) ?? 0) + n);
  add(outcomeField(service, outcome), 1);
  if (backendMs === undefined) return;
  add(msField(service), Math.max(0, Math.round(backendMs)));
  add(callsField(service), 1);
}

/** Adds `from` into `into` (a failed batch and what came since). */
export function mergeUsage(into: UsageIncrements, from: UsageIncrements): void {
  for (const [field, n] of from) into.set(field, (into.get(field) ?? 0) + n);
}

/** KEYS: the agent's hash. ARGV: ttl ms, then field, increment pairs. Adds them and keeps the hash alive. */
const USAGE_LUA = `
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;

/**
 * KEYS: the agent index. ARGV: ttl ms, most entries kept, then agent ids. Marks them active now
 * (Redis TIME), drops those idle past the ttl and the oldest past the bound, keeps the index alive.
 */
const INDEX_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[1], now, ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[2]) + 1))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;

interface UsageCommands {
  mcpAgentUsageAdd(key: string, ttlMs: number, ...pairs: (string | number)[]): Promise<unknown>;
  mcpAgentIndexTouch(key: string, ttlMs: number, maxEntries: number, ...agents: string[]): Promise<unknown>;
}
const DEFINED = new WeakSet<RedisClient>();

/** The index keeps at most this many agents (the most recently active): what the list reads is bounded. */
const INDEX_MAX_ENTRIES = 10_000;

function commands(redis: RedisClient): RedisClient & UsageCommands {
  if (!DEFINED.has(redis)) {
    redis.defineCommand('mcpAgentUsageAdd', { numberOfKeys: 1, lua: USAGE_LUA });
    redis.defineCommand('mcpAgentIndexTouch', { numberOfKeys: 1, lua: INDEX_LUA });
    DEFINED.add(redis);
  }
  return redis as RedisClient & UsageCommands;
}

/**
 * Writes a batch of agents' usage: one script call per agent, and one for the index. Rejects with the
 * agents whose write failed, so the caller can keep their numbers for the next batch.
 */
export async function writeUsage(
  redis: RedisClient,
  prefix: string,
  ttlMs: number,
  batch: ReadonlyMap<string, UsageIncrements>,
): Promise<{ failed: string[]; error?: unknown }> {
  const r = commands(redis);
  const failed: string[] = [];
  let error: unknown;
  const writes = [...batch].map(([agent, inc]) => {
    const pairs: (string | number)[] = [];
    for (const [field, n] of inc) pairs.push(field, n);
    return r.mcpAgentUsageAdd(agentUsageKey(prefix, agent), ttlMs, ...pairs).catch((err: unknown) => {
      failed.push(agent);
      error ??= err;
    });
  });
  // The index only lists agents; numbers are not lost when it is not updated (the next batch does).
  const index = r.mcpAgentIndexTouch(agentIndexKey(prefix), ttlMs, INDEX_MAX_ENTRIES, ...batch.keys()).catch((err: unknown) => {
    error ??= err;
  });
  await Promise.all([...writes, index]);
  return { failed, ...(error === undefined ? {} : { error }) };
}

/** A hash's fields as usage by service. */
function fromHash(hash: Record<string, string>): AgentUsageSnapshot {
  const services: Record<string, ServiceUsage> = {};
  const of = (service: string) => (services[service] ??= { requests: 0, outcomes: {}, backendMs: { total: 0, mean: null, calls: 0 } });
  for (const [field, value] of Object.entries(hash)) {
    const n = Number(value);
    const [service, what, outcome] = field.split(':');
    if (!service) continue;
    const u = of(service);
    if (what === 'o' && outcome) {
      u.outcomes[outcome] = n;
      u.requests += n;
    } else if (what === 'ms') u.backendMs.total = n;
    else if (what === 'calls') u.backendMs.calls = n;
  }
  for (const u of Object.values(services))
    u.backendMs.mean = u.backendMs.calls > 0 ? Math.round((u.backendMs.total / u.backendMs.calls) * 10) / 10 : null;
  return { services };
}

/** Reads agents' usage, which every worker adds to (see ServiceStats), from any process. */
export class AgentUsage {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  /** An agent's usage; no usage (never seen, or idle past a week) is no services. */
  async read(agentId: string): Promise<AgentUsageSnapshot> {
    return fromHash(await this.redis.hgetall(agentUsageKey(this.prefix, agentId)));
  }

  /**
   * The usage of the most recently active agents, at most `max` of them, newest first; `truncated`
   * when there are more.
   */
  async list(max: number): Promise<{ agents: ({ agent: string } & AgentUsageSnapshot)[]; truncated: boolean }> {
    // One more than asked: whether there are more.
    const ids = await this.redis.zrevrange(agentIndexKey(this.prefix), 0, max);
    const shown = ids.slice(0, max);
    const hashes = await Promise.all(shown.map((id) => this.redis.hgetall(agentUsageKey(this.prefix, id))));
    const agents = shown
      .map((agent, i) => ({ agent, ...fromHash(hashes[i]!) }))
      // Listed but its hash expired (the index outlived it by a flush): nothing to show.
      .filter((a) => Object.keys(a.services).length > 0);
    return { agents, truncated: ids.length > max };
  }
}
