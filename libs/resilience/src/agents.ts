import type { RedisClient } from '@mcp-gateway/redis';
import { agentKeys, agentServiceKeys } from './keys';
import { ResilienceScripts, type AgentHoldReply } from './scripts';

/** One quota (structurally the config's AgentLimits); an unset field is no limit. */
export interface AgentQuotaLimits {
  requestsPerMinute?: number;
  burstLimit?: number;
  maxInFlight?: number;
}

export interface AgentHoldRequest {
  id: string;
  agentId: string;
  service: string;
  /** The request's priority class: 1 high, 2 normal, 3 low. */
  rank: 1 | 2 | 3;
  /** When its holds lapse if never released (ms, this process's clock): after the request has surely ended. */
  lapseAt: number;
  /** Longest a hold can be: how long a hold set lives after its latest hold (ms). */
  longestHoldMs: number;
  /** The agent's own quota, over every service. */
  own?: AgentQuotaLimits;
  /** Its quota for this service. */
  perService?: AgentQuotaLimits;
  /** Place the request by the agent's share of the service (its fair-share tier). */
  fair: boolean;
  /** The agent's share against other agents' (tiers are its held requests ÷ weight). */
  weight: number;
  /** A caller's own id, which may be held already (sent again): then it is not held twice. */
  mayBeHeld?: boolean;
  /** Test clocks (ms): now (default Date.now()), and the buckets' (default Redis TIME). */
  now?: number;
  bucketNow?: number;
}

export type AgentHoldOutcome =
  /**
   * `holds`: the keys this call held the request in, to release when it ends (not the ones that held
   * it already: those are its first submission's).
   */
  | { held: true; tier: number; holds: string[] }
  | {
      held: false;
      /** Whose quota: the agent's own, or its quota for this service. */
      scope: 'agent' | 'service';
      limit: 'rate' | 'inFlight';
      /** When to try again (ms). */
      waitMs: number;
      quota: AgentQuotaLimits;
    };

/** An agent's quota as it stands: its limits, the requests it has held, and the tokens left when it has a rate. */
export interface AgentQuotaState extends AgentQuotaLimits {
  inFlight: number;
  tokens?: number;
}

/** The width of a priority class's band of scores in a hold set (agent.lua's BAND). */
const HOLD_BAND = 1e13;

function quotaState(
  quota: AgentQuotaLimits | undefined,
  inFlight: number,
  tokens: string | null,
  ts: string | null,
  now: number,
): AgentQuotaState {
  const state: AgentQuotaState = { ...quota, inFlight };
  if (quota?.requestsPerMinute && quota.burstLimit) {
    const refilled =
      tokens === null || ts === null
        ? quota.burstLimit
        : Number(tokens) + (Math.max(0, now - Number(ts)) * quota.requestsPerMinute) / 60_000;
    state.tokens = Math.floor(Math.min(quota.burstLimit, refilled) * 1000) / 1000;
  }
  return state;
}

/** How long to wait before retrying a request refused for the agent's requests in flight. */
const IN_FLIGHT_RETRY_MS = 1000;

/**
 * Per-agent quotas and fair-share placement, shared by every replica: a request is held (counted
 * against the agent's rate and requests in flight) from its acceptance until it ends. One script
 * call in the agent's slot for its own quota, one in the service's slot for its quota there and
 * its tier; both sent at once, in the caller's write.
 */
export class AgentQuotas {
  private readonly scripts: ResilienceScripts;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {
    this.scripts = new ResilienceScripts(redis);
  }

  /** Sends the holds a request needs now (before its first await); undefined when it needs none. */
  hold(r: AgentHoldRequest): Promise<AgentHoldOutcome> | undefined {
    // The agent's own set has no fair-share tier to give: all its holds are in one class.
    const own = r.own && this.holdIn(r, agentKeys(this.prefix, r.agentId), 1, r.own);
    const service =
      r.perService || r.fair ? this.holdIn(r, agentServiceKeys(this.prefix, r.service, r.agentId), r.rank, r.perService ?? {}) : undefined;
    if (!own && !service) return undefined;
    return this.settle(r, own, service);
  }

  /**
   * What an agent's quotas hold now: its own, and per service (`services`) the requests held there
   * and the tokens left of its quota for that service. `quotas` gives the limits, for the tokens.
   */
  async state(
    agentId: string,
    services: readonly string[],
    quotas: (service?: string) => AgentQuotaLimits | undefined,
  ): Promise<{ own: AgentQuotaState; services: Record<string, AgentQuotaState> }> {
    const now = Date.now();
    const read = (keys: { bucket: string; held: string }, quota: AgentQuotaLimits | undefined) =>
      Promise.all([this.redis.hmget(keys.bucket, 'tokens', 'ts'), this.heldNow(keys.held, now)]).then(([[tokens, ts], inFlight]) =>
        quotaState(quota, inFlight, tokens, ts, now),
      );
    const [own, ...each] = await Promise.all([
      read(agentKeys(this.prefix, agentId), quotas()),
      ...services.map((service) => read(agentServiceKeys(this.prefix, service, agentId), quotas(service))),
    ]);
    return { own: own!, services: Object.fromEntries(services.map((service, i) => [service, each[i]!])) };
  }

  /** Holds not lapsed yet, in every priority band (see agent.lua). */
  private async heldNow(key: string, now: number): Promise<number> {
    const counts = await Promise.all([1, 2, 3].map((rank) => this.redis.zcount(key, rank * HOLD_BAND + now, `(${(rank + 1) * HOLD_BAND}`)));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Ends a request's holds. */
  release(holds: readonly string[], id: string): Promise<unknown> {
    return Promise.all(holds.map((key) => this.redis.zrem(key, id)));
  }

  private holdIn(r: AgentHoldRequest, keys: { bucket: string; held: string }, rank: number, q: AgentQuotaLimits) {
    const now = r.now ?? Date.now();
    const reply = this.scripts.agentHold({
      id: r.id,
      bucket: keys.bucket,
      held: keys.held,
      rank,
      capacity: q.requestsPerMinute ? (q.burstLimit ?? 1) : 0,
      refillPerMs: (q.requestsPerMinute ?? 0) / 60_000,
      maxInFlight: q.maxInFlight ?? 0,
      lapseAt: r.lapseAt,
      now,
      setTtlMs: r.longestHoldMs + 1000,
      bucketNow: r.bucketNow,
      mayBeHeld: r.mayBeHeld,
    });
    return { reply, key: keys.held, quota: q };
  }

  private async settle(
    r: AgentHoldRequest,
    own: ReturnType<AgentQuotas['holdIn']> | undefined,
    service: ReturnType<AgentQuotas['holdIn']> | undefined,
  ): Promise<AgentHoldOutcome> {
    const [o, s] = await Promise.allSettled([own?.reply, service?.reply]);
    const heldIn: string[] = [];
    if (o.status === 'fulfilled' && o.value?.verdict === 'held' && o.value.added) heldIn.push(own!.key);
    if (s.status === 'fulfilled' && s.value?.verdict === 'held' && s.value.added) heldIn.push(service!.key);
    const refused = refusal(o, 'agent', own?.quota) ?? refusal(s, 'service', service?.quota);
    const failed = [o, s].find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (refused || failed) {
      // Held in one and refused (or unanswered) by the other: not held at all.
      await this.release(heldIn, r.id).catch(() => undefined);
      if (refused) return refused;
      throw failed!.reason;
    }
    const raw = s.status === 'fulfilled' && s.value?.verdict === 'held' ? s.value.tier : 0;
    return { held: true, tier: r.fair ? Math.floor(raw / r.weight) : 0, holds: heldIn };
  }
}

function refusal(
  x: PromiseSettledResult<AgentHoldReply | undefined>,
  scope: 'agent' | 'service',
  quota: AgentQuotaLimits | undefined,
): Extract<AgentHoldOutcome, { held: false }> | undefined {
  if (x.status !== 'fulfilled' || !x.value || x.value.verdict === 'held') return undefined;
  const v = x.value;
  const rate = v.verdict === 'rate_limited';
  return { held: false, scope, limit: rate ? 'rate' : 'inFlight', waitMs: rate ? v.waitMs : IN_FLIGHT_RETRY_MS, quota: quota ?? {} };
}
