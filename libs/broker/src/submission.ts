import { GatewayError, isGatewayError, toGatewayError, type Agent, type MCPRequest, type RequestState } from '@mcp-gateway/protocol';
import { isConnectionError } from './broker';
import type { ResultMessage } from './records';

/** One request entering the queue: POST /mcp/request's body, or an MCP tools/call. */
export interface Submission {
  /** The validated envelope. */
  request: MCPRequest;
  agent?: Agent;
  correlationId: string;
  /** The job's traceparent (the caller's span). */
  traceparent: string;
  /** How long to wait for the result: 0 = not at all, Infinity = until the deadline (plus grace). */
  waitMs: number;
  /** Called once the job exists (for progress reporting and cancellation); `created`: by this submission, not joined. */
  onAccepted?: (id: string, created: boolean) => void;
  /** A dead letter's replay: the failed request's id, kept in the new one's result. */
  replayOf?: string;
}

export type SubmissionOutcome =
  /** The result as stored: its JSON relayed as is, or parsed (`.result`) by a caller that needs it. */
  | { kind: 'ended'; ended: ResultMessage }
  | { kind: 'pending'; id: string; state: RequestState; timeoutMs: number; waitedToDeadline: boolean };

/** The one way a request enters the queue (the API builds it; its MCP server calls it). */
export type Submit = (s: Submission) => Promise<SubmissionOutcome>;

/**
 * Any error as the gateway answers it: Redis out of reach is UNAVAILABLE (503), not an internal error.
 * A GatewayError is already the answer, even when its message quotes a connection error (a backend's).
 */
export function answerError(err: unknown): GatewayError {
  if (isGatewayError(err)) return err;
  return isConnectionError(err)
    ? new GatewayError('UNAVAILABLE', 'The gateway cannot reach Redis; try again shortly', { retryAfterMs: 1000, cause: err })
    : toGatewayError(err);
}

/**
 * An error that came after the queue took request `id` (e.g. Redis away while its task was stored):
 * the request may still run, so the error says where its result will be, and that calling again
 * could run it twice.
 */
export function afterAccepted(err: unknown, id: string): GatewayError {
  const e = answerError(err);
  return new GatewayError(e.code, `${e.message}; the request ${id} was accepted and may still finish (GET /mcp/requests/${id})`, {
    retryable: false,
  });
}
