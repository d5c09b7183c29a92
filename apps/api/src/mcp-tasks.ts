import type { Request, Response } from 'express';
import type Redis from 'ioredis';
import { isEnded, toGatewayError, type MCPRequest, type MCPResponse, type RequestState } from '@mcp-gateway/protocol';
import { toolResult, type GatewayTool, type ToolTarget } from '@mcp-gateway/mcp';
import type { Agent } from './auth';
import type { ApiDeps } from './deps';
import { apiError } from './http-errors';
import type { Submitter } from './submission';

/**
 * MCP tasks (the 2025-11-25 task-augmented requests): a `tools/call` that asks for a task is answered
 * at once with a task whose id IS the queue job id; `tasks/get`, `tasks/result`, `tasks/list` and
 * `tasks/cancel` read and act on the queue, so any API replica answers, and `GET /mcp/requests/:id`
 * answers for the same id. The SDK has no task runtime for this, so these few JSON-RPC methods are
 * handled here, before it.
 */
const DEFAULT_TTL_MS = 3_600_000;
const MAX_TTL_MS = 24 * 3_600_000;
const POLL_INTERVAL_MS = 500;
/** How long one tasks/result call waits for the task to end. */
const RESULT_WAIT_MS = 60_000;

interface TaskRecord {
  scope: string;
  createdAt: string;
  ttl: number;
}

type TaskStatus = 'working' | 'input_required' | 'completed' | 'failed' | 'cancelled';

const STATUS: Record<RequestState, TaskStatus> = {
  queued: 'working',
  active: 'working',
  retrying: 'working',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
};

interface RpcMessage {
  jsonrpc?: string;
  id?: string | number;
  method?: string;
  params?: Record<string, unknown>;
}

export interface TaskDeps {
  deps: ApiDeps;
  redis: Redis;
  prefix: string;
  submit: Submitter;
  listTools(agent: Agent | undefined): Promise<{ tools: GatewayTool[]; targets: Map<string, ToolTarget> }>;
  scopeOf(req: Request): string;
}

export function mcpTasks(t: TaskDeps) {
  const { deps, redis, prefix } = t;
  // A scope's tasks and their list share one hash tag, so the MULTI below is one slot on a cluster.
  const taskKey = (scope: string, id: string) => `${prefix}:{tasks-${scope}}:task:${id}`;
  const listKey = (scope: string) => `${prefix}:{tasks-${scope}}:list`;

  const reply = (res: Response, id: RpcMessage['id'], result: unknown) => res.status(200).json({ jsonrpc: '2.0', id: id ?? null, result });
  const fail = (res: Response, id: RpcMessage['id'], code: number, message: string) => res.status(200).json({ jsonrpc: '2.0', id: id ?? null, error: { code, message } });

  async function taskOf(id: string, rec: TaskRecord): Promise<Record<string, unknown> | undefined> {
    const status = await deps.broker.status(id);
    if (!status) return undefined;
    const result = status as Partial<MCPResponse>;
    return {
      taskId: id,
      status: STATUS[status.state],
      ttl: rec.ttl,
      createdAt: rec.createdAt,
      lastUpdatedAt: result.metadata?.completedAt ?? new Date().toISOString(),
      pollInterval: POLL_INTERVAL_MS,
      ...(result.error ? { statusMessage: `${result.error.code}: ${result.error.message}` } : { statusMessage: status.state }),
    };
  }

  async function record(req: Request, taskId: unknown): Promise<{ id: string; rec: TaskRecord } | undefined> {
    if (typeof taskId !== 'string') return undefined;
    const raw = await redis.get(taskKey(t.scopeOf(req), taskId));
    const rec = raw ? (JSON.parse(raw) as TaskRecord) : undefined;
    // Another session's (or agent's) task is as good as unknown.
    return rec && rec.scope === t.scopeOf(req) ? { id: taskId, rec } : undefined;
  }

  /** Handles the message when it is a task request; false lets the SDK have it. */
  return async function handleTasks(req: Request, res: Response): Promise<boolean> {
    const msg = req.body as RpcMessage | undefined;
    if (!msg || typeof msg !== 'object' || Array.isArray(msg) || msg.id === undefined || typeof msg.method !== 'string') return false;
    const params = msg.params ?? {};

    if (msg.method === 'tools/call' && params.task !== undefined) {
      const name = String(params.name ?? '');
      const { targets } = await t.listTools(req.agent);
      const target = targets.get(name);
      if (!target) return fail(res, msg.id, -32602, `Unknown tool: ${name}`), true;
      const args = (params.arguments ?? {}) as Record<string, unknown>;
      const operation = target.operation ?? (typeof args.operation === 'string' ? args.operation : '');
      const parameters = target.operation ? args : ((args.parameters as Record<string, unknown> | undefined) ?? {});
      const requested = Number((params.task as { ttl?: unknown }).ttl);
      const ttl = Number.isFinite(requested) && requested > 0 ? Math.min(requested, MAX_TTL_MS) : DEFAULT_TTL_MS;
      const request: MCPRequest = { service: target.service, operation, parameters };
      const span = deps.tracing.startSpan(`tools/call ${target.service} (task)`, { kind: 'server' });
      try {
        const outcome = await t.submit({
          request,
          agent: req.agent,
          correlationId: req.correlationId,
          traceparent: span.traceparent,
          waitMs: 0,
        });
        const id = outcome.kind === 'ended' ? outcome.result.id : outcome.id;
        const rec: TaskRecord = { scope: t.scopeOf(req), createdAt: new Date().toISOString(), ttl };
        const stored = await redis
          .multi()
          .set(taskKey(rec.scope, id), JSON.stringify(rec), 'PX', ttl)
          .zadd(listKey(rec.scope), Date.now(), id)
          .zremrangebyrank(listKey(rec.scope), 0, -1001)
          .pexpire(listKey(rec.scope), MAX_TTL_MS)
          .exec();
        const failed = stored?.find(([err]) => err);
        if (!stored || failed) throw failed?.[0] ?? new Error('the task could not be stored');
        reply(res, msg.id, { task: await taskOf(id, rec) });
      } catch (err) {
        // Refused before any task existed (bad arguments, open circuit, …): a JSON-RPC error, as the spec asks.
        const e = apiError(err);
        fail(res, msg.id, e.code === 'VALIDATION_ERROR' ? -32602 : -32603, `${e.code}: ${e.message}`);
      } finally {
        span.end();
      }
      return true;
    }

    if (!msg.method.startsWith('tasks/')) return false;
    if (msg.method === 'tasks/list') {
      const ids = await redis.zrevrange(listKey(t.scopeOf(req)), 0, 99);
      const tasks = [];
      for (const id of ids) {
        const found = await record(req, id);
        const task = found ? await taskOf(found.id, found.rec) : undefined;
        if (task) tasks.push(task);
      }
      return reply(res, msg.id, { tasks }), true;
    }
    const found = await record(req, params.taskId);
    if (!found) return fail(res, msg.id, -32602, `Unknown task: ${String(params.taskId)}`), true;

    if (msg.method === 'tasks/get') {
      const task = await taskOf(found.id, found.rec);
      return (task ? reply(res, msg.id, task) : fail(res, msg.id, -32602, `Task ${found.id} expired`)), true;
    }
    if (msg.method === 'tasks/cancel') {
      const status = await deps.broker.status(found.id);
      if (!status || isEnded(status.state)) return fail(res, msg.id, -32602, `Task ${found.id} has already ended`), true;
      try {
        await deps.broker.cancel(found.id);
      } catch (err) {
        return fail(res, msg.id, -32602, `Task ${found.id} cannot be cancelled: ${toGatewayError(err).message}`), true;
      }
      return reply(res, msg.id, await taskOf(found.id, found.rec)), true;
    }
    if (msg.method === 'tasks/result') {
      // Blocks until the task ends (one subscription per process, as for sync requests), at most
      // RESULT_WAIT_MS per call and never past the client's disconnect; the client asks again after.
      const w = deps.waiter.register(found.id);
      const gone = () => w.cancel();
      res.on('close', gone);
      let result: MCPResponse | undefined;
      try {
        const now = await deps.broker.status(found.id);
        if (now && isEnded(now.state) && now.status) {
          const { state: _done, ...r } = now;
          result = r as MCPResponse;
        } else {
          result = (await w.wait(Math.min(RESULT_WAIT_MS, Math.max(1000, found.rec.ttl))))?.result;
        }
      } finally {
        w.cancel();
        res.off('close', gone);
      }
      if (!result) return fail(res, msg.id, -32603, `Task ${found.id} has no result yet; ask again (tasks/get shows its status)`), true;
      const tool = toolResult(result);
      return reply(res, msg.id, { ...tool, _meta: { ...(tool._meta ?? {}), 'io.modelcontextprotocol/related-task': { taskId: found.id } } }), true;
    }
    return false;
  };
}
