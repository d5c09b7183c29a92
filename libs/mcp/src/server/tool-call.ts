import { randomUUID } from 'node:crypto';
import type { ServerContext } from '@modelcontextprotocol/server';
import { GatewayError, isGatewayError, type MCPRequest } from '@mcp-gateway/protocol';
import { afterAccepted, answerError, type SubmissionOutcome } from '@mcp-gateway/broker';
import { parseTraceparent } from '@mcp-gateway/observability';
import { errorResult, type ToolResult } from '../results';
import type { CallCancellation, SessionCall } from './cancellation';
import { callRequest, type ToolCallInput } from './call-request';
import type { HttpCaller, McpHost } from './host';
import { checkedToolResult } from './output';
import { reportProgress } from './progress';

/** Whose call it is and how it came. */
export interface CallVia {
  /** Whose tasks these are (see scopeFrom). */
  scope: string;
  /** The 2025 session it came in, if any. */
  session: string | undefined;
  /** A 2026-07-28 request: cancelled by closing its response stream, that revision's one cancellation on HTTP. */
  modern: boolean;
}

export interface ToolCall extends Omit<ToolCallInput, 'meta' | 'agent'> {
  ctx: ServerContext;
  via: CallVia;
  /** The client takes 2026-07-28 tasks: a call still running after `taskAfterMs` is answered with one. */
  asTask: boolean;
}

/** Makes a running job a 2026-07-28 task and answers the call with it. */
type CreateTask = (scope: string, jobId: string) => Promise<Record<string, unknown>>;

/** What the HTTP request that carried a message brought (the SDK passes it as its AuthInfo's extra). */
function callerOf(ctx: ServerContext): HttpCaller {
  return (ctx.http?.authInfo?.extra ?? {}) as HttpCaller;
}

/**
 * One tools/call through the queue. Bad arguments, refusals and fast failures are tool results an
 * agent can act on; so is a call that is still running when this process stops waiting.
 */
export function toolCaller(host: McpHost, cancellation: CallCancellation, createTask: CreateTask) {
  return async function callTool(call: ToolCall): Promise<ToolResult | Record<string, unknown>> {
    const { agent, correlationId, traceparent } = callerOf(call.ctx);
    const meta = (call.ctx.mcpReq._meta ?? {}) as Record<string, unknown>;
    let request: MCPRequest | undefined;
    /** The job, once the queue holds it: from then on the call may still finish, whatever happens here. */
    let accepted: string | undefined;
    const stops: Array<() => void> = [];
    // The call continues the HTTP request's trace, and the backend gets the X-Correlation-ID it answered with.
    const span = host.tracing.startSpan(`tools/call ${call.target.service}`, {
      kind: 'server',
      parent: parseTraceparent(traceparent),
      attributes: { 'mcp.service': call.target.service },
    });
    try {
      request = await callRequest(host, Object.assign({}, call, { meta, agent }));
      span.setAttributes({ 'mcp.operation': request.operation });
      const outcome = await host.submit({
        request,
        agent,
        correlationId: correlationId ?? randomUUID(),
        traceparent: span.traceparent,
        waitMs: call.asTask ? host.settings.taskAfterMs : Infinity,
        onAccepted: (jobId, created) => {
          accepted = jobId;
          stops.push(...watch(host, cancellation, call, meta, jobId, created));
        },
      });
      if (outcome.kind === 'ended') return await checkedToolResult(host.registry, outcome.ended.result);
      if (call.asTask && !outcome.waitedToDeadline) return await createTask(call.via.scope, outcome.id);
      return stillRunning(outcome, request.id !== undefined);
    } catch (err) {
      const e = answerError(err);
      if (!isGatewayError(err) && e.code !== 'UNAVAILABLE') host.logger.error({ err, service: call.target.service }, 'tools/call failed');
      // The result says only "Redis"; the operator's log says what Redis said.
      if (e.code === 'UNAVAILABLE')
        host.logger.warn({ why: String(e.cause ?? e.message), service: call.target.service }, 'tools/call UNAVAILABLE');
      if (accepted) return errorResult(afterAccepted(e, accepted).toBody(), accepted);
      return errorResult(e.toBody(), request?.id);
    } finally {
      for (const stop of stops) stop();
      span.end();
    }
  };
}

/**
 * Once the job exists: where a 2025 session's cancellation will find it, a 2026-07-28 stream's close
 * cancelling it, and progress notifications when the client asked for them. Returns what stops them.
 */
function watch(
  host: McpHost,
  cancellation: CallCancellation,
  call: ToolCall,
  meta: Record<string, unknown>,
  jobId: string,
  created: boolean,
) {
  const { ctx, via } = call;
  const sessionCall: SessionCall | undefined = via.session === undefined ? undefined : { session: via.session, requestId: ctx.mcpReq.id };
  void cancellation.accepted(jobId, created, sessionCall);
  const stops: Array<() => void> = [];
  if (via.modern && created) stops.push(cancellation.cancelOnClose(jobId, ctx.mcpReq.signal, () => host.stopping()));
  const progressToken = meta.progressToken as string | number | undefined;
  if (progressToken !== undefined) {
    const notify = (n: { method: 'notifications/progress'; params: Record<string, unknown> }) => ctx.mcpReq.notify(n as never);
    stops.push(reportProgress(host.redis, host.broker, { jobId, service: call.target.service, progressToken, notify }));
  }
  return stops;
}

/**
 * The answer to a call whose job is still running when this process stops waiting. Calling again is
 * safe when the call has an id: an idempotency key joins this job, and a read-only call may run twice.
 * Otherwise it would be a second job: a write done twice.
 */
function stillRunning(outcome: Extract<SubmissionOutcome, { kind: 'pending' }>, joins: boolean): ToolResult {
  const again = joins ? '' : '; calling again would run it a second time: ask for its result instead';
  const stillRuns = `the request ${outcome.id} may still finish (GET /mcp/requests/${outcome.id})${again}`;
  // Not at its deadline: this process stopped waiting because it is shutting down.
  const error = outcome.waitedToDeadline
    ? new GatewayError('TIMEOUT', `No result within the deadline of ${outcome.timeoutMs} ms; ${stillRuns}`, { retryable: joins })
    : new GatewayError('UNAVAILABLE', `This gateway process is shutting down and stopped waiting for the result; ${stillRuns}`, {
        retryable: joins,
      });
  return errorResult(error.toBody(), outcome.id);
}
