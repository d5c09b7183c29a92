import type { Request, Response } from 'express';
import type { AuthInfo } from '@modelcontextprotocol/server';

/** The SDK's MCP handler: a fetch-style function of a Web Request. */
export interface FetchHandler {
  fetch(request: globalThis.Request, options?: { authInfo?: AuthInfo; parsedBody?: unknown }): Promise<globalThis.Response>;
}

/**
 * Serves an Express request with the SDK's fetch-style MCP handler: what the SDK's `toNodeHandler`
 * does, for less. The body Express already parsed goes as `parsedBody` (the SDK then never reads the
 * Web Request's body, so none is built: no re-serialized JSON, no body stream); a JSON answer is
 * written in one piece; a stream (SSE) is copied with backpressure until it ends or the client goes.
 * The client going away aborts the Web Request's signal, as with the SDK's adapter.
 */
export async function serveFetch(
  handler: FetchHandler,
  req: Request,
  res: Response,
  authInfo: AuthInfo,
  onError: (err: unknown) => void,
): Promise<void> {
  const abort = new AbortController();
  let finished = false;
  res.on('close', () => {
    if (!finished) abort.abort();
  });
  if (res.destroyed) abort.abort();
  let response: globalThis.Response;
  try {
    // From Node's parsed headers, as the SDK's adapter does (a repeated Content-Type stays one value).
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) headers.append(name, v);
      else headers.set(name, value);
    }
    const request = new globalThis.Request(`http://${req.headers.host ?? 'localhost'}${req.originalUrl}`, {
      method: req.method,
      headers,
      signal: abort.signal,
    });
    response = await handler.fetch(request, { authInfo, ...(req.body === undefined ? {} : { parsedBody: req.body as unknown }) });
  } catch (err) {
    // As the SDK's adapter answers a request it cannot convert or a handler that throws.
    onError(err);
    response = globalThis.Response.json(internalError(req.body), { status: 500 });
  }
  const out: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    out[name] = value;
  });
  if (!response.body) {
    finished = true;
    res.writeHead(response.status, out).end();
    return;
  }
  if ((response.headers.get('content-type') ?? '').startsWith('application/json')) {
    let body: Buffer;
    try {
      body = Buffer.from(await response.arrayBuffer());
    } catch (err) {
      onError(err);
      body = Buffer.from(JSON.stringify(internalError(req.body)));
    }
    // One piece, with its length (not chunked).
    out['content-length'] = String(body.length);
    finished = true;
    res.writeHead(response.status, out).end(body);
    return;
  }
  res.writeHead(response.status, out);
  const closed = new Promise<void>((resolve) => abort.signal.addEventListener('abort', () => resolve(), { once: true }));
  const reader = response.body.getReader();
  try {
    while (!abort.signal.aborted) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await Promise.race([new Promise<void>((resolve) => res.once('drain', () => resolve())), closed]);
    }
  } catch {
    // The stream failed or was cancelled: end the answer as it stands.
  }
  if (abort.signal.aborted) await reader.cancel().catch(() => undefined);
  finished = true;
  res.end();
}

/** The JSON-RPC internal error, echoing a single request's string or number id (else null). */
function internalError(body: unknown) {
  const id = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as { id?: unknown }).id : undefined;
  return {
    jsonrpc: '2.0',
    error: { code: -32603, message: 'Internal server error' },
    id: typeof id === 'string' || typeof id === 'number' ? id : null,
  };
}
