import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';

/**
 * The built-in demo backend of `gateway:dev` (and of docker compose), so a new user sees a real
 * round trip at once. Operations: POST /echo, GET /items/{id}, GET /slow?ms=N, GET /health.
 */
export function createDemoBackendApp(): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '1mb' }));
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.post('/echo', (req, res) => {
    res.json({ echo: req.body ?? {}, correlationId: req.get('x-correlation-id') ?? null, receivedAt: new Date().toISOString() });
  });
  app.get('/items/:id', (req, res) => {
    const id = req.params.id;
    res.json({ id, name: `Item ${id}`, price: (id.length * 7.25).toFixed(2) });
  });
  app.get('/slow', (req, res) => {
    const ms = Math.min(Math.max(Number(req.query.ms ?? 1000) || 0, 0), 60_000);
    setTimeout(() => res.json({ waitedMs: ms }), ms);
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(DEMO_OPENAPI);
  });
  return app;
}

export async function startDemoBackend(
  port = 8090,
  host = '127.0.0.1',
): Promise<{ url: string; server: http.Server; close(): Promise<void> }> {
  const server = http.createServer(createDemoBackendApp());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const DEMO_OPENAPI = {
  openapi: '3.0.3',
  info: { title: 'MCP Gateway demo backend', version: '1.0.0' },
  paths: {
    '/echo': {
      post: {
        operationId: 'echo',
        summary: 'Returns the JSON body it was sent',
        requestBody: { content: { 'application/json': { schema: { type: 'object' } } } },
      },
    },
    '/items/{id}': {
      get: {
        operationId: 'getItem',
        summary: 'One item by id',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      },
    },
    '/slow': {
      get: {
        operationId: 'slow',
        summary: 'Answers after ms milliseconds',
        parameters: [{ name: 'ms', in: 'query', schema: { type: 'integer', minimum: 0, maximum: 60000 } }],
      },
    },
  },
};
