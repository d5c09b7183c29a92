import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import {
  describeIssues,
  GatewayError,
  isEnded,
  MCPRequestSchema,
  REQUEST_ID_PATTERN,
  type MCPResponse,
} from '@mcp-gateway/protocol';
import type { ServiceConfig } from '@mcp-gateway/config';
import { requestHash, type GatewayJobData } from '@mcp-gateway/broker';
import { parseTraceparent } from '@mcp-gateway/observability';
import { assertMayUse } from './auth';
import type { ApiDeps } from './deps';
import { sendError, sendResult } from './http-errors';
import { parseWaitPreference } from './prefer';

/** After the deadline, how long a sync caller still waits for the worker's own TIMEOUT result. */
const DEADLINE_GRACE_MS = 1000;

export function requestHandlers(deps: ApiDeps) {
  const { config, broker, waiter, registry, validator } = deps;

  /**
   * Refuse at once what would only fail later: an open circuit, a full queue, or a rate-limit wait
   * longer than the whole deadline. One read-only script call.
   */
  async function failFast(name: string, service: ServiceConfig, timeoutMs: number): Promise<void> {
    const peek = await deps.resilience.peek(name, service, {
      wait: broker.keys.queueKey(name, 'wait'),
      prioritized: broker.keys.queueKey(name, 'prioritized'),
    }).catch((err: unknown) => {
      throw new GatewayError('UNAVAILABLE', 'The gateway cannot reach Redis; try again shortly', { retryAfterMs: 1000, cause: err });
    });
    if (peek.openWaitMs > 0) {
      throw new GatewayError('CIRCUIT_OPEN', `The circuit of ${name} is open after repeated backend failures; retry in ${Math.ceil(peek.openWaitMs / 1000)} s`, {
        retryAfterMs: peek.openWaitMs,
        details: { circuit: 'open' },
      });
    }
    if (peek.queueDepth >= service.maxQueueDepth) {
      throw new GatewayError('OVERLOADED', `The queue of ${name} is full (${peek.queueDepth} waiting)`, { retryAfterMs: 1000 });
    }
    if (peek.tokenWaitMs > timeoutMs) {
      throw new GatewayError('RATE_LIMITED', `The rate limit of ${name} has no room within the deadline`, { retryAfterMs: peek.tokenWaitMs });
    }
  }

  /** A request's result, with where it can be read again (Location too when it is a TIMEOUT: poll there). */
  const answer = (res: Response, result: MCPResponse) => {
    const at = `/mcp/requests/${encodeURIComponent(result.id)}`;
    res.setHeader('Content-Location', at);
    if (result.error?.code === 'TIMEOUT') res.setHeader('Location', at);
    sendResult(res, result);
  };

  const accepted = (res: Response, id: string, state: string) => {
    res.status(202).setHeader('Location', `/mcp/requests/${encodeURIComponent(id)}`).json({ id, state });
  };

  /** POST /mcp/request: validate, enqueue (idempotently), then answer sync, async or after Prefer: wait. */
  async function submit(req: Request, res: Response): Promise<void> {
    // The request's span (tracing on) is the parent of everything the job does; its context is the
    // job's traceparent. Tracing off, the traceparent is a new span id under the caller's.
    const span = deps.tracing.startSpan('POST /mcp/request', { kind: 'server', parent: parseTraceparent(req.get('traceparent')) });
    res.on('finish', () => {
      span.setAttributes({ 'http.response.status_code': res.statusCode, 'mcp.correlation_id': req.correlationId });
      span.end(res.statusCode >= 500 ? { error: `HTTP ${res.statusCode}` } : {});
    });
    if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) {
      throw new GatewayError('VALIDATION_ERROR', 'The body must be a JSON object (Content-Type: application/json)');
    }
    const parsed = MCPRequestSchema.safeParse(req.body);
    if (!parsed.success) {
      const details = describeIssues(parsed.error);
      throw new GatewayError('VALIDATION_ERROR', `Invalid request: ${details[0]!.path}: ${details[0]!.message}`, { details });
    }
    const body = parsed.data;
    const meta = body.metadata ?? {};
    if (!req.get('x-correlation-id') && meta.correlationId) {
      req.correlationId = meta.correlationId;
      res.setHeader('X-Correlation-ID', meta.correlationId);
    }
    const service = registry.require(body.service);
    assertMayUse(req, body.service);
    const op = await registry.operation(body.service, body.operation);
    span.setAttributes({ 'mcp.service': body.service, 'mcp.operation': op.name });
    const parameters = body.parameters ?? {};
    validator.validate(body.service, op, parameters);

    const id = body.id ?? randomUUID();
    const timeoutMs = meta.timeout ?? service.timeout ?? config.defaultTimeout;
    await failFast(body.service, service, timeoutMs);
    const acceptedAt = Date.now();
    const data: GatewayJobData = {
      id,
      service: body.service,
      operation: op.name,
      parameters,
      correlationId: req.correlationId,
      traceparent: span.traceparent,
      // With inbound keys on, the key decides who the agent is, whatever the body claims.
      ...(req.agent ? { agentId: req.agent.id } : meta.agentId ? { agentId: meta.agentId } : {}),
      acceptedAt,
      deadline: acceptedAt + timeoutMs,
      priority: meta.priority ?? 'normal',
    };

    const pref = parseWaitPreference(req);
    const waitMs = pref.async ? 0 : Math.min(pref.waitMs ?? Infinity, timeoutMs + DEADLINE_GRACE_MS);
    // Register before enqueueing: a fast worker must not finish before anyone listens.
    const w = waitMs > 0 ? waiter.register(id) : undefined;
    let outcome;
    try {
      outcome = await broker.submit(data, requestHash(body.service, op.name, parameters, req.agent?.id), {
        maxAttempts: registry.retryPolicy(body.service).maxAttempts,
      });
    } catch (err) {
      w?.cancel();
      throw err;
    }
    if (outcome.kind === 'joined' && outcome.result && isEnded(outcome.state)) {
      w?.cancel();
      return answer(res, outcome.result);
    }
    const state = outcome.kind === 'joined' ? outcome.state : 'queued';
    if (!w) return accepted(res, id, state);

    const msg = await w.wait(waitMs);
    if (msg) return answer(res, msg.result);
    if (pref.waitMs !== undefined && pref.waitMs < timeoutMs) {
      const now = await broker.status(id).catch(() => undefined);
      return accepted(res, id, now?.state ?? state);
    }
    res.setHeader('Location', `/mcp/requests/${encodeURIComponent(id)}`);
    return sendError(res, new GatewayError('TIMEOUT', `No result within the request's deadline of ${timeoutMs} ms`), id);
  }

  function requireId(req: Request): string {
    const id = String(req.params.id ?? '');
    if (!REQUEST_ID_PATTERN.test(id)) throw new GatewayError('VALIDATION_ERROR', 'Request ids are 1-128 characters of A-Z a-z 0-9 _ . -');
    return id;
  }

  /** With inbound keys on, an agent sees only its own requests (others' are NOT_FOUND, not FORBIDDEN). */
  async function requireVisible(req: Request, id: string): Promise<void> {
    if (!req.agent) return;
    const rec = await broker.records.get(id);
    if (rec && rec.agentId !== req.agent.id) throw new GatewayError('NOT_FOUND', `No request with id ${id} (unknown, or its result expired)`);
  }

  /** GET /mcp/requests/:id */
  async function poll(req: Request, res: Response): Promise<void> {
    const id = requireId(req);
    await requireVisible(req, id);
    const status = await broker.status(id);
    if (!status) throw new GatewayError('NOT_FOUND', `No request with id ${id} (unknown, or its result expired)`);
    res.status(200).json(status);
  }

  /** DELETE /mcp/requests/:id */
  async function cancel(req: Request, res: Response): Promise<void> {
    const id = requireId(req);
    await requireVisible(req, id);
    const status = await broker.cancel(id);
    res.status(200).json(status);
  }

  return { submit, poll, cancel };
}

export type { MCPResponse };
export { sendError };
