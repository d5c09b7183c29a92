import type { Response } from 'express';
import type { JSONRPCMessage, JSONRPCRequest, MessageExtraInfo, Transport, TransportSendOptions } from '@modelcontextprotocol/server';

/** While an answer is a stream, a comment this often keeps idle proxies from closing it. */
const KEEP_ALIVE_MS = 15_000;

/** Makes `res` an SSE stream: its headers now (not with the first event), then a comment every KEEP_ALIVE_MS until it is cleared. */
export function openEventStream(res: Response): NodeJS.Timeout {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write(': stream open\n\n');
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
  keepAlive.unref();
  return keepAlive;
}

/**
 * One 2025-era JSON-RPC request served by a per-request `Server` straight onto Express's response: the
 * SDK's Transport contract, without the Web Request/Response/ReadableStream round trip of its
 * stateless fallback (most of the MCP path's own CPU). The protocol (dispatch, validation, errors) is
 * still the SDK's `Server`; only the bytes are written here.
 *
 * The answer is JSON, unless the server sends a notification about the request first (progress), or
 * the answer is still pending after `streamAfterMs` (config `mcp.streamAfterMs`): then the response
 * becomes an SSE stream, kept alive by comments, with the notifications and the answer as its events.
 * A 2025 client accepts either (it sends `Accept: application/json, text/event-stream`).
 */
export class ExpressExchangeTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;
  /** Settles when the exchange has ended: answered, or closed before (the client went away). */
  readonly done: Promise<void>;
  private settle!: () => void;
  /** Until the answer: turns a long wait into a stream. */
  private streamTimer?: NodeJS.Timeout;
  /** Set once the answer became an SSE stream. */
  private keepAlive?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly res: Response,
    private readonly request: JSONRPCRequest,
    private readonly streamAfterMs: number,
  ) {
    this.done = new Promise((resolve) => (this.settle = resolve));
  }

  async start(): Promise<void> {}

  /** Hands the request to the connected server; the client going away (even before this) closes the exchange. */
  serve(extra: MessageExtraInfo): Promise<void> {
    this.res.on('close', () => void this.close());
    if (this.res.destroyed) {
      void this.close();
      return this.done;
    }
    this.streamTimer = setTimeout(() => this.stream(), this.streamAfterMs);
    this.streamTimer.unref();
    this.onmessage?.(this.request, extra);
    return this.done;
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (this.closed) return;
    const isAnswer = !('method' in message);
    const related = isAnswer ? (message as { id?: unknown }).id : options?.relatedRequestId;
    if (related !== this.request.id) return;
    const frame = () => `event: message\ndata: ${JSON.stringify(message)}\n\n`;
    if (!isAnswer) {
      this.stream();
      this.res.write(frame());
      return;
    }
    try {
      if (this.keepAlive) this.res.end(frame());
      else this.res.status(200).type('application/json').send(JSON.stringify(message));
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.streamTimer);
    clearInterval(this.keepAlive);
    this.settle();
    this.onclose?.();
  }

  /** Makes the answer an SSE stream (once). */
  private stream(): void {
    if (this.keepAlive || this.closed) return;
    clearTimeout(this.streamTimer);
    this.keepAlive = openEventStream(this.res);
  }
}
