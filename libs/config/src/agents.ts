import type { GatewayConfig } from './schema';

/**
 * The agents the configuration names: the ones `/metrics` labels by id (any other is `_other`, as JWT
 * subjects are not bounded). Every place that names agents adds its ids here.
 */
export function configuredAgentIds(config: GatewayConfig): ReadonlySet<string> {
  return new Set(config.security.apiKeys.map((k) => k.agentId));
}
