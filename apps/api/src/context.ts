import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

const HEADER_SAFE = /^[\x21-\x7e]{1,128}$/;

declare module 'express-serve-static-core' {
  interface Request {
    correlationId: string;
  }
}

/** The caller's X-Correlation-ID when it is well-formed (else it is not used). */
export function givenCorrelationId(req: Request): string | undefined {
  const given = req.get('x-correlation-id');
  return given && HEADER_SAFE.test(given) ? given : undefined;
}

/** Every request's correlation id: the caller's (when well-formed) or a new one; its answer carries it as X-Correlation-ID (answer-headers.ts). */
export function correlation(req: Request, _res: Response, next: NextFunction): void {
  req.correlationId = givenCorrelationId(req) ?? randomUUID();
  next();
}

/**
 * X-Correlation-ID set on arrival, for answers another express app writes (a mounted sub-app gives
 * the response its own prototype, without the writeHead that adds it): the queue UI's.
 */
export function correlationHeader(req: Request, res: Response, next: NextFunction): void {
  res.setHeader('X-Correlation-ID', req.correlationId);
  next();
}
