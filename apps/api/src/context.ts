import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

const HEADER_SAFE = /^[\x21-\x7e]{1,128}$/;

declare module 'express-serve-static-core' {
  interface Request {
    correlationId: string;
  }
}

/** Every response carries X-Correlation-ID: the caller's (when well-formed) or a new one. */
export function correlation(req: Request, res: Response, next: NextFunction): void {
  const given = req.get('x-correlation-id');
  req.correlationId = given && HEADER_SAFE.test(given) ? given : randomUUID();
  res.setHeader('X-Correlation-ID', req.correlationId);
  next();
}
