import type { RedisClient } from '@mcp-gateway/redis';
import type { ErrorBody, MCPResponse } from '@mcp-gateway/protocol';
import type { GatewayJobData } from './job';
import type { BrokerKeys } from './keys';

/**
 * A request that ended failed for a reason that may pass later, kept for an operator to look at and
 * send again: what was asked (never a credential of the gateway's: those are added at call time), by
 * whom, and how it ended.
 */
export interface DeadLetter {
  /** The failed request's id. */
  id: string;
  service: string;
  operation: string;
  parameters: Record<string, unknown>;
  agentId?: string;
  correlationId: string;
  /** Its deadline (ms from acceptance) and priority: a replay keeps them. */
  timeoutMs: number;
  priority: GatewayJobData['priority'];
  /** The request this one was a replay of, when it was one. */
  replayOf?: string;
  error: ErrorBody;
  attempts: number;
  acceptedAt: number;
  failedAt: number;
  /** Its replays, oldest first: each a new request with its own id. */
  replays: { id: string; at: number }[];
}

/** As the config has them (`deadLetters`). */
export interface DeadLetterLimits {
  /** Most dead letters kept per service (the oldest go first); 0: none are kept. */
  maxPerService: number;
  /** How long one is kept (hours). */
  maxAgeHours: number;
}

export interface DeadLetterFilter {
  service?: string;
  code?: string;
  agentId?: string;
  /** Failed at or after (epoch ms). */
  since?: number;
}

/** Codes that may pass later; BACKEND_ERROR only from a 5xx or no answer at all. */
const MAY_PASS = new Set(['TIMEOUT', 'CIRCUIT_OPEN', 'RATE_LIMITED', 'UNAVAILABLE']);

/** Whether a request that ended this way is kept as a dead letter. */
export function isDeadLetter(result: Pick<MCPResponse, 'status' | 'error' | 'metadata'>): boolean {
  const error = result.error;
  if (result.status !== 'error' || !error) return false;
  if ((error.details as { outcome?: unknown } | undefined)?.outcome === 'unknown') return true;
  if (MAY_PASS.has(error.code)) return true;
  const status = result.metadata.backendStatus;
  return error.code === 'BACKEND_ERROR' && (status === undefined || status >= 500);
}

/** The dead letter of a request (its job's data) that ended with `result`. */
export function deadLetterOf(
  request: Pick<
    GatewayJobData,
    'id' | 'service' | 'operation' | 'parameters' | 'agentId' | 'correlationId' | 'replayOf' | 'acceptedAt' | 'deadline' | 'priority'
  >,
  result: Pick<MCPResponse, 'error' | 'metadata'>,
  failedAt: number,
): DeadLetter {
  return {
    id: request.id,
    service: request.service,
    operation: request.operation,
    parameters: request.parameters,
    ...(request.agentId ? { agentId: request.agentId } : {}),
    correlationId: request.correlationId,
    timeoutMs: Math.max(1, request.deadline - request.acceptedAt),
    priority: request.priority,
    ...(request.replayOf ? { replayOf: request.replayOf } : {}),
    error: boundedError(result.error!),
    attempts: result.metadata.attempts,
    acceptedAt: request.acceptedAt,
    failedAt,
    replays: [],
  };
}

/** The most of an error's details a dead letter keeps (a backend's error page can be megabytes). */
const DETAILS_KEPT_BYTES = 4096;

function boundedError(error: ErrorBody): ErrorBody {
  if (error.details === undefined) return error;
  const bytes = Buffer.byteLength(JSON.stringify(error.details) ?? '');
  if (bytes <= DETAILS_KEPT_BYTES) return error;
  const outcome = (error.details as { outcome?: unknown } | null)?.outcome;
  return { ...error, details: { truncated: true, bytes, ...(outcome === undefined ? {} : { outcome }) } };
}

/** Whether sending it again needs `force`: its backend may have acted on it already. */
export function outcomeUnknown(letter: DeadLetter): boolean {
  return (letter.error.details as { outcome?: unknown } | undefined)?.outcome === 'unknown';
}

/**
 * Stores one dead letter and keeps the service's within its limits, in one step.
 * KEYS[1] the service's dead letters (hash id → JSON)   KEYS[2] their index (sorted set id → failedAt)
 * ARGV[1] id   ARGV[2] the JSON   ARGV[3] failedAt   ARGV[4] most kept   ARGV[5] oldest failedAt kept
 * ARGV[6] how long one is kept (ms): the keys' TTL   ARGV[7] '1': keep one already there (returns -1)
 */
const ADD_LUA = `
if ARGV[7] == '1' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5])
local over = redis.call('ZCARD', KEYS[2]) - #old - tonumber(ARGV[4])
if over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], #old, #old + over - 1)) do old[#old + 1] = id end
end
for i = 1, #old, 500 do
  local part = { unpack(old, i, math.min(i + 499, #old)) }
  redis.call('HDEL', KEYS[1], unpack(part))
  redis.call('ZREM', KEYS[2], unpack(part))
end
-- A service that stops failing: its dead letters go when the newest is too old.
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return #old`;

/** Removes a dead letter only while it is still the one given (ARGV[2], its JSON). */
const WITHDRAW_LUA = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`;

/** Replaces a dead letter that is still kept (a replay recorded on one purged meanwhile is dropped). */
const UPDATE_LUA = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`;

interface DeadLetterCommands {
  mcpDeadLetterAdd(...args: (string | number)[]): Promise<number>;
  mcpDeadLetterUpdate(...args: (string | number)[]): Promise<number>;
  mcpDeadLetterWithdraw(...args: (string | number)[]): Promise<number>;
}

/** Most dead letters one read returns, whatever the caller asks. */
export const DEAD_LETTERS_READ_MAX = 1000;

/**
 * Dead letters in Redis, per service (in the service's slot), bounded by count and age: they survive
 * restarts, and any replica reads the same.
 */
export class DeadLetters {
  private readonly redis: RedisClient & DeadLetterCommands;

  private readonly maxAgeMs: number;

  constructor(
    redis: RedisClient,
    private readonly keys: BrokerKeys,
    readonly limits: DeadLetterLimits,
  ) {
    this.maxAgeMs = limits.maxAgeHours * 3_600_000;
    if (!(redis as Partial<DeadLetterCommands>).mcpDeadLetterAdd) {
      redis.defineCommand('mcpDeadLetterAdd', { numberOfKeys: 2, lua: ADD_LUA });
      redis.defineCommand('mcpDeadLetterUpdate', { numberOfKeys: 1, lua: UPDATE_LUA });
      redis.defineCommand('mcpDeadLetterWithdraw', { numberOfKeys: 2, lua: WITHDRAW_LUA });
    }
    this.redis = redis as RedisClient & DeadLetterCommands;
  }

  get enabled(): boolean {
    return this.limits.maxPerService > 0;
  }

  /**
   * Keeps a dead letter; with `keepExisting`, one already kept for the id stays (the sweep's, when
   * the request ended there first). True when this one was stored.
   */
  async add(letter: DeadLetter, keepExisting = false): Promise<boolean> {
    if (!this.enabled) return false;
    const k = this.keys.deadLetters(letter.service);
    const oldest = Date.now() - this.maxAgeMs;
    const dropped = await this.redis.mcpDeadLetterAdd(
      k.items,
      k.index,
      letter.id,
      JSON.stringify(letter),
      letter.failedAt,
      this.limits.maxPerService,
      oldest,
      Math.ceil(this.maxAgeMs),
      keepExisting ? '1' : '0',
    );
    return dropped >= 0;
  }

  /** Takes back a dead letter kept by `add`, unless another has replaced it since. */
  async withdraw(letter: DeadLetter): Promise<boolean> {
    const k = this.keys.deadLetters(letter.service);
    return (await this.redis.mcpDeadLetterWithdraw(k.items, k.index, letter.id, JSON.stringify(letter))) === 1;
  }

  /** Records a replay on a dead letter that is still kept; false when it is gone. */
  async update(letter: DeadLetter): Promise<boolean> {
    return (await this.redis.mcpDeadLetterUpdate(this.keys.deadLetters(letter.service).items, letter.id, JSON.stringify(letter))) === 1;
  }

  /** The newest first, across `services`, those the filter keeps, at most `limit` (and whether there were more). */
  async list(
    services: readonly string[],
    filter: DeadLetterFilter,
    limit: number,
  ): Promise<{ deadLetters: DeadLetter[]; truncated: boolean }> {
    const max = Math.max(1, Math.min(limit, DEAD_LETTERS_READ_MAX));
    const oldest = Math.max(filter.since ?? 0, Date.now() - this.maxAgeMs);
    const per = await Promise.all(
      services
        .filter((s) => !filter.service || s === filter.service)
        .map(async (service) => {
          const k = this.keys.deadLetters(service);
          const ids = await this.redis.zrevrangebyscore(k.index, '+inf', oldest);
          if (ids.length === 0) return [];
          const texts = await this.redis.hmget(k.items, ...ids);
          return texts.flatMap((t) => (t ? [JSON.parse(t) as DeadLetter] : []));
        }),
    );
    const kept = per
      .flat()
      .filter((l) => (!filter.code || l.error.code === filter.code) && (!filter.agentId || l.agentId === filter.agentId))
      .sort((a, b) => b.failedAt - a.failedAt);
    return { deadLetters: kept.slice(0, max), truncated: kept.length > max };
  }

  /** The dead letter of a request id, in whichever of `services` it is. */
  async get(services: readonly string[], id: string): Promise<DeadLetter | undefined> {
    const texts = await Promise.all(services.map((s) => this.redis.hget(this.keys.deadLetters(s).items, id)));
    const text = texts.find((t) => t !== null);
    const letter = text ? (JSON.parse(text) as DeadLetter) : undefined;
    // Past its age it is gone, though the next add has not dropped it yet.
    return letter && letter.failedAt >= Date.now() - this.maxAgeMs ? letter : undefined;
  }

  async remove(letter: Pick<DeadLetter, 'id' | 'service'>): Promise<boolean> {
    const k = this.keys.deadLetters(letter.service);
    const [removed] = await Promise.all([this.redis.hdel(k.items, letter.id), this.redis.zrem(k.index, letter.id)]);
    return removed === 1;
  }

  /** Dead letters kept for a service (`mcp_gateway_dead_letters`). */
  count(service: string): Promise<number> {
    return this.redis.zcount(this.keys.deadLetters(service).index, Date.now() - this.maxAgeMs, '+inf');
  }
}
