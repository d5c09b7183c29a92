import { randomUUID } from 'node:crypto';
import { GatewayError, isEnded, REQUEST_ID_PATTERN, type Agent, type MCPRequest } from '@mcp-gateway/protocol';
import { requestHash } from '@mcp-gateway/broker';
import type { ToolTarget } from '../tools';
import type { McpHost } from './host';

/** A read-only call re-issued within this window (same caller, tool, arguments) joins the first one. */
const REATTACH_WINDOW_MS = 30_000;
const KEY_NAMES = ['mcp-gateway/idempotencyKey', 'idempotencyKey'] as const;

/** What a tools/call asks for, whether it runs as a task or not. */
export interface ToolCallInput {
  target: ToolTarget;
  /** The tool is read-only: calling it twice does no harm. */
  readOnly: boolean;
  args: Record<string, unknown>;
  /** The request's `_meta`. */
  meta: Record<string, unknown>;
  agent: Agent | undefined;
}

/**
 * The gateway request of a tools/call. A dynamic service's `call` tool names the operation in its
 * arguments. Re-attach, never re-execute: the request's id is the caller's idempotency key, or for a
 * read-only tool the id of the same caller's call with the same arguments within REATTACH_WINDOW_MS
 * while that call is still running, so that it joins it; else it has none (a new job).
 */
export async function callRequest(host: McpHost, input: ToolCallInput): Promise<MCPRequest> {
  const request = gatewayRequest(input.target, input.args);
  const key = idempotencyKey(input.meta);
  if (key !== undefined) request.id = key;
  else if (input.readOnly) request.id = await reattachId(host, request, input.agent);
  return request;
}

function gatewayRequest(target: ToolTarget, args: Record<string, unknown>): MCPRequest {
  if (target.operation !== undefined) return { service: target.service, operation: target.operation, parameters: args };
  if (typeof args.operation !== 'string')
    throw new GatewayError('VALIDATION_ERROR', 'arguments.operation (the operation name) is required');
  return { service: target.service, operation: args.operation, parameters: (args.parameters as Record<string, unknown> | undefined) ?? {} };
}

/** The caller's idempotency key from `_meta`. One that cannot be an id is refused, not dropped: dropped, a write sent twice with it would run twice. */
function idempotencyKey(meta: Record<string, unknown>): string | undefined {
  const name = KEY_NAMES.find((n) => meta[n] !== undefined);
  if (name === undefined) return undefined;
  const key = meta[name];
  if (typeof key === 'string' && REQUEST_ID_PATTERN.test(key)) return key;
  throw new GatewayError(
    'VALIDATION_ERROR',
    `_meta["${name}"] must be a string of 1-128 characters of A-Z a-z 0-9 _ . - and not only digits`,
    {
      details: [{ path: `_meta.${name}`, message: 'not a valid request id' }],
    },
  );
}

/**
 * The id of the same caller's identical read-only call still running within the window, else a new
 * one that later identical calls will join. One that ended is not replayed: a read made again after
 * it ended may see a write made since (a failure is tried again for the same reason).
 */
async function reattachId(host: McpHost, request: MCPRequest, agent: Agent | undefined): Promise<string> {
  const { redis, broker } = host;
  const recentKey = `${host.settings.keyPrefix}:recent:${requestHash(request.service, request.operation, request.parameters ?? {}, agent?.id)}`;
  const fresh = `mcp-${randomUUID()}`;
  const won = await redis.set(recentKey, fresh, 'PX', REATTACH_WINDOW_MS, 'NX');
  const recent = won === 'OK' ? fresh : ((await redis.get(recentKey)) ?? fresh);
  if (recent === fresh) return fresh;
  const earlier = await broker.status(recent).catch(() => undefined);
  if (!earlier || !isEnded(earlier.state)) return recent;
  await redis.set(recentKey, fresh, 'PX', REATTACH_WINDOW_MS);
  return fresh;
}
