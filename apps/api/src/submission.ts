import { randomUUID } from 'node:crypto';
import {
  agentMayUse,
  assertAgentMayCall,
  assertAgentMayUse,
  callableDefinition,
  GatewayError,
  isEnded,
  isGatewayError,
  MAX_TIMEOUT_MS,
  type Agent,
  type MCPResponse,
  type OperationDefinition,
} from '@mcp-gateway/protocol';
import { agentPolicies, overdueGraceMs, OVERDUE_SWEEP_EVERY_MS, severalAgents, type ServiceConfig } from '@mcp-gateway/config';
import type { AgentHoldOutcome, PeekResult } from '@mcp-gateway/resilience';
import {
  PRIORITY_RANK,
  requestHash,
  ResultMessage,
  type GatewayJobData,
  type Placement,
  type Submission,
  type SubmissionOutcome,
  type Submit,
} from '@mcp-gateway/broker';
import type { ApiDeps } from './deps';

/** After the deadline, how long a caller still waits for the worker's own TIMEOUT result. */
export const DEADLINE_GRACE_MS = 1000;

/** How deep parameters may nest: far beyond any API's, and well within what hashing and validating them can recurse. */
export const MAX_PARAMETER_DEPTH = 100;

/** Refuses parameters nested deeper than MAX_PARAMETER_DEPTH (objects and arrays; the parameters object is level 1). */
function assertNesting(parameters: unknown): void {
  // Iterative, so that the check is not what runs out of stack.
  const stack: Array<[unknown, number]> = [[parameters, 1]];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [value, depth] = next;
    if (depth > MAX_PARAMETER_DEPTH) {
      const message = `nested more than ${MAX_PARAMETER_DEPTH} levels deep`;
      throw new GatewayError('VALIDATION_ERROR', `Invalid parameters: ${message}`, { details: [{ path: 'parameters', message }] });
    }
    for (const child of Array.isArray(value) ? value : Object.values(value as object)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
}

/** Why a new request is refused at once: an open circuit, a full queue, or a rate-limit wait longer than its deadline. */
function refusal(name: string, service: ServiceConfig, peek: PeekResult, timeoutMs: number): GatewayError | undefined {
  if (peek.openWaitMs > 0) {
    const message = `The circuit of ${name} is open after repeated backend failures; retry in ${Math.ceil(peek.openWaitMs / 1000)} s`;
    return new GatewayError('CIRCUIT_OPEN', message, { retryAfterMs: peek.openWaitMs, details: { circuit: 'open' } });
  }
  if (peek.queueDepth >= service.maxQueueDepth) {
    return new GatewayError('OVERLOADED', `The queue of ${name} is full (${peek.queueDepth} waiting)`, { retryAfterMs: 1000 });
  }
  if (peek.tokenWaitMs > timeoutMs) {
    return new GatewayError('RATE_LIMITED', `The rate limit of ${name} has no room within the deadline`, {
      retryAfterMs: peek.tokenWaitMs,
    });
  }
  return undefined;
}

/** A request its agent's quota refuses: 429 with when to try again, and whose quota it was. */
function overQuota(agentId: string, service: string, refused: Extract<AgentHoldOutcome, { held: false }>): GatewayError {
  const { quota, limit, scope } = refused;
  const of = scope === 'service' ? ` for service ${service}` : '';
  const message =
    limit === 'rate'
      ? `Agent ${agentId} is over its quota of ${quota.requestsPerMinute} requests per minute${of}`
      : `Agent ${agentId} already has ${quota.maxInFlight} requests in flight${of}, its most at once`;
  return new GatewayError('RATE_LIMITED', `${message}; retry in ${Math.max(1, Math.ceil(refused.waitMs / 1000))} s`, {
    retryAfterMs: refused.waitMs,
    details: { scope: 'agent', limit, ...(scope === 'service' ? { service } : {}), quota },
  });
}

/** The queued job of an accepted request: its deadline counts from now. */
function jobData(s: Submission, id: string, operation: string, parameters: Record<string, unknown>, timeoutMs: number): GatewayJobData {
  const meta = s.request.metadata ?? {};
  const acceptedAt = Date.now();
  return {
    id,
    service: s.request.service,
    operation,
    parameters,
    correlationId: s.correlationId,
    traceparent: s.traceparent,
    // With inbound auth on, the credential decides who the agent is, whatever the body claims.
    // An anonymous caller of a toolset's endpoint is an agent with no id.
    ...(s.agent?.id ? { agentId: s.agent.id } : meta.agentId ? { agentId: meta.agentId } : {}),
    acceptedAt,
    deadline: acceptedAt + timeoutMs,
    priority: meta.priority ?? 'normal',
    ...(s.replayOf ? { replayOf: s.replayOf } : {}),
  };
}

/**
 * The one way a request enters the queue, shared by POST /mcp/request and MCP tools/call:
 * service and permission, operation and parameters, the fast-fail checks, the idempotent enqueue,
 * and the wait (registered before enqueueing, so a fast worker cannot finish unseen).
 */
export function createSubmitter(deps: ApiDeps): Submit {
  const { config, broker, waiter, registry, validator, fastFail } = deps;

  /**
   * Refuse at once what would only fail later: an open circuit, a full queue, or a rate-limit wait
   * longer than the whole deadline. One round trip of plain reads, sent at once (for a fresh id it is the
   * gate of the claim, in the same write), or the answer of the one already out.
   */
  async function failFast(name: string, service: ServiceConfig, timeoutMs: number): Promise<void> {
    const peek = await fastFail.read(name, service).catch((err: unknown) => {
      throw new GatewayError('UNAVAILABLE', 'The gateway cannot reach Redis; try again shortly', { retryAfterMs: 1000, cause: err });
    });
    const refused = refusal(name, service, peek, timeoutMs);
    if (refused) throw refused;
  }

  const policies = agentPolicies(config);
  // With one agent there is nothing to share: its requests keep their order at no cost.
  const fair = config.fairQueues && severalAgents(config);
  // A hold outlives the request: it lapses once the sweep has surely ended it.
  const holdLapseMs = overdueGraceMs(config.worker.lockMs) + 2 * OVERDUE_SWEEP_EVERY_MS;

  /** A request whose agent's quotas hold nothing (none, or an agent with none and no fair share to take). */
  function holdsNothing(data: GatewayJobData): boolean {
    if (!data.agentId) return true;
    const policy = policies(data.agentId, data.service);
    return !fair && !policy.own && !policy.service;
  }

  /**
   * Holds the request against its agent's quotas and places it fairly among the agents' requests to
   * the service (sent now, in the caller's write); undefined when there is nothing to hold. A
   * caller's own id may be held already (the same request sent again): it is not held twice.
   */
  function holdForAgent(data: GatewayJobData, ownId: boolean): Promise<Placement> | undefined {
    const { agentId, service } = data;
    if (!agentId) return undefined;
    const policy = policies(agentId, service);
    const held = deps.agentQuotas.hold({
      id: data.id,
      agentId,
      service,
      rank: PRIORITY_RANK[data.priority],
      lapseAt: data.deadline + holdLapseMs,
      longestHoldMs: MAX_TIMEOUT_MS + holdLapseMs,
      own: policy.own,
      perService: policy.service,
      fair,
      weight: policy.weight,
      mayBeHeld: ownId,
    });
    return held?.then((h) => {
      if (!h.held) throw overQuota(agentId, service, h);
      return { tier: h.tier, holds: h.holds };
    });
  }

  /**
   * The checks of a new request, sent together: the fast-fail read and its agent's holds. A hold made
   * for a request the fast-fail check refuses is released.
   */
  function admission(data: GatewayJobData, service: ServiceConfig, timeoutMs: number, ownId: boolean): () => Promise<Placement | void> {
    if (!data.agentId) return () => failFast(data.service, service, timeoutMs);
    return async () => {
      const checked = failFast(data.service, service, timeoutMs);
      const held = holdForAgent(data, ownId);
      const [check, placed] = await Promise.allSettled([checked, held]);
      if (check.status === 'rejected') {
        if (placed.status === 'fulfilled' && placed.value)
          await deps.agentQuotas.release(placed.value.holds ?? [], data.id).catch(() => undefined);
        throw check.reason;
      }
      if (placed.status === 'rejected') throw placed.reason;
      return placed.value;
    };
  }

  /** An unknown operation's error lists only the operations the caller may call, not every one of the service. */
  async function onlyCallable(err: unknown, agent: Agent | undefined, service: string): Promise<unknown> {
    if (!isGatewayError(err) || err.code !== 'UNKNOWN_OPERATION' || !agent) return err;
    const def = await registry.definition(service).catch(() => undefined);
    const operations = def ? callableDefinition(agent, def).operations.map((o) => o.name) : [];
    return new GatewayError('UNKNOWN_OPERATION', err.message, { details: { operations } });
  }

  return async function submit(s: Submission): Promise<SubmissionOutcome> {
    fastFail.submitting += 1;
    try {
      return await submitOne(s);
    } finally {
      fastFail.submitting -= 1;
    }
  };

  async function submitOne(s: Submission): Promise<SubmissionOutcome> {
    const body = s.request;
    const meta = body.metadata ?? {};
    // Permission first: a credential limited to some services learns nothing about the others.
    assertAgentMayUse(s.agent, body.service);
    const service = registry.get(body.service);
    if (!service) {
      throw new GatewayError('UNKNOWN_SERVICE', `Unknown service: ${body.service}`, {
        details: { known: registry.names().filter((n) => agentMayUse(s.agent, n)) },
      });
    }
    let op: OperationDefinition;
    try {
      op = await registry.operation(body.service, body.operation);
    } catch (err) {
      throw await onlyCallable(err, s.agent, body.service);
    }
    assertAgentMayCall(s.agent, body.service, op);
    const parameters = body.parameters ?? {};
    assertNesting(parameters);
    validator.validate(body.service, op, parameters);

    const id = body.id ?? randomUUID();
    const timeoutMs = meta.timeout ?? service.timeout ?? config.defaultTimeout;
    const untilDeadline = timeoutMs + DEADLINE_GRACE_MS;
    const waitMs = Math.min(s.waitMs, untilDeadline);
    // A caller that waits is held by this process, which indexes its request for the sweep only if
    // it is still waiting after INDEX_LATER_MS (see LateIndex).
    const data = jobData(s, id, op.name, parameters, timeoutMs);
    if (waitMs > 0) data.indexLater = true;
    // The same id again joins its request (and gets its stored result) even while the service is
    // refusing new work or its agent is over quota: the checks apply to new requests only. A caller's
    // own id is therefore read first, and checked before its claim (a refused claim is not undone,
    // as a concurrent submission of that id may have joined it); a fresh id is new by construction,
    // and its checks go in one write with its claim.
    let placed: Placement | void = undefined;
    if (body.id && !(await broker.records.get(id).catch(() => undefined))) placed = await admission(data, service, timeoutMs, true)();
    // A fresh id with no agent quota to hold, on a service a recent reading lets in: claim and job in
    // one write, without a round trip between them.
    const straightIn = !body.id && holdsNothing(data) && fastFail.letsIn(body.service, service);

    const w = waitMs > 0 ? waiter.register(id) : undefined;
    let outcome;
    try {
      const hash = requestHash(body.service, op.name, parameters, s.agent?.id);
      const retry = { maxAttempts: registry.retryPolicy(body.service).maxAttempts };
      outcome = straightIn
        ? await broker.submitFresh(data, hash, retry)
        : await broker.submit(
            placed ? Object.assign({}, data, placed) : data,
            hash,
            retry,
            body.id ? undefined : admission(data, service, timeoutMs, false),
          );
    } catch (err) {
      w?.cancel();
      throw err;
    }
    if (outcome.kind === 'joined' && outcome.result && isEnded(outcome.state)) {
      w?.cancel();
      return { kind: 'ended', ended: outcome.result };
    }
    if (outcome.kind === 'created' && !straightIn) fastFail.added(body.service);
    s.onAccepted?.(id, outcome.kind === 'created');
    const state = outcome.kind === 'joined' ? outcome.state : 'queued';
    if (!w) return { kind: 'pending', id, state, timeoutMs, waitedToDeadline: false };
    if (outcome.kind === 'created') deps.lateIndex.hold(data);
    // A stopping API process answers its waiting callers 202 when its grace period ends: the release
    // ends the wait as a timeout would, and the stored state decides the answer.
    const { lifecycle } = deps;
    const msg = await lifecycle.wait(w, waitMs);
    if (msg) {
      deps.lateIndex.drop(id);
      return { kind: 'ended', ended: msg };
    }
    // Still pending, it stays held: indexed when due, even after its caller was answered.
    const now = await broker.status(id).catch(() => undefined);
    if (now?.status !== undefined && isEnded(now.state)) {
      deps.lateIndex.drop(id);
      const { state: ended, ...result } = now;
      return { kind: 'ended', ended: ResultMessage.fromResult(id, ended, result as MCPResponse) };
    }
    return { kind: 'pending', id, state: now?.state ?? state, timeoutMs, waitedToDeadline: !lifecycle.released && waitMs >= untilDeadline };
  }
}
