import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { RedisClient } from '@mcp-gateway/redis';
import type { resilienceKeys } from './keys';
import type { Admission, AdmitOptions, BreakerOutcome, CircuitState, RecordResult } from './policy';

const read = (name: string) => readFileSync(path.join(__dirname, 'lua', `${name}.lua`), 'utf8');
/** Each script with the shared clock function in front of it. */
const lua = (name: string) => `${read('clock')}\n${read(name)}`;

/** admit.lua's verdict, its reply's first element (its header lists the same names). */
export const AdmitVerdict = { Admitted: 1, CircuitOpen: 2, RateLimited: 3, Reserved: 4 } as const;
export type AdmitVerdict = (typeof AdmitVerdict)[keyof typeof AdmitVerdict];

/** admit.lua's token count when it did not consult the bucket. */
export const TOKENS_NOT_READ = -1;

type ServiceKeys = ReturnType<typeof resilienceKeys>;

export interface AdmitArgs extends AdmitOptions {
  jobId: string;
  capacity: number;
  refillPerSecond: number;
  recoveryMs: number;
  halfOpenMaxCalls: number;
  /** How long a half-open trial permit lives if its holder dies mid-call. */
  permitTtlMs: number;
  /** Extra tokens to take for the caller's lease, when the bucket and breaker allow (0 or absent: none). */
  leaseWanted?: number;
}

export interface AdmitReply {
  admission: Admission;
  /** This call moved the breaker from open to half-open. */
  halfOpened: boolean;
  /** Extra tokens taken for the caller's lease (0: none). */
  leased: number;
}

export interface RecordArgs {
  jobId: string;
  outcome: BreakerOutcome;
  failureThreshold: number;
  /** How long a closed breaker's hash lives when idle. */
  ttlMs: number;
  now?: number;
}

/** A service queue's waiting jobs: each lane's BullMQ wait list and prioritized set (same hash tag). */
export interface QueueKeys {
  waitLists: string[];
  prioritizedSets: string[];
}

type ScriptArgs = (string | number)[];
/** The scripts' clock override: '' for Redis TIME. */
const clock = (now: number | undefined) => (now === undefined ? '' : String(now));

// Each script's KEYS then ARGV, in the order its header lists: the one place that order is written.
function admitArgs(keys: ServiceKeys, a: AdmitArgs): ScriptArgs {
  const argv = [
    a.jobId,
    a.capacity,
    a.refillPerSecond,
    a.recoveryMs,
    a.halfOpenMaxCalls,
    Math.max(1, Math.ceil(a.permitTtlMs)),
    clock(a.now),
    // -1: never reserve a token; '': no token reserved earlier.
    a.maxWaitMs === undefined ? -1 : Math.max(0, Math.floor(a.maxWaitMs)),
    a.reservedAt === undefined ? '' : String(Math.floor(a.reservedAt)),
    Math.max(0, Math.floor(a.leaseWanted ?? 0)),
  ];
  return [keys.breaker, keys.trials, keys.bucket, ...argv];
}

function recordArgs(keys: ServiceKeys, a: RecordArgs): ScriptArgs {
  return [keys.breaker, keys.trials, a.jobId, a.outcome, a.failureThreshold, clock(a.now), a.ttlMs];
}

export function decodeAdmit(reply: unknown): AdmitReply {
  const [verdict, waitMs, state, halfOpened, milliTokens, slotAt, failures, leased] = reply as [
    number,
    number,
    CircuitState,
    0 | 1,
    number?,
    number?,
    number?,
    number?,
  ];
  const tokens = milliTokens === undefined || milliTokens === TOKENS_NOT_READ ? undefined : milliTokens / 1000;
  return { admission: admissionOf(verdict, waitMs, state, tokens, slotAt, failures), halfOpened: halfOpened === 1, leased: leased ?? 0 };
}

function admissionOf(
  verdict: number,
  waitMs: number,
  state: CircuitState,
  tokens: number | undefined,
  slotAt?: number,
  failures?: number,
): Admission {
  const withTokens = tokens === undefined ? {} : { tokens };
  switch (verdict) {
    case AdmitVerdict.Admitted:
      return { verdict: 'admitted', state, failures: failures ?? 0, ...withTokens };
    case AdmitVerdict.CircuitOpen:
      return { verdict: 'circuit_open', waitMs, state };
    case AdmitVerdict.RateLimited:
      return { verdict: 'rate_limited', waitMs, state, tokens: tokens ?? 0 };
    case AdmitVerdict.Reserved:
      return { verdict: 'reserved', waitMs, state, slotAt: Number(slotAt), ...withTokens };
    default:
      throw new Error(`admit.lua answered verdict ${JSON.stringify(verdict)}, which is none of its verdicts`);
  }
}

export function decodeRecord(reply: unknown): RecordResult {
  const [before, after, failures] = reply as [CircuitState, CircuitState, number];
  return { before, after, failures };
}

/** agent.lua's verdict, its reply's first element (its header lists the same names). */
export const AgentVerdict = { Held: 1, RateLimited: 2, InFlightCap: 3 } as const;

export interface AgentHoldArgs {
  id: string;
  bucket: string;
  /** The sorted set of the agent's holds. */
  held: string;
  /** The request's priority class: 1 high, 2 normal, 3 low. */
  rank: number;
  /** 0: no rate limit. */
  capacity: number;
  refillPerMs: number;
  /** 0: no cap. */
  maxInFlight: number;
  /** When the hold lapses, and now, on the caller's clock (ms). */
  lapseAt: number;
  now: number;
  /** How long the set lives after its latest hold: longer than any hold. */
  setTtlMs: number;
  /** Test clock of the bucket (ms); default Redis TIME. */
  bucketNow?: number;
  /** The id may be held already (a caller's own id, sent again): it is then not held twice. */
  mayBeHeld?: boolean;
}

export type AgentHoldReply =
  /**
   * `tier`: the agent's holds in its class or a higher one, before it; `added`: false when the id was
   * held already (by the same request: its caller must not release that hold).
   */
  | { verdict: 'held'; tier: number; inFlight: number; added: boolean }
  | { verdict: 'rate_limited'; waitMs: number; inFlight: number }
  | { verdict: 'in_flight_cap'; inFlight: number };

function agentHoldArgs(a: AgentHoldArgs): ScriptArgs {
  const argv = [a.id, a.capacity, a.refillPerMs, a.maxInFlight, Math.ceil(a.lapseAt), Math.floor(a.now), a.rank, Math.ceil(a.setTtlMs)];
  return [a.bucket, a.held, ...argv, clock(a.bucketNow), a.mayBeHeld ? '1' : '0'];
}

export function decodeAgentHold(reply: unknown): AgentHoldReply {
  const [verdict, n, inFlight, added] = reply as [number, number, number, number?];
  switch (verdict) {
    case AgentVerdict.Held:
      return { verdict: 'held', tier: n, inFlight, added: added !== 0 };
    case AgentVerdict.RateLimited:
      return { verdict: 'rate_limited', waitMs: n, inFlight };
    case AgentVerdict.InFlightCap:
      return { verdict: 'in_flight_cap', inFlight };
    default:
      throw new Error(`agent.lua answered verdict ${JSON.stringify(verdict)}, which is none of its verdicts`);
  }
}

interface ResilienceCommands {
  mcpAdmit(...args: ScriptArgs): Promise<unknown>;
  mcpRecord(...args: ScriptArgs): Promise<unknown>;
  mcpAgentHold(...args: ScriptArgs): Promise<unknown>;
}

/**
 * The resilience scripts on one client (registered once; calls go as EVALSHA), one call each with
 * its reply decoded. Each sends its command when called, so callers can put several in one write.
 */
export class ResilienceScripts {
  private readonly redis: RedisClient & ResilienceCommands;

  constructor(redis: RedisClient) {
    if (!(redis as Partial<ResilienceCommands>).mcpAdmit) {
      redis.defineCommand('mcpAdmit', { numberOfKeys: 3, lua: lua('admit') });
      redis.defineCommand('mcpRecord', { numberOfKeys: 2, lua: lua('record') });
      redis.defineCommand('mcpAgentHold', { numberOfKeys: 2, lua: lua('agent') });
    }
    this.redis = redis as RedisClient & ResilienceCommands;
  }

  admit(keys: ServiceKeys, a: AdmitArgs): Promise<AdmitReply> {
    return this.redis.mcpAdmit(...admitArgs(keys, a)).then(decodeAdmit);
  }

  record(keys: ServiceKeys, a: RecordArgs): Promise<RecordResult> {
    return this.redis.mcpRecord(...recordArgs(keys, a)).then(decodeRecord);
  }

  agentHold(a: AgentHoldArgs): Promise<AgentHoldReply> {
    return this.redis.mcpAgentHold(...agentHoldArgs(a)).then(decodeAgentHold);
  }
}
