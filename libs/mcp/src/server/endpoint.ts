import type { Request, Response } from 'express';
import {
  classifyInboundRequest,
  createMcpHandler,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  parseJSONRPCMessage,
  validateHostHeader,
  validateOriginHeader,
  type AuthInfo,
  type JSONRPCRequest,
} from '@modelcontextprotocol/server';
import { ToolCatalog } from './catalog';
import { callCancellation } from './cancellation';
import { ExpressExchangeTransport } from './exchange';
import { serveFetch } from './fetch';
import type { HttpCaller, McpHost, McpSettings } from './host';
import { buildServer, INSTRUCTIONS, LEGACY_CAPABILITIES, scopeFrom, SERVER_INFO, type ServerParts } from './server';
import { legacySessions, NotificationStreams } from './sessions';
import { TaskStore } from './task-store';
import { LegacyTasks } from './tasks-legacy';
import { ModernTasks } from './tasks-modern';
import { toolCaller } from './tool-call';

/** The SDK's localhost allowlists, made once. */
const LOCAL_HOSTS = localhostAllowedHostnames();
const LOCAL_ORIGINS = localhostAllowedOrigins();

/** The 2025-era revisions the handshake accepts, newest first. */
const LEGACY_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'];

const jsonRpcError = (res: Response, status: number, code: number, message: string) =>
  void res.status(status).json({ jsonrpc: '2.0', error: { code, message }, id: null });

export interface McpEndpoint {
  /** Serves one HTTP request to `/mcp`; `caller`: what inbound auth and the correlation middleware found. */
  handle(req: Request, res: Response, caller: HttpCaller): Promise<void>;
  /** Ends every open GET stream (the server is stopping). */
  closeStreams(): void;
}

/**
 * `/mcp`: a Model Context Protocol server over Streamable HTTP, both eras on one endpoint (the SDK's
 * `createMcpHandler`: 2026-07-28 per request, 2025 revisions through its stateless fallback). Every
 * operation the caller may use is a tool; `tools/call` goes through the same submission path as
 * POST /mcp/request. What must hold across API replicas lives in Redis: legacy sessions (so any
 * replica serves any session), a session's call ↔ job map (so a cancellation reaches the job wherever
 * it arrives), tasks and the re-attach window.
 */
export function createMcpEndpoint(host: McpHost): McpEndpoint {
  const { redis, settings } = host;
  const sessions = legacySessions(redis, settings.keyPrefix);
  const streams = new NotificationStreams();
  const origins = allowedOrigins(settings.allowedOrigins);
  const catalog = new ToolCatalog(host.registry);
  const cancellation = callCancellation(redis, settings.keyPrefix, host.broker);
  const store = new TaskStore(redis, settings.keyPrefix, host.broker, host.registry);
  const modernTasks = new ModernTasks(store, cancellation, settings.resultTtlMs);
  const legacyTasks = new LegacyTasks(host, store, catalog, cancellation);
  const parts: ServerParts = {
    catalog,
    modernTasks,
    callTool: toolCaller(host, cancellation, (scope, id) => modernTasks.created(scope, id)),
  };
  const sdk = createMcpHandler(
    ({ era, authInfo, requestInfo }) =>
      buildServer(
        parts,
        requestInfo?.headers.get('mcp-session-id') ?? undefined,
        (authInfo?.extra as HttpCaller | undefined)?.agent,
        era === 'modern',
      ),
    { onerror: (err: unknown) => host.logger.warn({ err: String(err) }, 'mcp protocol error') },
  );
  // A registration or a refreshed definition changes the tools: clients hear of it on their streams
  // (2025 sessions on their GET streams, 2026-07-28 clients on their subscriptions/listen streams).
  const toolsChanged = () => {
    catalog.clear();
    streams.notify('notifications/tools/list_changed');
    sdk.notify.toolsChanged();
  };
  host.registry.on('change', toolsChanged);
  host.registry.on('definition', toolsChanged);

  async function handle(req: Request, res: Response, caller: HttpCaller): Promise<void> {
    const refused = refusedHostOrOrigin(req, settings, origins);
    if (refused) return jsonRpcError(res, 403, -32000, refused);
    const agentId = caller.agent?.id ?? '';
    const session = req.get('mcp-session-id');
    if (req.method === 'POST' && (req.body as { method?: string } | undefined)?.method === 'initialize') {
      res.setHeader('Mcp-Session-Id', await sessions.open(agentId));
      return initialize(req, res);
    }
    if (session) {
      if (!(await sessions.resume(session, agentId))) return jsonRpcError(res, 404, -32001, 'Session not found');
      if (req.method === 'DELETE') return void (await sessions.end(session), res.status(200).end());
      if (req.method === 'GET') return streams.add(res);
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      const message = req.method === 'GET' ? 'A GET stream needs an Mcp-Session-Id' : 'Method not allowed';
      return jsonRpcError(res, session ? 405 : 400, -32000, message);
    }
    await cancelIfAsked(req, session);
    if (await legacyTasks.handle(req, res, caller, scopeFrom(session, caller.agent))) return;
    const http: HttpCaller = Object.assign({}, caller, { traceparent: req.get('traceparent') });
    const authInfo: AuthInfo = { token: '', clientId: agentId || 'anonymous', scopes: [], extra: http as Record<string, unknown> };
    const direct = directRequest(req);
    if (direct) return serveDirectly(res, direct, session, authInfo);
    await serveFetch(sdk, req, res, authInfo, (err) => host.logger.warn({ err: String(err) }, 'mcp request could not be served'));
  }

  /** A 2025 session's notifications/cancelled; without a session the sender cannot be told apart (see callCancellation). */
  async function cancelIfAsked(req: Request, session: string | undefined): Promise<void> {
    const body = req.body as { method?: string; params?: { requestId?: string | number } } | undefined;
    if (body?.method !== 'notifications/cancelled' || body.params?.requestId === undefined || session === undefined) return;
    await cancellation.notified({ session, requestId: body.params.requestId });
  }

  async function serveDirectly(res: Response, message: JSONRPCRequest, session: string | undefined, authInfo: AuthInfo): Promise<void> {
    const server = buildServer(parts, session, (authInfo.extra as HttpCaller).agent, false);
    const exchange = new ExpressExchangeTransport(res, message, settings.streamAfterMs);
    await server.connect(exchange);
    try {
      await exchange.serve({ authInfo });
    } finally {
      await server.close().catch(() => undefined);
    }
  }

  return { handle, closeStreams: () => streams.closeAll() };
}

/**
 * Why a request's `Host` or `Origin` is refused, or undefined (DNS rebinding, and pages of other sites,
 * whatever address the gateway listens on). A browser's `Origin` must be one of the allowed origins
 * (or a loopback one, on a loopback listener without auth); a request without one (not from a
 * browser) passes. `Host` must name an allowed host when any are set, and a loopback one on a
 * loopback listener without auth. Host names are checked by the SDK's validator.
 */
function refusedHostOrOrigin(req: Request, settings: McpSettings, origins: AllowedOrigins): string | undefined {
  const host = req.get('host');
  if (settings.allowedHosts.length > 0 && !validateHostHeader(host, settings.allowedHosts).ok)
    return `Host ${host ?? '(none)'} is not one this endpoint answers to (MCP_ALLOWED_HOSTS)`;
  if (settings.loopbackOnly && !validateHostHeader(host, LOCAL_HOSTS).ok) return `Host ${host ?? '(none)'} is not a loopback host`;
  const origin = req.get('origin');
  if (!origin || originAllowed(origin, settings, origins)) return undefined;
  return `Origin ${origin} is not allowed to call this endpoint (MCP_CORS_ORIGINS)`;
}

/** The allowed origins as a browser sends them (scheme, host and port), or any. */
type AllowedOrigins = { any: true } | { any: false; origins: Set<string> };

function allowedOrigins(configured: string[]): AllowedOrigins {
  if (configured.includes('*')) return { any: true };
  return { any: false, origins: new Set(configured.map(originOf).filter((o): o is string => o !== undefined)) };
}

/**
 * An origin as scheme, host and port. Not URL's `origin`: that is "null" for every scheme but
 * http(s), so one allowed extension origin would allow them all.
 */
function originOf(text: string): string | undefined {
  if (!URL.canParse(text)) return undefined;
  const u = new URL(text);
  return u.host === '' ? undefined : `${u.protocol}//${u.host}`;
}

function originAllowed(origin: string, settings: McpSettings, allowed: AllowedOrigins): boolean {
  if (allowed.any) return true;
  if (settings.loopbackOnly && validateOriginHeader(origin, LOCAL_ORIGINS).ok) return true;
  const asked = originOf(origin);
  return asked !== undefined && allowed.origins.has(asked);
}

/**
 * A 2025-era session's handshake, answered here: every later request is served statelessly by the
 * SDK, so the handshake holds no state, and only here can the tasks capability be announced. The
 * session's id (set by the caller) is the gateway's own, kept in Redis so any replica serves it.
 */
function initialize(req: Request, res: Response): void {
  const msg = req.body as { id?: string | number; params?: { protocolVersion?: string } };
  const asked = msg.params?.protocolVersion;
  const protocolVersion = asked && LEGACY_VERSIONS.includes(asked) ? asked : LEGACY_VERSIONS[0]!;
  res.status(200).json({
    jsonrpc: '2.0',
    id: msg.id ?? null,
    result: { protocolVersion, capabilities: LEGACY_CAPABILITIES, serverInfo: SERVER_INFO, instructions: INSTRUCTIONS },
  });
}

/**
 * The common 2025-era exchange, a single JSON-RPC request with a known protocol version that the
 * SDK's own classifier routes to its 2025 serving, is served by a per-request Server on an
 * Express-native transport (see ExpressExchangeTransport); anything else (batches, notifications,
 * other versions, a revision claimed in the body, malformed messages, headers the SDK refuses) is
 * the SDK handler's to serve or refuse.
 */
function directRequest(req: Request): JSONRPCRequest | undefined {
  const version = req.get('mcp-protocol-version');
  const accept = req.get('accept') ?? '';
  if (!version || !LEGACY_VERSIONS.includes(version) || !accept.includes('application/json') || !accept.includes('text/event-stream'))
    return undefined;
  if (!req.is('application/json')) return undefined;
  const body = req.body as { id?: unknown; method?: unknown } | undefined;
  if (typeof body !== 'object' || body === null || Array.isArray(body) || body.id === undefined || typeof body.method !== 'string')
    return undefined;
  const route = classifyInboundRequest({
    httpMethod: 'POST',
    protocolVersionHeader: version,
    mcpMethodHeader: req.get('mcp-method'),
    mcpNameHeader: req.get('mcp-name'),
    body,
  });
  if (route.kind !== 'legacy' || route.reason !== 'no-claim') return undefined;
  try {
    return parseJSONRPCMessage(body) as JSONRPCRequest;
  } catch {
    return undefined;
  }
}
