import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import type Redis from 'ioredis';
import * as z from 'zod';
import { ProtocolError, ProtocolErrorCode, type Server } from '@modelcontextprotocol/server';
import {
  isEnded,
  isGatewayError,
  toGatewayError,
  type ErrorBody,
  type MCPRequest,
  type MCPResponse,
  type RequestState,
} from '@mcp-gateway/protocol';
import type { RequestRecord } from '@mcp-gateway/broker';
import { errorResult, type GatewayTool, type ToolResult, type ToolTarget } from '@mcp-gateway/mcp';
import { checkedToolResult } from './mcp-output';
import type { Agent } from './auth';
import type { ApiDeps } from './deps';
import { afterAccepted, apiError } from './http-errors';
import type { CallCancellation } from './mcp-cancel';
import type { Submitter } from './submission';

/** The params of tasks/get, tasks/update and tasks/cancel: made once (a zod schema is costly to build, and a server is built per request). */
const BY_TASK_ID = { params: z.looseObject({ taskId: z.string() }) };

/**
 * MCP tasks, both generations, over one store: a task's id IS the queue job id, so any API replica
 * answers for it and `GET /mcp/requests/:id` answers for the same id (a refused 2025-11-25 call's
 * task aside: it has no job). Calls that joined one job share its task id, and then none of them
 * cancels it (see callCancellation).
 * - 2025-11-25 (task-augmented requests): the client asks for a task with `params.task`; the SDK has
 *   no runtime for it, so `tools/call` with a task and `tasks/get|result|list|cancel` are handled
 *   here, before the SDK.
 * - 2026-07-28 (the `io.modelcontextprotocol/tasks` extension, SEP-2663): the server decides. A call
 *   from a client that declares the extension and is still running after `mcp.taskAfterMs` is answered
 *   with `resultType: "task"`; `tasks/get`, `tasks/update` and `tasks/cancel` are registered on the
 *   SDK's modern server.
 */
export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';
const PROTOCOL_VERSION_META = 'io.modelcontextprotocol/protocolVersion';
const DEFAULT_TTL_MS = 3_600_000;
const MAX_TTL_MS = 24 * 3_600_000;
const POLL_INTERVAL_MS = 500;
/** How long one tasks/result call waits for the task to end. */
const RESULT_WAIT_MS = 60_000;

interface TaskRecord {
  scope: string;
  createdAt: string;
  ttl: number;
  /** A 2025-11-25 call refused before the queue took it: the task failed at once, with this error. */
  refused?: ErrorBody;
}

type TaskStatus = 'working' | 'input_required' | 'completed' | 'failed' | 'cancelled';

/** 2025-11-25: a job that ended with an error is a failed task. */
const LEGACY_STATUS: Record<RequestState, TaskStatus> = {
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
  cancellation: CallCancellation;
  /** The gateway request of a tools/call (the same as without a task, re-attach included). */
  callRequest(
    target: ToolTarget,
    readOnly: boolean,
    args: Record<string, unknown>,
    meta: Record<string, unknown>,
    agent: Agent | undefined,
  ): Promise<MCPRequest>;
}

/** A 2026-07-28 request: its protocol version (header or per-request `_meta`) is of that era. */
function isModern(req: Request, msg: RpcMessage): boolean {
  const version = req.get('mcp-protocol-version') ?? (msg.params?._meta as Record<string, unknown> | undefined)?.[PROTOCOL_VERSION_META];
  return typeof version === 'string' && version >= '2026-07-28';
}

/** The ended job's result, or undefined while it runs. */
const endedResult = (job: RequestRecord): MCPResponse | undefined => (isEnded(job.state) ? job.result : undefined);

export function mcpTasks(t: TaskDeps) {
  const { deps, redis, prefix } = t;
  // A scope's tasks and their list share one hash tag, so the MULTI below is one slot on a cluster.
  const taskKey = (scope: string, id: string) => `${prefix}:{tasks-${scope}}:task:${id}`;
  const listKey = (scope: string) => `${prefix}:{tasks-${scope}}:list`;

  const reply = (res: Response, id: RpcMessage['id'], result: unknown) => res.status(200).json({ jsonrpc: '2.0', id: id ?? null, result });
  const fail = (res: Response, id: RpcMessage['id'], code: number, message: string, data?: unknown) =>
    res.status(200).json({ jsonrpc: '2.0', id: id ?? null, error: { code, message, ...(data === undefined ? {} : { data }) } });

  /**
   * Stores the task before it is announced, so a tasks/get that follows at once finds it. `listed`:
   * 2025-11-25 tasks go on their scope's tasks/list; 2026-07-28 ones do not (that revision has no
   * tasks/list, and without sessions a scope can be every anonymous caller).
   */
  async function create(scope: string, id: string, ttl: number, listed: boolean, refused?: ErrorBody): Promise<TaskRecord> {
    const rec: TaskRecord = { scope, createdAt: new Date().toISOString(), ttl, ...(refused ? { refused } : {}) };
    const tx = redis.multi().set(taskKey(scope, id), JSON.stringify(rec), 'PX', ttl);
    if (listed) tx.zadd(listKey(scope), Date.now(), id).zremrangebyrank(listKey(scope), 0, -1001).pexpire(listKey(scope), MAX_TTL_MS);
    const stored = await tx.exec();
    const failed = stored?.find(([err]) => err);
    if (!stored || failed) throw failed?.[0] ?? new Error('the task could not be stored');
    return rec;
  }

  async function find(scope: string, taskId: unknown): Promise<{ id: string; rec: TaskRecord } | undefined> {
    if (typeof taskId !== 'string') return undefined;
    const raw = await redis.get(taskKey(scope, taskId));
    const rec = raw ? (JSON.parse(raw) as TaskRecord) : undefined;
    // Another session's (or agent's) task is as good as unknown.
    return rec && rec.scope === scope ? { id: taskId, rec } : undefined;
  }

  /** The fields both generations share, from the job's record: updated when it started, then when it ended. */
  function common(id: string, rec: TaskRecord, job: RequestRecord) {
    const error = job.result?.error;
    return {
      taskId: id,
      createdAt: rec.createdAt,
      lastUpdatedAt: endedResult(job)?.metadata.completedAt ?? new Date(job.startedAt ?? job.acceptedAt).toISOString(),
      statusMessage: error ? `${error.code}: ${error.message}` : job.state,
    };
  }

  async function legacyTask(id: string, rec: TaskRecord): Promise<Record<string, unknown> | undefined> {
    const fixed = { ttl: rec.ttl, pollInterval: POLL_INTERVAL_MS };
    if (rec.refused)
      return {
        taskId: id,
        createdAt: rec.createdAt,
        lastUpdatedAt: rec.createdAt,
        statusMessage: `${rec.refused.code}: ${rec.refused.message}`,
        status: 'failed',
        ...fixed,
      };
    const job = await deps.broker.records.get(id);
    if (!job) return undefined;
    return { ...common(id, rec, job), status: LEGACY_STATUS[job.state], ...fixed };
  }

  /**
   * The 2026-07-28 detailed task. A call that reached its end is `completed` with the tool result,
   * `isError` included (a backend failure is the tool's answer, as in a direct call); `failed` is
   * for JSON-RPC errors, which a queued job never ends with.
   */
  async function modernTask(id: string, rec: TaskRecord, given?: RequestRecord): Promise<Record<string, unknown> | undefined> {
    const job = given ?? (await deps.broker.records.get(id));
    if (!job) return undefined;
    const base = { ...common(id, rec, job), ttlMs: rec.ttl, pollIntervalMs: POLL_INTERVAL_MS };
    if (job.state === 'cancelled') return { ...base, status: 'cancelled' };
    const ended = endedResult(job);
    if (!ended) return { ...base, status: 'working' };
    return { ...base, status: 'completed', result: { resultType: 'complete', ...(await checkedToolResult(deps.registry, ended)) } };
  }

  const modern = {
    /**
     * Makes the running job a task and answers the call with it (`resultType: "task"`). The task
     * lives as long as the job's result will: the rest of its deadline, then the result TTL.
     */
    async created(scope: string, id: string): Promise<Record<string, unknown>> {
      const job = await deps.broker.records.get(id);
      if (!job) throw new ProtocolError(ProtocolErrorCode.InternalError, `The request ${id} disappeared before its task was created`);
      const ttl = Math.min(Math.max(0, job.deadline - Date.now()) + deps.config.results.ttlSeconds * 1000, MAX_TTL_MS);
      const task = await modernTask(id, await create(scope, id, ttl, false), job);
      if (!task) throw new ProtocolError(ProtocolErrorCode.InternalError, `The request ${id} disappeared before its task was created`);
      // A CreateTaskResult never carries the result, even when the job ended a moment ago: tasks/get has it.
      const { result: _result, ...seed } = task;
      return { ...seed, resultType: 'task' };
    },

    /** tasks/get, tasks/update and tasks/cancel on a 2026-07-28 server of this scope. */
    register(server: Server, scope: string): void {
      server.setRequestHandler('tasks/get', BY_TASK_ID, async (params) => {
        const found = await find(scope, params.taskId);
        const task = found ? await modernTask(found.id, found.rec) : undefined;
        if (!task) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown task: ${params.taskId}`);
        return task;
      });
      const known = async (taskId: string) => {
        const found = await find(scope, taskId);
        if (!found) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown task: ${taskId}`);
        return found;
      };
      // No gateway task asks for input, so a known task's update is acknowledged and changes nothing.
      server.setRequestHandler('tasks/update', BY_TASK_ID, async (params) => (await known(params.taskId), {}));
      // A job no other call joined is cancelled (a running one's backend call is abandoned); one
      // another call joined ends as it would have. The ack is the same either way, as the spec asks.
      server.setRequestHandler('tasks/cancel', BY_TASK_ID, async (params) => {
        const found = await known(params.taskId);
        await t.cancellation.cancelOwn(found.id);
        return {};
      });
    },
  };

  /**
   * The tool result of a task's job, once it has ended: waited for (one subscription per process, as
   * for sync requests) at most RESULT_WAIT_MS and never past the client's disconnect; undefined when
   * the job has not ended by then (the client asks again).
   */
  async function jobToolResult(id: string, ttl: number, res: Response): Promise<ToolResult | undefined> {
    const w = deps.waiter.register(id);
    const gone = () => w.cancel();
    res.on('close', gone);
    try {
      const job = await deps.broker.records.get(id);
      const result = (job ? endedResult(job) : undefined) ?? (await w.wait(Math.min(RESULT_WAIT_MS, Math.max(1000, ttl))))?.result;
      return result && (await checkedToolResult(deps.registry, result));
    } finally {
      w.cancel();
      res.off('close', gone);
    }
  }

  /**
   * The 2025-11-25 answer to a task-augmented call refused before any job existed: a task created
   * `failed` (that revision's end for a tool call whose result is `isError`), whose tasks/result is the
   * tool error, with retryAfterMs and breaker state. Its id is no request's: nothing was queued.
   */
  async function refused(scope: string, error: ErrorBody, ttl: number): Promise<Record<string, unknown> | undefined> {
    const id = randomUUID();
    return legacyTask(id, await create(scope, id, ttl, true, error));
  }

  /** Handles a 2025-11-25 task request; false lets the SDK have the message. */
  async function legacy(req: Request, res: Response): Promise<boolean> {
    const msg = req.body as RpcMessage | undefined;
    if (!msg || typeof msg !== 'object' || Array.isArray(msg) || msg.id === undefined || typeof msg.method !== 'string') return false;
    if (isModern(req, msg)) return false;
    const params = msg.params ?? {};
    const scope = t.scopeOf(req);

    if (msg.method === 'tools/call' && params.task !== undefined) {
      const name = String(params.name ?? '');
      const { tools, targets } = await t.listTools(req.agent);
      const target = targets.get(name);
      if (!target) return (fail(res, msg.id, -32602, `Unknown tool: ${name}`), true);
      const readOnly = tools.find((tool) => tool.name === name)?.annotations.readOnlyHint === true;
      const requested = Number((params.task as { ttl?: unknown }).ttl);
      const ttl = Number.isFinite(requested) && requested > 0 ? Math.min(requested, MAX_TTL_MS) : DEFAULT_TTL_MS;
      const span = deps.tracing.startSpan(`tools/call ${target.service} (task)`, { kind: 'server' });
      /** The job, once the queue holds it: from then on it may still run, whatever happens here. */
      let accepted: string | undefined;
      try {
        const args = (params.arguments ?? {}) as Record<string, unknown>;
        const request = await t.callRequest(target, readOnly, args, (params._meta ?? {}) as Record<string, unknown>, req.agent);
        const outcome = await t.submit({
          request,
          agent: req.agent,
          correlationId: req.correlationId,
          traceparent: span.traceparent,
          waitMs: 0,
          onAccepted: (id, created) => void t.cancellation.accepted(id, created, undefined),
        });
        accepted = outcome.kind === 'ended' ? outcome.ended.id : outcome.id;
        reply(res, msg.id, { task: await legacyTask(accepted, await create(scope, accepted, ttl, true)) });
      } catch (err) {
        const e = apiError(err);
        if (!isGatewayError(err) && e.code !== 'UNAVAILABLE')
          deps.logger.error({ err, service: target.service }, 'tools/call (task) failed');
        // Accepted, but its task could not be stored (Redis away): no task to give, and the job may still run.
        if (accepted) {
          const late = afterAccepted(e, accepted);
          return (fail(res, msg.id, -32603, `${late.code}: ${late.message}`, late.toBody()), true);
        }
        // Refused before the queue took it (bad arguments, open circuit, rate limit, full queue): a task
        // that failed at once, whose result is the tool error the same call without a task gets. When
        // not even that can be stored (Redis away), a JSON-RPC error with the same error as its data.
        const task = await refused(scope, e.toBody(), ttl).catch(() => undefined);
        if (task) reply(res, msg.id, { task });
        else fail(res, msg.id, -32603, `${e.code}: ${e.message}`, e.toBody());
      } finally {
        span.end();
      }
      return true;
    }

    if (!msg.method.startsWith('tasks/')) return false;
    if (msg.method === 'tasks/list') {
      const ids = await redis.zrevrange(listKey(scope), 0, 99);
      const tasks = [];
      for (const id of ids) {
        const found = await find(scope, id);
        const task = found ? await legacyTask(found.id, found.rec) : undefined;
        if (task) tasks.push(task);
      }
      return (reply(res, msg.id, { tasks }), true);
    }
    const found = await find(scope, params.taskId);
    if (!found) return (fail(res, msg.id, -32602, `Unknown task: ${String(params.taskId)}`), true);

    if (msg.method === 'tasks/get') {
      const task = await legacyTask(found.id, found.rec);
      return (task ? reply(res, msg.id, task) : fail(res, msg.id, -32602, `Task ${found.id} expired`), true);
    }
    if (msg.method === 'tasks/cancel') {
      const status = await deps.broker.status(found.id);
      if (!status || isEnded(status.state)) return (fail(res, msg.id, -32602, `Task ${found.id} has already ended`), true);
      if (await t.cancellation.shared(found.id))
        return (
          fail(res, msg.id, -32602, `Task ${found.id} cannot be cancelled: another call joined its request, which runs on for it`),
          true
        );
      try {
        await deps.broker.cancel(found.id);
      } catch (err) {
        return (fail(res, msg.id, -32602, `Task ${found.id} cannot be cancelled: ${toGatewayError(err).message}`), true);
      }
      return (reply(res, msg.id, await legacyTask(found.id, found.rec)), true);
    }
    if (msg.method === 'tasks/result') {
      const tool = found.rec.refused ? errorResult(found.rec.refused) : await jobToolResult(found.id, found.rec.ttl, res);
      if (!tool) return (fail(res, msg.id, -32603, `Task ${found.id} has no result yet; ask again (tasks/get shows its status)`), true);
      return (
        reply(res, msg.id, { ...tool, _meta: { ...(tool._meta ?? {}), 'io.modelcontextprotocol/related-task': { taskId: found.id } } }),
        true
      );
    }
    return false;
  }

  return { legacy, modern };
}
