import type { Response } from 'express';
import { httpStatusFor, type ErrorBody } from '@mcp-gateway/protocol';
import { answerError, type ResultMessage } from '@mcp-gateway/broker';

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
  const e = answerError(err);
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
 * as the JSON the worker stored: the API neither parses nor re-serializes what the backend answered.
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
