import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path as received, query string excluded, still URL-encoded. */
  path: string;
  query: Record<string, string | string[]>;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  rawBody: string;
  receivedAt: number;
  /** When the caller closed the connection before the answer was sent (it gave up on the call). */
  abandonedAt?: number;
}

export interface BackendReply {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Destroy the socket instead of answering. */
  destroy?: boolean;
}

export type BackendHandler = (req: RecordedRequest) => BackendReply | Promise<BackendReply>;

export interface TestBackend {
  url: string;
  port: number;
  requests: RecordedRequest[];
  setHandler(handler: BackendHandler): void;
  close(): Promise<void>;
}

const echo: BackendHandler = (req) => ({ status: 200, body: { method: req.method, path: req.path, query: req.query, body: req.body } });

/** A real HTTP backend on 127.0.0.1 that records every request and answers as the test says. */
export async function startBackend(handler: BackendHandler = echo): Promise<TestBackend> {
  let current = handler;
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let body: unknown = undefined;
      if (rawBody) {
        try {
          body = JSON.parse(rawBody);
        } catch {
          body = rawBody;
        }
      }
      const u = new URL(req.url ?? '/', 'http://backend.test');
      const query: Record<string, string | string[]> = {};
      for (const key of new Set(u.searchParams.keys())) {
        const all = u.searchParams.getAll(key);
        query[key] = all.length === 1 ? all[0]! : all;
      }
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        path: (req.url ?? '/').split('?')[0]!,
        query,
        headers: req.headers,
        body,
        rawBody,
        receivedAt: Date.now(),
      };
      requests.push(recorded);
      res.on('close', () => {
        if (!res.writableEnded) recorded.abandonedAt = Date.now();
      });
      Promise.resolve(current(recorded))
        .then(async (reply) => {
          if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
          if (reply.destroy) {
            req.socket.destroy();
            return;
          }
          const bytes = Buffer.isBuffer(reply.body);
          const isJson = typeof reply.body !== 'string' && !bytes;
          const payload = reply.body === undefined ? '' : isJson ? JSON.stringify(reply.body) : (reply.body as string | Buffer);
          res.writeHead(reply.status ?? 200, {
            ...(payload.length > 0
              ? { 'content-type': bytes ? 'application/octet-stream' : isJson ? 'application/json' : 'text/plain' }
              : {}),
            ...(reply.headers ?? {}),
          });
          res.end(payload);
        })
        .catch((err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(err));
        });
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setHandler: (h) => {
      current = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
