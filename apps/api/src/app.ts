import http from 'node:http';
import cors from 'cors';
import express, { type NextFunction, type Request, type Response } from 'express';
import { agentScope, GatewayError, withinToolset, type AgentScope } from '@mcp-gateway/protocol';
import { answerError } from '@mcp-gateway/broker';
import type { McpEndpoint } from '@mcp-gateway/mcp';
import type { GatewayConfig } from '@mcp-gateway/config';
import type { ApiDeps } from './deps';
import { adminAuth, adminHandlers } from './admin';
import { agentHandlers } from './agents';
import { answerHeaders } from './answer-headers';
import { agentAuth, protectedResourceMetadata } from './auth';
import { operatorConsole } from './console';
import { correlation } from './context';
import { sendError } from './http-errors';
import { apiReference } from './reference';
import { deadLetterHandlers, jsonOnly } from './dead-letters';
import { requestHandlers } from './requests';
import { serviceHandlers } from './services';

/** The HTTP app, without listening: main.ts (or a test) wires the dependencies and listens. */
export function createApp(deps: ApiDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  // Security headers and X-Correlation-ID on every answer, added as its head is written.
  answerHeaders(app);
  app.use(correlation);
  app.use(deps.lifecycle.middleware());
  app.use(answerCounter(deps));
  app.get('/metrics', (_req: Request, res: Response, next: NextFunction) => {
    deps.metrics
      .text()
      .then((text) => res.status(200).type(deps.metrics.contentType()).send(text))
      .catch(next);
  });
  // Before auth, so a browser's preflight (which carries no credentials) is answered.
  const allowOrigins = corsFor(deps.config.cors.origins);
  if (allowOrigins) app.use(allowOrigins);
  const json = express.json({ limit: deps.config.limits.maxBodyBytes, strict: true });
  const auth = agentAuth(deps.config);
  const requests = requestHandlers(deps);
  // The hot path first: POST /mcp/request passes only the layers it needs, not every admin route and
  // the console's router (each layer passed costs a path match).
  app.post('/mcp/request', ...(auth ? [auth] : []), json, requests.submit);

  // Registration endpoints: the admin token, not an agent credential.
  const admin = adminHandlers(deps);
  const requireAdmin = adminAuth(deps.config);
  app.post('/mcp/services', requireAdmin, json, admin.register);
  app.delete('/mcp/services/:name', requireAdmin, admin.deregister);
  app.put('/mcp/services/:name/heartbeat', requireAdmin, admin.heartbeat);
  app.post('/mcp/services/:name/refresh', requireAdmin, admin.refresh);
  // Agents' usage: the admin token, or (for its own) the agent; each route runs inbound auth itself.
  const agents = agentHandlers(deps, auth);
  app.get('/mcp/agents', requireAdmin, agents.list);
  app.get('/mcp/agents/:id/usage', agents.adminOrSelf, agents.usage);
  // Dead letters: failed requests kept for replay (the admin token).
  // HTTP Basic too: the console's dead-letters page calls these signed in as the console is.
  const dead = deadLetterHandlers(deps);
  const consoleAdmin = adminAuth(deps.config, { basic: true });
  app.get('/mcp/dead-letters', consoleAdmin, dead.list);
  app.delete('/mcp/dead-letters', consoleAdmin, dead.purge);
  app.post('/mcp/dead-letters/replay', consoleAdmin, jsonOnly, json, dead.replayMany);
  app.get('/mcp/dead-letters/:id', consoleAdmin, dead.read);
  app.delete('/mcp/dead-letters/:id', consoleAdmin, dead.remove);
  app.post('/mcp/dead-letters/:id/replay', consoleAdmin, jsonOnly, json, dead.replayOne);

  // Operators' console (admin token): queue UI and the live status page.
  app.use(operatorConsole(deps));

  const metadata = protectedResourceMetadata(deps.config);
  app.get(['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp'], (_req: Request, res: Response) => {
    res.status(200).json(metadata);
  });
  // The API described, and its reference page: open, as the health endpoint is.
  app.use(apiReference(deps.config));
  if (auth) app.use(auth);
  app.use(json);

  const services = serviceHandlers(deps);
  app.get('/mcp/requests/:id', requests.poll);
  app.delete('/mcp/requests/:id', requests.cancel);
  app.get('/mcp/health', services.health);
  mountProbes(app, deps);
  app.get('/mcp/services', services.list);
  app.get('/mcp/services/:name/definition', services.definition);
  app.get('/mcp/services/:name/metrics', services.metrics);
  // Built on the first /mcp request: a gateway used only through POST /mcp/request never loads the
  // MCP SDK. Nothing of it acts before then (its streams, tool cache and tasks start with a request).
  let mcp: McpEndpoint | undefined;
  const mcpServer = () => (mcp ??= (require('./mcp') as typeof import('./mcp')).mcpEndpoint(deps));
  app.all('/mcp', (req: Request, res: Response, next: NextFunction) => {
    mcpServer().handle(req, res, { agent: req.agent, correlationId: req.correlationId }).catch(next);
  });
  // A toolset's own MCP endpoint: the same server, its caller limited to the toolset's operations.
  const toolsets = toolsetScopes(deps.config.toolsets);
  app.all('/mcp/:toolset', (req: Request, res: Response, next: NextFunction) => {
    const toolset = toolsets.get(String(req.params.toolset));
    if (!toolset) return next();
    mcpServer()
      .handle(req, res, { agent: withinToolset(req.agent, toolset), correlationId: req.correlationId })
      .catch(next);
  });
  app.locals.closeStreams = () => mcp?.closeStreams();

  app.use((req: Request, res: Response) => {
    sendError(res, new GatewayError('NOT_FOUND', `No route for ${req.method} ${req.path}`));
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = fromBodyParser(err) ?? answerError(err);
    if (e.code === 'INTERNAL_ERROR')
      deps.logger.error({ err, path: req.path, correlationId: req.correlationId, traceparent: req.get('traceparent') }, 'unhandled error');
    // The answer says only "Redis"; the operator's log says what Redis said.
    if (e.code === 'UNAVAILABLE')
      deps.logger.warn({ why: String(e.cause ?? e.message), path: req.path, correlationId: req.correlationId }, 'answered 503 UNAVAILABLE');
    sendError(res, e);
  });
  return app;
}

/**
 * Counts each answer when it is sent; the route label is the template (`/mcp/requests/:id`), never the
 * URL. One listener for all answers (`this` is the response), not a closure held by every waiting one.
 */
function answerCounter(deps: ApiDeps) {
  function countAnswer(this: Response): void {
    const req = this.req;
    const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
    deps.metrics.httpRequests.inc({ route, method: req.method, status: String(this.statusCode) });
    const code = this.locals.errorCode as string | undefined;
    if (code) deps.metrics.rejections.inc({ code });
  }
  return (_req: Request, res: Response, next: NextFunction) => {
    res.on('finish', countAnswer);
    next();
  };
}

/** Each configured toolset's scope, by name. */
function toolsetScopes(toolsets: GatewayConfig['toolsets']): Map<string, AgentScope> {
  return new Map(Object.entries(toolsets).map(([name, grants]) => [name, agentScope(grants)]));
}

/** CORS for the configured browser origins, or none when no origin is allowed. */
function corsFor(origins: string[]) {
  if (origins.length === 0) return undefined;
  return cors({
    origin: origins.includes('*') ? '*' : origins,
    methods: ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
    allowedHeaders: [
      'Content-Type',
      'Authorization',
      'X-API-Key',
      'X-Correlation-ID',
      'Prefer',
      'traceparent',
      'Mcp-Session-Id',
      'Mcp-Protocol-Version',
    ],
    exposedHeaders: ['X-Correlation-ID', 'Location', 'Content-Location', 'Retry-After', 'Mcp-Session-Id'],
    maxAge: 600,
  });
}

/** Kubernetes: liveness = the process serves; readiness = it should get traffic (not stopping, Redis up). */
function mountProbes(app: express.Express, deps: ApiDeps): void {
  app.get('/mcp/health/live', (_req: Request, res: Response) => {
    res.status(200).json({ status: 'live' });
  });
  app.get('/mcp/health/ready', (_req: Request, res: Response, next: NextFunction) => {
    if (deps.lifecycle.stopping) return void res.status(503).json({ status: 'stopping' });
    deps.broker
      .ping()
      .then((up) => res.status(up ? 200 : 503).json({ status: up ? 'ready' : 'redis unreachable' }))
      .catch(next);
  });
}

/**
 * The options of the http.Server that serves `app`: its requests and responses are born with the
 * app's own prototypes (`app.request`, `app.response`), so express's per-request
 * `Object.setPrototypeOf` changes nothing and every request keeps one V8 shape (why and how much:
 * docs/research/memory-per-request.md).
 */
export function serverOptionsFor(app: express.Express): http.ServerOptions {
  const IncomingMessage = bornWith(http.IncomingMessage, app.request);
  const ServerResponse = bornWith(http.ServerResponse, app.response);
  return IncomingMessage && ServerResponse ? { IncomingMessage, ServerResponse } : {};
}

/**
 * A constructor that builds what `base` builds, with `proto` as the prototype and `base` as its parent
 * (as a subclass would). Undefined when `base` is a class (Node's own are then used).
 */
function bornWith<C extends new (...args: never[]) => object>(base: C, proto: object): C | undefined {
  if (Function.prototype.toString.call(base).startsWith('class')) return undefined;
  const init = base as unknown as (this: object, ...args: unknown[]) => void;
  function Born(this: object, ...args: unknown[]): void {
    init.apply(this, args);
  }
  Born.prototype = proto;
  Object.setPrototypeOf(Born, base);
  return Born as unknown as C;
}

/** body-parser's own errors in the gateway's terms. */
function fromBodyParser(err: unknown): GatewayError | undefined {
  const type = (err as { type?: unknown } | null)?.type;
  if (type === 'entity.too.large') {
    const limit = (err as { limit?: number }).limit;
    return new GatewayError('PAYLOAD_TOO_LARGE', `The request body exceeds the limit of ${limit} bytes`);
  }
  if (type === 'entity.parse.failed') {
    // Strict parsing takes objects and arrays only: `null` or `42` is JSON, but not a request.
    const raw = (err as { body?: unknown }).body;
    return new GatewayError(
      'VALIDATION_ERROR',
      typeof raw === 'string' && isJson(raw) ? 'The body must be a JSON object' : 'The body is not valid JSON',
    );
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new GatewayError('VALIDATION_ERROR', 'The body encoding is not supported; send UTF-8 JSON');
  }
  // A body its Content-Encoding does not describe (zlib's Z_DATA_ERROR and the like).
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new GatewayError('VALIDATION_ERROR', 'The body could not be decompressed as its Content-Encoding says');
  }
  // Any other 4xx of body-parser (an aborted or short body) is the request's fault, not a gateway bug.
  const status = (err as { status?: unknown } | null)?.status;
  if (typeof type === 'string' && typeof status === 'number' && status >= 400 && status < 500) {
    return new GatewayError('VALIDATION_ERROR', 'The request body could not be read');
  }
  return undefined;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
