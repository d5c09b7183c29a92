import { serviceEnvName } from './env';
import type { AgentConfig, AgentQuota, GatewayConfig } from './schema';

/** A quota with its defaults applied; undefined fields are no limit. */
export interface AgentLimits {
  requestsPerMinute?: number;
  /** Set whenever requestsPerMinute is. */
  burstLimit?: number;
  maxInFlight?: number;
}

/** What holds one agent's requests to one service. */
export interface AgentPolicy {
  /** The agent's own quota, over every service; undefined: none. */
  own?: AgentLimits;
  /** Its quota for this service; undefined: none. */
  service?: AgentLimits;
  /** Its share of a backed-up service's workers. */
  weight: number;
  /** The services it has a quota of its own for. */
  quotaServices: readonly string[];
}

/** A quota's limits; 0 is no limit. A bucket with no burst set holds 5 s of its rate, at least one token. */
function limits(q: AgentQuota): AgentLimits | undefined {
  const requestsPerMinute = q.requestsPerMinute || undefined;
  const maxInFlight = q.maxInFlight || undefined;
  if (requestsPerMinute === undefined && maxInFlight === undefined) return undefined;
  const burstLimit = requestsPerMinute === undefined ? undefined : (q.burstLimit ?? Math.max(1, Math.ceil(requestsPerMinute / 12)));
  return { requestsPerMinute, burstLimit, maxInFlight };
}

/**
 * An agent's own quota over the defaults, limit by limit; an agent that sets its own rate and no
 * burst gets a burst from its rate, not the defaults'.
 */
function ownOverDefaults(defaults: AgentQuota, own: AgentQuota): AgentQuota {
  const merged = { ...defaults, ...own };
  if (own.requestsPerMinute !== undefined && own.burstLimit === undefined) delete merged.burstLimit;
  return merged;
}

/**
 * The policy of an agent's requests to a service: its own settings (found by id as its variables name
 * it, upper-cased with - as _, so MCP_AGENT_PLANNER_BOT_* applies to `planner-bot`) over the defaults
 * of every agent. Answers the same object for the same agent and service.
 */
export function agentPolicies(cfg: Pick<GatewayConfig, 'agents' | 'agentDefaults'>): (agentId: string, service: string) => AgentPolicy {
  const byEnvName = new Map<string, AgentConfig>();
  for (const [id, agent] of Object.entries(cfg.agents)) byEnvName.set(serviceEnvName(id), agent);
  const cache = new Map<string, AgentPolicy>();
  return (agentId, service) => {
    const key = `${service}\n${agentId}`;
    let policy = cache.get(key);
    if (!policy) {
      const own = byEnvName.get(serviceEnvName(agentId));
      const { services, weight, ...quota } = own ?? {};
      policy = {
        own: limits(ownOverDefaults(cfg.agentDefaults, quota)),
        service: services?.[service] && limits(services[service]),
        weight: weight ?? 1,
        quotaServices: Object.keys(services ?? {}),
      };
      // Bounded: agent ids from JWTs are not.
      if (cache.size >= 10_000) cache.clear();
      cache.set(key, policy);
    }
    return policy;
  };
}

/**
 * The agents the configuration names: the ones `/metrics` labels by id (any other is `_other`, as JWT
 * subjects are not bounded). Every place that names agents adds its ids here.
 */
export function configuredAgentIds(config: GatewayConfig): ReadonlySet<string> {
  return new Set([...config.security.apiKeys.map((k) => k.agentId), ...Object.keys(config.agents)]);
}

/**
 * Whether requests can come from more than one agent, so that fair queues have something to share:
 * not when inbound auth knows one agent only (every key is its, and no JWTs). With inbound auth off
 * the body names the agent, so there can be many.
 */
export function severalAgents(config: Pick<GatewayConfig, 'security'>): boolean {
  const { apiKeys, jwt } = config.security;
  if (jwt?.secret || jwt?.jwksUrl || apiKeys.length === 0) return true;
  return new Set(apiKeys.map((k) => k.agentId)).size > 1;
}
