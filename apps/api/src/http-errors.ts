import type { Response } from 'express';
import { GatewayError, httpStatusFor, isGatewayError, toGatewayError, type ErrorBody } from '@mcp-gateway/protocol';
import { isConnectionError, type ResultMessage } from '@mcp-gateway/broker';

/**
 * Any error as the gateway answers it: Redis out of reach is UNAVAILABLE (503), not an internal error.
 * A GatewayError is already the answer, even when its message quotes a connection error (a backend's).
 */
export function apiError(err: unknown): GatewayError {
  if (isGatewayError(err)) return err;
  return isConnectionError(err)
    ? new GatewayError('UNAVAILABLE', 'The gateway cannot reach Redis; try again shortly', { retryAfterMs: 1000 })
    : toGatewayError(err);
}

/**
 * An error that came after the queue took request `id` (e.g. Redis away while its task was stored):
 * the request may still run, so the error says where its result will be, and that calling again
 * could run it twice.
 */
export function afterAccepted(err: unknown, id: string): GatewayError {
  const e = apiError(err);
  return new GatewayError(e.code, `${e.message}; the request ${id} was accepted and may still finish (GET /mcp/requests/${id})`, {
    retryable: false,
  });
}

/** The envelope of an error that is not a request's result (bad input, unknown id, Redis away). */
export interface ErrorEnvelope {
  id?: string;
  status: 'error';
  error: ErrorBody;
  metadata: { correlationId: string };
}

function setRetryAfter(res: Response, retryAfterMs: number | undefined): void {
  if (retryAfterMs !== undefined) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
}

export function sendError(res: Response, err: unknown, id?: string): void {
  const e = apiError(err);
  const body: ErrorEnvelope = {
    ...(id ? { id } : {}),
    status: 'error',
    error: e.toBody(),
    metadata: { correlationId: res.req.correlationId ?? '' },
  };
  setRetryAfter(res, e.retryAfterMs);
  res.locals.errorCode = e.code;
  res.status(e.status).json(body);
}

/**
 * A request's stored result: 200 for success, the error code's status otherwise. A success goes out
 * as the JSON the worker stored: the API neither parses nor re-serializes what the backend answered
 * (for a 17 KB answer that was about 0.2 ms of the API's CPU per request).
 */
export function sendResult(res: Response, stored: ResultMessage): void {
  if (stored.state === 'completed') {
    res.status(200).type('application/json').send(stored.json);
    return;
  }
  const result = stored.result;
  if (!result.error) {
    res.status(200).json(result);
    return;
  }
  setRetryAfter(res, result.error.retryAfterMs);
  res.locals.errorCode = result.error.code;
  res.status(httpStatusFor(result.error.code)).json(result);
}
