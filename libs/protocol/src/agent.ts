import { GatewayError } from './errors';
import { globToRegExp } from './glob';
import { isReadOnly, type OperationDefinition, type ServiceDefinition } from './operation';

/** Which operations of one service a credential may call, when not all of them. */
export interface OperationScope {
  /** Every read-only operation (GET, HEAD, OPTIONS). */
  readOnly: boolean;
  /** Operations whose names match one of these. */
  names: readonly RegExp[];
}

/** Who is calling, as inbound auth established it; anonymous (undefined) when inbound auth is off. */
export interface Agent {
  id: string;
  /** Services this agent may use (some or all of their operations); undefined = all. */
  services?: ReadonlySet<string>;
  /** The services of which it may call only some operations; a service not here: all of them. */
  operations?: ReadonlyMap<string, OperationScope>;
  via: 'api-key' | 'jwt';
}

/**
 * A credential's grants as an agent's scope: `svc` is every operation of a service, `svc.<glob>` the
 * operations whose names match (`github.repos/*`, `users.getUser`), `svc.readOnly` its read-only
 * ones; `*` is everything.
 */
export function agentScope(grants: readonly string[]): Pick<Agent, 'services' | 'operations'> {
  if (grants.includes('*')) return {};
  const whole = new Set<string>();
  const partial = new Map<string, { readOnly: boolean; names: RegExp[] }>();
  for (const grant of grants) {
    const dot = grant.indexOf('.');
    if (dot < 0) {
      whole.add(grant);
      continue;
    }
    const service = grant.slice(0, dot);
    const rest = grant.slice(dot + 1);
    const scope = partial.get(service) ?? { readOnly: false, names: [] };
    if (rest === 'readOnly') scope.readOnly = true;
    else scope.names.push(globToRegExp(rest));
    partial.set(service, scope);
  }
  for (const service of whole) partial.delete(service);
  const services = new Set([...whole, ...partial.keys()]);
  return { services, ...(partial.size > 0 ? { operations: partial } : {}) };
}

/** The same scope gives the same key (what a tool list per scope is cached by). */
export function agentScopeKey(agent: Agent | undefined): string {
  if (!agent?.services) return '*';
  const parts = [...agent.services].sort().map((service) => {
    const scope = agent.operations?.get(service);
    if (!scope) return service;
    return `${service}(${scope.readOnly ? 'readOnly;' : ''}${scope.names.map((re) => re.source).join(';')})`;
  });
  return parts.join(',');
}

export function agentMayUse(agent: Agent | undefined, service: string): boolean {
  return !agent?.services || agent.services.has(service);
}

/** Whether the agent may call this operation of the service. */
export function agentMayCall(agent: Agent | undefined, service: string, op: Pick<OperationDefinition, 'name' | 'method'>): boolean {
  if (!agentMayUse(agent, service)) return false;
  const scope = agent?.operations?.get(service);
  if (!scope) return true;
  return (scope.readOnly && isReadOnly(op)) || scope.names.some((re) => re.test(op.name));
}

/** FORBIDDEN unless the agent (undefined: anonymous, inbound auth off) may use the service. */
export function assertAgentMayUse(agent: Agent | undefined, service: string): void {
  if (!agentMayUse(agent, service)) throw new GatewayError('FORBIDDEN', `This credential may not use service ${service}`);
}

/** FORBIDDEN unless the agent may call this operation of the service. */
export function assertAgentMayCall(agent: Agent | undefined, service: string, op: Pick<OperationDefinition, 'name' | 'method'>): void {
  if (!agentMayCall(agent, service, op))
    throw new GatewayError('FORBIDDEN', `This credential may not call operation ${op.name} of service ${service}`);
}

/** A service's definition as the agent sees it: only the operations it may call. */
export function callableDefinition(agent: Agent | undefined, def: ServiceDefinition): ServiceDefinition {
  if (!agent?.operations?.has(def.service)) return def;
  return { ...def, operations: def.operations.filter((op) => agentMayCall(agent, def.service, op)) };
}
