import type { Dispatcher } from 'undici';
import { isJsonMedia, isTextMedia } from './openapi/media';
import type { BackendOutcome, CallAbandon } from './caller';

/** Connection errors that happen before any byte of the request could reach the backend. */
export const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** What the caller reports when a connection error carries no code of its own. */
const UNKNOWN_NETWORK_ERROR = 'ERR_NETWORK';
/** undici's own timeouts (ours is the deadline's timer, which comes first in practice). */
const UNDICI_TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** One HTTP request to a backend, as undici's pool takes it. */
export interface ExchangeRequest {
  method: string;
  origin: string;
  path: string;
  body: string | Uint8Array | undefined;
  headers: Record<string, string>;
}

/**
 * Sends one request and reads its whole answer, ending it at `deadline` or when `abandon` says so.
 * Through undici's dispatch with a handler of ours rather than its `request()`: no response stream
 * and no abort signal per call, which were the largest part of the worker's CPU beyond the bare
 * design's (docs/research/bench-costs.md, session 21). Never rejects.
 */
export function exchange(
  pool: Dispatcher,
  request: ExchangeRequest,
  deadline: number,
  abandon: CallAbandon | undefined,
): Promise<BackendOutcome> {
  if (abandon?.abandoned) return Promise.resolve({ kind: 'aborted', durationMs: 0 });
  return new Promise((resolve) => {
    const handler = new Exchange(resolve, deadline, abandon);
    pool.dispatch(
      {
        origin: request.origin,
        path: request.path,
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers,
        body: request.body ?? null,
      },
      handler,
    );
  });
}

/** Why an exchange was ended from our side. */
type Stop = 'timeout' | 'aborted';

/** The handler of one exchange: gathers the answer, and settles once, whichever comes first. */
class Exchange implements Dispatcher.DispatchHandler {
  private readonly started = Date.now();
  private controller?: Dispatcher.DispatchController;
  private status = 0;
  private headers: Record<string, string | string[] | undefined> = {};
  private readonly chunks: Buffer[] = [];
  private settled = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly resolve: (outcome: BackendOutcome) => void,
    deadline: number,
    private readonly abandon: CallAbandon | undefined,
  ) {
    this.timer = setTimeout(stopAtDeadline, Math.max(1, deadline - this.started), this);
    abandon?.onAbandon(() => this.stop('aborted'));
  }

  /** Ends the exchange now: a request still queued for a connection is not sent when its turn comes. */
  stop(kind: Stop): void {
    if (this.settled) return;
    this.settle({ kind, durationMs: Date.now() - this.started });
    this.controller?.abort(new Error(kind));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.settled) controller.abort(new Error('ended before it was sent'));
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    // 1xx answers are informational: the final one follows.
    if (statusCode < 200) return;
    this.status = statusCode;
    this.headers = headers;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.settled) return;
    const headers = joined(this.headers);
    const bytes = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const contentType = headers['content-type'];
    const answer = readsAsText(contentType) ? parseBody(bytes.toString('utf8')) : binaryBody(bytes, contentType!);
    this.settle({
      kind: 'response',
      status: this.status,
      headers,
      data: answer.data,
      json: answer.json,
      durationMs: Date.now() - this.started,
    });
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.settled) return;
    const durationMs = Date.now() - this.started;
    const code = networkCode(err);
    if (code === 'ETIMEDOUT' || UNDICI_TIMEOUTS.has(code)) this.settle({ kind: 'timeout', durationMs });
    else if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') this.settle({ kind: 'network', code: 'RESPONSE_TOO_LARGE', durationMs });
    else this.settle({ kind: 'network', code, durationMs });
  }

  private settle(outcome: BackendOutcome): void {
    this.settled = true;
    clearTimeout(this.timer);
    this.abandon?.onAbandon(undefined);
    this.resolve(outcome);
  }
}

function stopAtDeadline(exchange: Exchange): void {
  exchange.stop('timeout');
}

/** Repeated headers joined; the names are lower-cased already (undici's parseHeaders). */
function joined(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in headers) {
    const v = headers[k];
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/**
 * The most telling code of a connection error: the socket's errno (ECONNREFUSED, …) before undici's
 * wrapper; a connection the backend closed before its answer is ECONNRESET, as callers know it.
 */
function networkCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  const cause = e?.cause?.code;
  if (typeof cause === 'string' && /^E[A-Z]+$/.test(cause)) return cause;
  if (e?.code === 'UND_ERR_SOCKET') return 'ECONNRESET';
  return typeof e?.code === 'string' ? e.code : UNKNOWN_NETWORK_ERROR;
}

/** A body as axios read it: JSON when it parses (then its text too), the text when it does not, nothing when empty. */
function parseBody(text: string): { data: unknown; json?: string } {
  if (text === '') return { data: undefined };
  try {
    return { data: JSON.parse(text) as unknown, json: text };
  } catch {
    return { data: text };
  }
}

/** An answer read as text (and JSON when it parses): no Content-Type, JSON, text/*, XML and the like. */
function readsAsText(contentType: string | undefined): boolean {
  if (!contentType) return true;
  const type = contentType.split(';')[0]!.trim();
  return type === '' || isJsonMedia(type) || isTextMedia(type);
}

/** Bytes (an image, a PDF, …) as data a result and an MCP client can carry: base64 with its media type. */
function binaryBody(bytes: Buffer, contentType: string): { data: unknown; json?: string } {
  if (bytes.length === 0) return { data: undefined };
  return { data: { mediaType: contentType.split(';')[0]!.trim(), base64: bytes.toString('base64') } };
}
