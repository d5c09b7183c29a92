import { ProtocolError, ProtocolErrorCode, Server, type ServerContext } from '@modelcontextprotocol/server';
import type { Agent } from '@mcp-gateway/protocol';
import type { ToolCatalog } from './catalog';
import type { ModernTasks } from './tasks-modern';
import { TASKS_EXTENSION } from './task-store';
import type { CallVia, ToolCall } from './tool-call';

export const SERVER_INFO = { name: 'mcp-gateway', version: '0.1.0' };
export const INSTRUCTIONS =
  'Each tool calls one operation of a backend service through the gateway queue (rate limits, circuit breakers and retries apply).';
/** The 2025-era capabilities, announced by the gateway's own initialize answer. */
export const LEGACY_CAPABILITIES = {
  tools: { listChanged: true },
  logging: {},
  tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } },
};

export interface ServerParts {
  catalog: ToolCatalog;
  modernTasks: ModernTasks;
  callTool(call: ToolCall): Promise<unknown>;
}

/** Whose tasks these are: the session, else the agent. */
export function scopeFrom(session: string | undefined, agent: Agent | undefined): string {
  return (session ?? (agent?.id || 'anonymous')).replace(/[^A-Za-z0-9_.-]/g, '_');
}

/** Whether a 2026-07-28 request's client declares the tasks extension on this very request (SEP-2663). */
function declaresTasks(ctx: ServerContext): boolean {
  const envelope = ctx.mcpReq.envelope as
    { 'io.modelcontextprotocol/clientCapabilities'?: { extensions?: Record<string, unknown> } } | undefined;
  const declared = envelope?.['io.modelcontextprotocol/clientCapabilities']?.extensions?.[TASKS_EXTENSION];
  return typeof declared === 'object' && declared !== null;
}

/**
 * The SDK `Server` that serves one request's messages: tools/list and tools/call for the agent's
 * services, and on a 2026-07-28 server the tasks extension. `session`: the 2025 session's id, if the
 * request named one (already checked).
 */
export function buildServer(parts: ServerParts, session: string | undefined, agent: Agent | undefined, modern: boolean): Server {
  const via: CallVia = { scope: scopeFrom(session, agent), session, modern };
  const server = new Server(SERVER_INFO, {
    // 2026-07-28 clients learn of the tasks extension from server/discover; 2025 ones from LEGACY_CAPABILITIES.
    capabilities: { tools: { listChanged: true }, logging: {}, ...(modern ? { extensions: { [TASKS_EXTENSION]: {} } } : {}) },
    instructions: INSTRUCTIONS,
  });
  if (modern) parts.modernTasks.register(server, via.scope);
  server.setRequestHandler('tools/list', async () => {
    const { tools } = await parts.catalog.list(agent);
    // Any call may run as a task (its id is the queue job id), when the client asks for one.
    return { tools: tools.map((tool) => ({ ...tool, execution: { taskSupport: 'optional' as const } })) };
  });
  server.setRequestHandler('tools/call', async (request, ctx) => {
    const { tools, targets } = await parts.catalog.list(agent);
    const target = targets.get(request.params.name);
    if (!target) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    const readOnly = tools.find((t) => t.name === request.params.name)!.annotations.readOnlyHint === true;
    const args = (request.params.arguments ?? {}) as Record<string, unknown>;
    const asTask = modern && declaresTasks(ctx);
    return (await parts.callTool({ target, args, readOnly, ctx, via, asTask })) as never;
  });
  server.setRequestHandler('logging/setLevel', async () => ({}));
  return server;
}
