import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import {
  classifyInboundRequest,
  createMcpHandler,
  parseJSONRPCMessage,
  ProtocolError,
  ProtocolErrorCode,
  Server,
  type AuthInfo,
  type JSONRPCRequest,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { GatewayError, isEnded, isGatewayError, REQUEST_ID_PATTERN, type MCPRequest } from '@mcp-gateway/protocol';
import { errorResult, toolsFor, type ToolResult, type ToolTarget } from '@mcp-gateway/mcp';
import { requestHash } from '@mcp-gateway/broker';
import { parseTraceparent } from '@mcp-gateway/observability';
import { agentMayUse, authEnabled, type Agent } from './auth';
import type { ApiDeps } from './deps';
import { mcpTasks, TASKS_EXTENSION } from './mcp-tasks';
import { afterAccepted, apiError } from './http-errors';
import { callCancellation, type SessionCall } from './mcp-cancel';
import { ExpressExchangeTransport } from './mcp-exchange';
import { serveFetch } from './mcp-fetch';
import { checkedToolResult } from './mcp-output';
import { createSubmitter } from './submission';

/** Passed with each HTTP request to the SDK (as its AuthInfo's extra), for the handlers of its messages. */
interface HttpExtra {
  agent?: Agent;
  correlationId?: string;
  traceparent?: string;
}

const SERVER_INFO = { name: 'mcp-gateway', version: '0.1.0' };
const INSTRUCTIONS =
  'Each tool calls one operation of a backend service through the gateway queue (rate limits, circuit breakers and retries apply).';
const CAPABILITIES = { tools: { listChanged: true }, logging: {}, tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } } };
/** The 2025-era revisions the handshake accepts, newest first. */
const LEGACY_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'];
/** A legacy session lives this long after its last use. */
const SESSION_TTL_S = 3600;
/** A read-only call re-issued within this window (same caller, tool, arguments) joins the first one. */
const REATTACH_WINDOW_MS = 30_000;
/** How long a computed tool list is reused when no registration changed. */
const TOOLS_TTL_MS = 5_000;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

interface SessionRecord {
  agentId: string;
  createdAt: string;
}

const jsonRpcError = (res: Response, status: number, code: number, message: string) =>
  res.status(status).json({ jsonrpc: '2.0', error: { code, message }, id: null });

/**
 * `/mcp`: a Model Context Protocol server over Streamable HTTP, both eras on one endpoint (the SDK's
 * `createMcpHandler`: 2026-07-28 per request, 2025 revisions through its stateless fallback). Every
 * operation the caller may use is a tool; `tools/call` goes through the same submission path as
 * POST /mcp/request. What must hold across API replicas lives in Redis: legacy sessions (so any
 * replica serves any session), a session's call ↔ job map (so a cancellation reaches the job wherever
 * it arrives) and the re-attach window.
 */
export function mcpEndpoint(deps: ApiDeps) {
  const { registry, config, broker, logger } = deps;
  const redis = deps.redis;
  const submit = createSubmitter(deps);
  const prefix = `${config.redis.keyPrefix}:mcp`;
  const sessionKey = (id: string) => `${prefix}:session:${id}`;
  const cancellation = callCancellation(redis, prefix, broker);
  const streams = new Set<Response>();
  const tasks = mcpTasks({
    deps,
    redis,
    prefix,
    submit,
    listTools: (agent) => listTools(agent),
    scopeOf: (req) => scopeOf(req),
    cancellation,
    callRequest,
  });

  /**
   * The tools of a set of services, reused by every tools/list and tools/call of callers with the same
   * services: dropped when a registration changes, and after TOOLS_TTL_MS (a definition that failed to
   * load comes back on its own).
   */
  const toolCache = new Map<string, { at: number; tools: ReturnType<typeof buildTools> }>();
  /** A registration or a refreshed definition changes the tools: clients hear of it on their streams. */
  const toolsChanged = () => {
    toolCache.clear();
    const note = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    for (const res of streams) res.write(`event: message\ndata: ${note}\n\n`);
    // 2026-07-28 clients hear of it on their subscriptions/listen streams (held by this process).
    mcpHandler.notify.toolsChanged();
  };
  registry.on('change', toolsChanged);
  registry.on('definition', toolsChanged);

  function listTools(agent: Agent | undefined): ReturnType<typeof buildTools> {
    const key = agent?.services ? [...agent.services].sort().join(',') : '*';
    const hit = toolCache.get(key);
    if (hit && Date.now() - hit.at < TOOLS_TTL_MS) return hit.tools;
    const tools = buildTools(agent);
    toolCache.set(key, { at: Date.now(), tools });
    tools.catch(() => toolCache.delete(key));
    return tools;
  }

  async function buildTools(agent: Agent | undefined) {
    const defs = await Promise.all(
      registry
        .names()
        .filter((name) => agentMayUse(agent, name))
        .map(async (name) => {
          const definition = await registry.definition(name).catch(() => undefined);
          return definition ? { definition, description: registry.get(name)?.description } : undefined;
        }),
    );
    return toolsFor(defs.filter((d): d is NonNullable<typeof d> => d !== undefined));
  }

  /** What the HTTP request that carried a message brought: its agent, correlation id and trace. */
  function httpOf(ctx: ServerContext): HttpExtra {
    return (ctx.http?.authInfo?.extra ?? {}) as HttpExtra;
  }

  /**
   * One tools/call through the queue. `via`: whose call it is (the tasks' scope), the 2025 session it
   * came in if any, and whether it is a 2026-07-28 request (cancelled by closing its response stream,
   * the one cancellation of that revision's HTTP transport). `asTask`: the client takes 2026-07-28
   * tasks, so a call still running after `mcp.taskAfterMs` is answered with a task instead of holding
   * the request open.
   */
  async function callTool(
    target: ToolTarget,
    args: Record<string, unknown>,
    ctx: ServerContext,
    via: { scope: string; session: string | undefined; modern: boolean },
    readOnly: boolean,
    asTask: boolean,
  ): Promise<ToolResult | Record<string, unknown>> {
    const { agent, correlationId, traceparent } = httpOf(ctx);
    const meta = (ctx.mcpReq._meta ?? {}) as Record<string, unknown>;
    let id: string | undefined;
    /** The job, once the queue holds it: from then on the call may still finish, whatever happens here. */
    let accepted: string | undefined;
    const progressToken = meta.progressToken as string | number | undefined;
    let stopProgress = () => undefined as void;
    let stopCancel = () => undefined as void;
    // The call continues the HTTP request's trace, and the backend gets the X-Correlation-ID it answered with.
    const span = deps.tracing.startSpan(`tools/call ${target.service}`, {
      kind: 'server',
      parent: parseTraceparent(traceparent),
      attributes: { 'mcp.service': target.service },
    });
    try {
      const request = await callRequest(target, readOnly, args, meta, agent);
      id = request.id;
      span.setAttributes({ 'mcp.operation': request.operation });
      const outcome = await submit({
        request,
        agent,
        correlationId: correlationId ?? randomUUID(),
        traceparent: span.traceparent,
        waitMs: asTask ? config.mcp.taskAfterMs : Infinity,
        onAccepted: (jobId, created) => {
          accepted = jobId;
          const call: SessionCall | undefined = via.session === undefined ? undefined : { session: via.session, requestId: ctx.mcpReq.id };
          void cancellation.accepted(jobId, created, call);
          if (via.modern && created) stopCancel = cancellation.cancelOnClose(jobId, ctx.mcpReq.signal, () => deps.lifecycle.stopping);
          if (progressToken !== undefined) stopProgress = reportProgress(jobId, target.service, progressToken, ctx);
        },
      });
      if (outcome.kind === 'ended') return await checkedToolResult(registry, outcome.ended.result);
      if (asTask && !outcome.waitedToDeadline) return await tasks.modern.created(via.scope, outcome.id);
      // Calling again is safe when the call has an id: an idempotency key joins this job, and a
      // read-only call may run twice. Otherwise it would be a second job: a write done twice.
      const joins = id !== undefined;
      const again = joins ? '' : '; calling again would run it a second time: ask for its result instead';
      const stillRuns = `the request ${outcome.id} may still finish (GET /mcp/requests/${outcome.id})${again}`;
      // Not at its deadline: this process stopped waiting because it is shutting down.
      const error = outcome.waitedToDeadline
        ? new GatewayError('TIMEOUT', `No result within the deadline of ${outcome.timeoutMs} ms; ${stillRuns}`, { retryable: joins })
        : new GatewayError('UNAVAILABLE', `This gateway process is shutting down and stopped waiting for the result; ${stillRuns}`, {
            retryable: joins,
          });
      return errorResult(error.toBody(), outcome.id);
    } catch (err) {
      // Bad arguments, refusals and fast failures are tool results an agent can act on.
      const e = apiError(err);
      if (!isGatewayError(err) && e.code !== 'UNAVAILABLE') logger.error({ err, service: target.service }, 'tools/call failed');
      if (accepted) return errorResult(afterAccepted(e, accepted).toBody(), accepted);
      return errorResult(e.toBody(), id);
    } finally {
      stopCancel();
      stopProgress();
      span.end();
    }
  }

  /**
   * The gateway request of a tools/call, run as a task or not. A dynamic service's `call` tool names
   * the operation in its arguments. Re-attach, never re-execute: the request's id is the caller's
   * idempotency key, or for a read-only tool the id of the same caller's call with the same arguments
   * within REATTACH_WINDOW_MS while that call is still running, so that it joins it; else it has none
   * (a new job).
   */
  async function callRequest(
    target: ToolTarget,
    readOnly: boolean,
    args: Record<string, unknown>,
    meta: Record<string, unknown>,
    agent: Agent | undefined,
  ): Promise<MCPRequest> {
    let operation = target.operation;
    let parameters = args;
    if (operation === undefined) {
      if (typeof args.operation !== 'string')
        throw new GatewayError('VALIDATION_ERROR', 'arguments.operation (the operation name) is required');
      operation = args.operation;
      parameters = (args.parameters as Record<string, unknown> | undefined) ?? {};
    }
    const request: MCPRequest = { service: target.service, operation, parameters };
    const keyName = meta['mcp-gateway/idempotencyKey'] !== undefined ? 'mcp-gateway/idempotencyKey' : 'idempotencyKey';
    const key = meta[keyName];
    if (key !== undefined) {
      // A key that cannot be an id is refused, not dropped: dropped, a write sent twice with it would run twice.
      if (typeof key === 'string' && REQUEST_ID_PATTERN.test(key)) return { ...request, id: key };
      throw new GatewayError(
        'VALIDATION_ERROR',
        `_meta["${keyName}"] must be a string of 1-128 characters of A-Z a-z 0-9 _ . - and not only digits`,
        {
          details: [{ path: `_meta.${keyName}`, message: 'not a valid request id' }],
        },
      );
    }
    if (!readOnly) return request;
    const recentKey = `${prefix}:recent:${requestHash(target.service, operation, parameters, agent?.id)}`;
    const fresh = `mcp-${randomUUID()}`;
    const won = await redis.set(recentKey, fresh, 'PX', REATTACH_WINDOW_MS, 'NX');
    const recent = won === 'OK' ? fresh : ((await redis.get(recentKey)) ?? fresh);
    if (recent !== fresh) {
      // Join a call that is still running. One that ended is not replayed: a read made again after it
      // ended may see a write made since (a failure is tried again for the same reason).
      const earlier = await broker.status(recent).catch(() => undefined);
      if (earlier && isEnded(earlier.state)) {
        await redis.set(recentKey, fresh, 'PX', REATTACH_WINDOW_MS);
        return { ...request, id: fresh };
      }
    }
    return { ...request, id: recent };
  }

  /** Where a waiting job stands in its queue (1 = next), or undefined when it is not waiting there. */
  async function queuePosition(service: string, jobId: string): Promise<number | undefined> {
    const [[, waiting], [, inWait], [, rank]] = (await redis
      .multi()
      .llen(broker.keys.queueKey(service, 'wait'))
      .lpos(broker.keys.queueKey(service, 'wait'), jobId)
      .zrank(broker.keys.queueKey(service, 'prioritized'), jobId)
      .exec()) as [[null, number], [null, number | null], [null, number | null]];
    // Unprioritized (critical) jobs are taken from the wait list's tail first, then the prioritized set in order.
    if (inWait !== null) return waiting - inWait;
    return rank === null ? undefined : waiting + rank + 1;
  }

  /** Progress notifications while a call waits: its place in the queue, the backend call, retries. */
  function reportProgress(jobId: string, service: string, progressToken: string | number, ctx: ServerContext): () => void {
    let last = '';
    let progress = 0;
    let busy = false;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try {
        await report();
      } finally {
        busy = false;
      }
    };
    const report = async () => {
      const status = await broker.status(jobId).catch(() => undefined);
      if (!status) return;
      const position = status.state === 'queued' ? await queuePosition(service, jobId).catch(() => undefined) : undefined;
      const message =
        status.state === 'queued'
          ? `waiting in the queue${position ? ` (position ${position})` : ''}`
          : {
              active: 'calling the backend',
              retrying: 'retrying after a failure',
              completed: 'completed',
              failed: 'failed',
              cancelled: 'cancelled',
            }[status.state];
      if (message === last) return;
      last = message;
      progress += 1;
      await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress, message } }).catch(() => undefined);
    };
    void tick();
    const timer = setInterval(() => void tick(), 500);
    return () => clearInterval(timer);
  }

  const mcpHandler = createMcpHandler(
    ({ era, authInfo, requestInfo }) => {
      const session = requestInfo?.headers.get('mcp-session-id') ?? undefined;
      return buildServer(session, authInfo, era === 'modern');
    },
    { onerror: (err: unknown) => logger.warn({ err: String(err) }, 'mcp protocol error') },
  );

  /** `session`: the 2025 session's id (checked by handleMcp), if the request named one. */
  function buildServer(session: string | undefined, authInfo: { extra?: Record<string, unknown> } | undefined, modern: boolean): Server {
    const agent = (authInfo?.extra as HttpExtra | undefined)?.agent;
    const via = { scope: scopeFrom(session, agent), session, modern };
    const server = new Server(SERVER_INFO, {
      // 2026-07-28 clients learn of the tasks extension from server/discover; 2025 ones from the
      // gateway's own initialize answer (CAPABILITIES).
      capabilities: { tools: { listChanged: true }, logging: {}, ...(modern ? { extensions: { [TASKS_EXTENSION]: {} } } : {}) },
      instructions: INSTRUCTIONS,
    });
    if (modern) tasks.modern.register(server, via.scope);
    server.setRequestHandler('tools/list', async () => {
      const { tools } = await listTools(agent);
      // Any call may run as a task (its id is the queue job id), when the client asks for one.
      return { tools: tools.map((tool) => ({ ...tool, execution: { taskSupport: 'optional' as const } })) };
    });
    server.setRequestHandler('tools/call', async (request, ctx) => {
      const { tools, targets } = await listTools(agent);
      const target = targets.get(request.params.name);
      if (!target) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
      const tool = tools.find((t) => t.name === request.params.name)!;
      const args = (request.params.arguments ?? {}) as Record<string, unknown>;
      // SEP-2663: only a client that declares the extension on this very request may get a task.
      const declared = (
        ctx.mcpReq.envelope as { 'io.modelcontextprotocol/clientCapabilities'?: { extensions?: Record<string, unknown> } } | undefined
      )?.['io.modelcontextprotocol/clientCapabilities']?.extensions?.[TASKS_EXTENSION];
      const asTask = modern && typeof declared === 'object' && declared !== null;
      return (await callTool(target, args, ctx, via, tool.annotations.readOnlyHint === true, asTask)) as never;
    });
    server.setRequestHandler('logging/setLevel', async () => ({}));
    return server;
  }

  /** Whose tasks these are: the session, else the agent. */
  const scopeFrom = (sessionId: string | undefined, agent: Agent | undefined) =>
    (sessionId ?? agent?.id ?? 'anonymous').replace(/[^A-Za-z0-9_.-]/g, '_');
  const scopeOf = (req: Request) => scopeFrom(req.get('mcp-session-id'), req.agent);

  /** A 2025 session's notifications/cancelled; without a session the sender cannot be told apart (see callCancellation). */
  async function cancelIfAsked(req: Request): Promise<void> {
    const body = req.body as { method?: string; params?: { requestId?: string | number } } | undefined;
    const session = req.get('mcp-session-id');
    if (body?.method !== 'notifications/cancelled' || body.params?.requestId === undefined || session === undefined) return;
    await cancellation.notified({ session, requestId: body.params.requestId });
  }

  /** Only loopback hosts and origins when the gateway listens on loopback without inbound auth (DNS rebinding). */
  function hostAllowed(req: Request): boolean {
    const loopbackOnly = LOOPBACK.has(config.host) && !authEnabled(config);
    if (!loopbackOnly) return true;
    const host = (req.get('host') ?? '').replace(/:\d+$/, '');
    if (!LOOPBACK.has(host)) return false;
    const origin = req.get('origin');
    if (!origin) return true;
    try {
      return LOOPBACK.has(new URL(origin).hostname);
    } catch {
      return false;
    }
  }

  const handleMcp = async function handleMcp(req: Request, res: Response, next: NextFunction): Promise<void> {
    try {
      if (!hostAllowed(req)) return void jsonRpcError(res, 403, -32000, 'Forbidden host or origin');
      const sessionId = req.get('mcp-session-id');
      const agentId = req.agent?.id ?? '';
      const body = req.body as { method?: string } | undefined;
      if (req.method === 'POST' && body?.method === 'initialize') {
        // A 2025-era session: the gateway's own id, kept in Redis so any replica serves it. The
        // handshake is answered here: every later request is served statelessly by the SDK, so the
        // handshake holds no state, and only here can the tasks capability be announced.
        const id = randomUUID();
        const rec: SessionRecord = { agentId, createdAt: new Date().toISOString() };
        await redis.set(sessionKey(id), JSON.stringify(rec), 'EX', SESSION_TTL_S);
        res.setHeader('Mcp-Session-Id', id);
        return void initialize(req, res);
      } else if (sessionId) {
        const raw = await redis.get(sessionKey(sessionId));
        const rec = raw ? (JSON.parse(raw) as SessionRecord) : undefined;
        if (!rec || rec.agentId !== agentId) return void jsonRpcError(res, 404, -32001, 'Session not found');
        await redis.expire(sessionKey(sessionId), SESSION_TTL_S);
        if (req.method === 'DELETE') {
          await redis.del(sessionKey(sessionId));
          return void res.status(200).end();
        }
        if (req.method === 'GET') return openStream(res);
      }
      if (req.method !== 'POST') {
        res.setHeader('Allow', 'POST');
        return void jsonRpcError(
          res,
          sessionId ? 405 : 400,
          -32000,
          req.method === 'GET' ? 'A GET stream needs an Mcp-Session-Id' : 'Method not allowed',
        );
      }
      await cancelIfAsked(req);
      if (await tasks.legacy(req, res)) return;
      const extra: HttpExtra = { agent: req.agent, correlationId: req.correlationId, traceparent: req.get('traceparent') };
      const authInfo: AuthInfo = { token: '', clientId: agentId || 'anonymous', scopes: [], extra: extra as Record<string, unknown> };
      const direct = directRequest(req);
      if (direct) return await serveDirectly(req, res, direct, authInfo);
      await serveFetch(mcpHandler, req, res, authInfo, (err) => logger.warn({ err: String(err) }, 'mcp request could not be served'));
    } catch (err) {
      next(err);
    }
  };

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

  async function serveDirectly(req: Request, res: Response, message: JSONRPCRequest, authInfo: AuthInfo): Promise<void> {
    const server = buildServer(req.get('mcp-session-id'), authInfo, false);
    const exchange = new ExpressExchangeTransport(res, message, config.mcp.streamAfterMs);
    await server.connect(exchange);
    try {
      await exchange.serve({ authInfo });
    } finally {
      await server.close().catch(() => undefined);
    }
  }

  return Object.assign(handleMcp, {
    /** Ends every open GET stream (the server is stopping). */
    closeStreams: () => {
      for (const res of streams) res.end();
      streams.clear();
    },
  });

  function initialize(req: Request, res: Response): void {
    const msg = req.body as { id?: string | number; params?: { protocolVersion?: string } };
    const asked = msg.params?.protocolVersion;
    const protocolVersion = asked && LEGACY_VERSIONS.includes(asked) ? asked : LEGACY_VERSIONS[0]!;
    res.status(200).json({
      jsonrpc: '2.0',
      id: msg.id ?? null,
      result: { protocolVersion, capabilities: CAPABILITIES, serverInfo: SERVER_INFO, instructions: INSTRUCTIONS },
    });
  }

  function openStream(res: Response): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.write(': stream open\n\n');
    streams.add(res);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    res.on('close', () => {
      clearInterval(keepAlive);
      streams.delete(res);
    });
  }
}
