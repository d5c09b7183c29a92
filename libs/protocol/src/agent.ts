import { GatewayError } from './errors';
import { SERVICE_NAME_PATTERN } from './request';
import { globToRegExp } from './glob';
import { isReadOnly, type OperationDefinition, type ServiceDefinition } from './operation';

/** Which operations of one service a credential may call, when not all of them. */
export interface OperationScope {
  /** Every read-only operation (GET, HEAD, OPTIONS). */
  readOnly: boolean;
  /** Operations whose names match one of these. */
  names: readonly RegExp[];
}

/** What a credential (or a toolset) lets one use. */
export interface AgentScope {
  /** Services it may use (some or all of their operations); undefined = all. */
  services?: ReadonlySet<string>;
  /** The services of which it may call only some operations; a service not here: all of them. */
  operations?: ReadonlyMap<string, OperationScope>;
}

/**
 * Who is calling, as inbound auth established it; anonymous (undefined) when inbound auth is off,
 * except on a toolset's endpoint, where an anonymous caller is an agent with an empty id.
 */
export interface Agent extends AgentScope {
  id: string;
  via: 'api-key' | 'jwt' | 'anonymous';
  /** A second scope that must allow what the agent does too: the toolset whose endpoint it called. */
  limit?: AgentScope;
}

/** The agent a toolset's endpoint serves: the caller, limited to the toolset. */
export function withinToolset(agent: Agent | undefined, toolset: AgentScope): Agent {
  return agent ? { ...agent, limit: toolset } : { id: '', via: 'anonymous', limit: toolset };
}

/**
 * A credential's grants as an agent's scope: `svc` is every operation of a service, `svc.<glob>` the
 * operations whose names match (`github.repos/*`, `users.getUser`), `svc.readOnly` its read-only
 * ones; `*` is everything.
 */
export function agentScope(grants: readonly string[]): AgentScope {
  if (grants.includes('*')) return {};
  const whole = new Set<string>();
  const partial = new Map<string, { readOnly: boolean; names: RegExp[] }>();
  for (const grant of grants) {
    const dot = grant.indexOf('.');
    // A grant that names no valid service grants nothing.
    const service = dot < 0 ? grant : grant.slice(0, dot);
    if (!SERVICE_NAME_PATTERN.test(service)) continue;
    if (dot < 0) {
      whole.add(service);
      continue;
    }
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
  const own = scopeKey(agent);
  return agent?.limit ? `${own}|${scopeKey(agent.limit)}` : own;
}

function scopeKey(scope: AgentScope | undefined): string {
  if (!scope?.services) return '*';
  const parts = [...scope.services].sort().map((service) => {
    const ops = scope.operations?.get(service);
    return ops ? [service, ops.readOnly, ops.names.map((re) => re.source)] : [service];
  });
  return JSON.stringify(parts);
}

function scopeAllowsService(scope: AgentScope | undefined, service: string): boolean {
  return !scope?.services || scope.services.has(service);
}

function scopeAllowsCall(scope: AgentScope | undefined, service: string, op: Pick<OperationDefinition, 'name' | 'method'>): boolean {
  if (!scopeAllowsService(scope, service)) return false;
  const ops = scope?.operations?.get(service);
  if (!ops) return true;
  return (ops.readOnly && isReadOnly(op)) || ops.names.some((re) => re.test(op.name));
}

export function agentMayUse(agent: Agent | undefined, service: string): boolean {
  return scopeAllowsService(agent, service) && scopeAllowsService(agent?.limit, service);
}

/** Whether the agent may call this operation of the service. */
export function agentMayCall(agent: Agent | undefined, service: string, op: Pick<OperationDefinition, 'name' | 'method'>): boolean {
  return scopeAllowsCall(agent, service, op) && scopeAllowsCall(agent?.limit, service, op);
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
  if (!agent?.operations?.has(def.service) && !agent?.limit?.operations?.has(def.service)) return def;
  return { ...def, operations: def.operations.filter((op) => agentMayCall(agent, def.service, op)) };
}
