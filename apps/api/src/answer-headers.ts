import type http from 'node:http';
import type express from 'express';
import helmet from 'helmet';

/**
 * The headers every answer carries: helmet's security headers (a JSON API: nothing may frame or sniff
 * it) and X-Correlation-ID (`req.correlationId`). They are added when the answer's head is written,
 * not when the request arrives, so a held sync caller does not carry them for its whole wait. A
 * header the route set itself (the console's own Content-Security-Policy) is kept.
 */
export function answerHeaders(app: express.Express): void {
  const security = helmetHeaders();
  const response = app.response as http.ServerResponse;
  // Every way out writes its head through writeHead (end() and write() without it call it too).
  const writeHead = response.writeHead;
  response.writeHead = function writeHeadWithAnswerHeaders(this: http.ServerResponse, ...args: unknown[]) {
    for (const [name, value] of security) if (!this.hasHeader(name)) this.setHeader(name, value);
    const correlationId = (this.req as express.Request | undefined)?.correlationId;
    if (correlationId && !this.hasHeader('x-correlation-id')) this.setHeader('X-Correlation-ID', correlationId);
    return (writeHead as (...a: unknown[]) => http.ServerResponse).apply(this, args);
  } as typeof writeHead;
}

/** helmet's headers with its defaults: the same for every answer, so asked for once (a bad option fails here, at start). */
function helmetHeaders(): [string, string][] {
  const headers = new Map<string, string>();
  const recorder = {
    setHeader: (name: string, value: string) => headers.set(name, value),
    removeHeader: (name: string) => headers.delete(name),
  };
  let done: unknown = 'not called';
  helmet()({} as http.IncomingMessage, recorder as unknown as http.ServerResponse, (err?: unknown) => (done = err));
  if (done !== undefined) throw new Error(`helmet's headers could not be computed once: ${String(done)}`);
  return [...headers];
}
