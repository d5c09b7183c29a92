import { GatewayError } from './errors';

/** Who is calling, as inbound auth established it; anonymous (undefined) when inbound auth is off. */
export interface Agent {
  id: string;
  /** Services this agent may use; undefined = all. */
  services?: ReadonlySet<string>;
  via: 'api-key' | 'jwt';
}

export function agentMayUse(agent: Agent | undefined, service: string): boolean {
  return !agent?.services || agent.services.has(service);
}

/** FORBIDDEN unless the agent (undefined: anonymous, inbound auth off) may use the service. */
export function assertAgentMayUse(agent: Agent | undefined, service: string): void {
  if (!agentMayUse(agent, service)) throw new GatewayError('FORBIDDEN', `This credential may not use service ${service}`);
}
