import type { Request, Response } from 'express';
import {
  describeIssues,
  GatewayError,
  isEnded,
  MCPRequestSchema,
  REQUEST_ID_PATTERN,
  type MCPResponse,
  type RequestStatus,
} from '@mcp-gateway/protocol';
import { parseTraceparent } from '@mcp-gateway/observability';
import type { ResultMessage } from '@mcp-gateway/broker';
import { createSubmitter } from './submission';
import type { ApiDeps } from './deps';
import { sendError, sendResult } from './http-errors';
import { givenCorrelationId } from './context';
import { parseWaitPreference } from './prefer';

/** The longest a poll waits for its request to end (`Prefer: wait=N` on GET). */
const MAX_POLL_WAIT_MS = 60_000;

/** A request's result, with where it can be read again (Location too when it is a TIMEOUT: poll there). */
function answer(res: Response, ended: ResultMessage): void {
  const at = `/mcp/requests/${encodeURIComponent(ended.id)}`;
  res.setHeader('Content-Location', at);
  if (ended.state !== 'completed' && ended.result.error?.code === 'TIMEOUT') res.setHeader('Location', at);
  sendResult(res, ended);
}

function accepted(res: Response, id: string, state: string): void {
  res
    .status(202)
    .setHeader('Location', `/mcp/requests/${encodeURIComponent(id)}`)
    .json({ id, state });
}

/**
 * The request's span (tracing on) is the parent of everything the job does; its context is the job's
 * traceparent. Tracing off, the traceparent is a new span id under the caller's, and no listener
 * (and closure) is held per waiting caller.
 */
function requestSpan(deps: ApiDeps, req: Request, res: Response) {
  const span = deps.tracing.startSpan('POST /mcp/request', { kind: 'server', parent: parseTraceparent(req.get('traceparent')) });
  if (deps.tracing.enabled) {
    res.on('finish', () => {
      span.setAttributes({ 'http.response.status_code': res.statusCode, 'mcp.correlation_id': req.correlationId });
      span.end(res.statusCode >= 500 ? { error: `HTTP ${res.statusCode}` } : {});
    });
  }
  return span;
}

export function requestHandlers(deps: ApiDeps) {
  const { broker } = deps;
  const submitRequest = createSubmitter(deps);

  /** POST /mcp/request: validate, enqueue (idempotently), then answer sync, async or after Prefer: wait. */
  async function submit(req: Request, res: Response): Promise<void> {
    const span = requestSpan(deps, req, res);
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
    // The answer's X-Correlation-ID is req.correlationId (answer-headers.ts).
    // The body's correlation id, when no usable header gave one (a malformed header is not used).
    if (!givenCorrelationId(req) && meta.correlationId) req.correlationId = meta.correlationId;
    span.setAttributes({ 'mcp.service': body.service, 'mcp.operation': body.operation });
    const pref = parseWaitPreference(req);
    const outcome = await submitRequest({
      request: body,
      agent: req.agent,
      correlationId: req.correlationId,
      traceparent: span.traceparent,
      waitMs: pref.async ? 0 : (pref.waitMs ?? Infinity),
    });
    if (outcome.kind === 'ended') return answer(res, outcome.ended);
    if (!outcome.waitedToDeadline) return accepted(res, outcome.id, outcome.state);
    res.setHeader('Location', `/mcp/requests/${encodeURIComponent(outcome.id)}`);
    return sendError(res, new GatewayError('TIMEOUT', `No result within the request's deadline of ${outcome.timeoutMs} ms`), outcome.id);
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
    if (rec && rec.agentId !== req.agent.id)
      throw new GatewayError('NOT_FOUND', `No request with id ${id} (unknown, or its result expired)`);
  }

  /**
   * GET /mcp/requests/:id. With `Prefer: wait=N` a request that has not ended is waited for, at most N
   * seconds (up to MAX_POLL_WAIT_MS): one long poll instead of many short ones. Either way the answer
   * is the request's status as it then is.
   */
  async function poll(req: Request, res: Response): Promise<void> {
    const id = requireId(req);
    await requireVisible(req, id);
    const waitMs = Math.min(parseWaitPreference(req).waitMs ?? 0, MAX_POLL_WAIT_MS);
    // Registered before the read: a result stored between the two still ends the wait.
    const w = waitMs > 0 ? deps.waiter.register(id) : undefined;
    let status: RequestStatus | undefined;
    try {
      status = await broker.status(id);
    } catch (err) {
      w?.cancel();
      throw err;
    }
    if (!status) {
      w?.cancel();
      throw new GatewayError('NOT_FOUND', `No request with id ${id} (unknown, or its result expired)`);
    }
    if (w && !isEnded(status.state)) {
      // A caller that goes away (before this too), or an API process that stops, ends the wait early.
      res.on('close', () => w.cancel());
      if (res.destroyed) return w.cancel();
      const ended = await deps.lifecycle.wait(w, waitMs);
      if (res.destroyed) return;
      status = ended
        ? Object.assign({}, ended.result, { id, state: ended.state })
        : ((await broker.status(id).catch(() => undefined)) ?? status);
    } else {
      w?.cancel();
    }
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
