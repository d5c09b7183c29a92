import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { isEnded, isGatewayError, toGatewayError, type ErrorBody } from '@mcp-gateway/protocol';
import { afterAccepted, answerError } from '@mcp-gateway/broker';
import { errorResult, type ToolResult } from '../results';
import type { ToolCatalog } from './catalog';
import { callRequest } from './call-request';
import type { CallCancellation } from './cancellation';
import type { HttpCaller, McpHost } from './host';
import { checkedToolResult } from './output';
import { endedResult, MAX_TASK_TTL_MS, type FoundTask, type TaskStore } from './task-store';

const PROTOCOL_VERSION_META = 'io.modelcontextprotocol/protocolVersion';
const DEFAULT_TTL_MS = 3_600_000;
/** How long one tasks/result call waits for the task to end. */
const RESULT_WAIT_MS = 60_000;

interface RpcMessage {
  jsonrpc?: string;
  id: string | number;
  method: string;
  params?: Record<string, unknown>;
}

/** One JSON-RPC exchange: the message, where its answer goes, who sent it and whose tasks they are. */
interface Exchange {
  msg: RpcMessage;
  res: Response;
  caller: HttpCaller;
  scope: string;
}

const reply = (x: Exchange, result: unknown) => void x.res.status(200).json({ jsonrpc: '2.0', id: x.msg.id, result });
const fail = (x: Exchange, code: number, message: string, data?: unknown) =>
  void x.res.status(200).json({ jsonrpc: '2.0', id: x.msg.id, error: { code, message, ...(data === undefined ? {} : { data }) } });

/** A single JSON-RPC request, or undefined. */
function rpcRequest(body: unknown): RpcMessage | undefined {
  const msg = body as Partial<RpcMessage> | undefined;
  if (!msg || typeof msg !== 'object' || Array.isArray(msg) || msg.id === undefined || typeof msg.method !== 'string') return undefined;
  return msg as RpcMessage;
}

/** A 2026-07-28 request: its protocol version (header or per-request `_meta`) is of that era. */
function isModern(req: Request, msg: RpcMessage): boolean {
  const version = req.get('mcp-protocol-version') ?? (msg.params?._meta as Record<string, unknown> | undefined)?.[PROTOCOL_VERSION_META];
  return typeof version === 'string' && version >= '2026-07-28';
}

/**
 * 2025-11-25 tasks (task-augmented requests): the client asks for a task with `params.task`. The SDK
 * has no runtime for them, so `tools/call` with a task and `tasks/get|result|list|cancel` are handled
 * here, before the SDK.
 */
export class LegacyTasks {
  constructor(
    private readonly host: McpHost,
    private readonly store: TaskStore,
    private readonly catalog: ToolCatalog,
    private readonly cancellation: CallCancellation,
  ) {}

  /** Handles a 2025-11-25 task request; false lets the SDK have the message. */
  async handle(req: Request, res: Response, caller: HttpCaller, scope: string): Promise<boolean> {
    const msg = rpcRequest(req.body);
    if (!msg || isModern(req, msg)) return false;
    const x: Exchange = { msg, res, caller, scope };
    if (msg.method === 'tools/call' && msg.params?.task !== undefined) return (await this.callAsTask(x), true);
    if (msg.method === 'tasks/list') return (await this.list(x), true);
    if (!['tasks/get', 'tasks/cancel', 'tasks/result'].includes(msg.method)) return false;
    const found = await this.store.find(scope, msg.params?.taskId);
    if (!found) return (fail(x, -32602, `Unknown task: ${String(msg.params?.taskId)}`), true);
    if (msg.method === 'tasks/get') await this.get(x, found);
    else if (msg.method === 'tasks/cancel') await this.cancel(x, found);
    else await this.result(x, found);
    return true;
  }

  /** tools/call with `params.task`: the call is queued and answered at once with its task. */
  private async callAsTask(x: Exchange): Promise<void> {
    const params = x.msg.params ?? {};
    const name = String(params.name ?? '');
    const { tools, targets } = await this.catalog.list(x.caller.agent);
    const target = targets.get(name);
    if (!target) return fail(x, -32602, `Unknown tool: ${name}`);
    const readOnly = tools.find((tool) => tool.name === name)?.annotations.readOnlyHint === true;
    const requested = Number((params.task as { ttl?: unknown }).ttl);
    const ttl = Number.isFinite(requested) && requested > 0 ? Math.min(requested, MAX_TASK_TTL_MS) : DEFAULT_TTL_MS;
    const span = this.host.tracing.startSpan(`tools/call ${target.service} (task)`, { kind: 'server' });
    /** The job, once the queue holds it: from then on it may still run, whatever happens here. */
    let accepted: string | undefined;
    try {
      const args = (params.arguments ?? {}) as Record<string, unknown>;
      const meta = (params._meta ?? {}) as Record<string, unknown>;
      const request = await callRequest(this.host, { target, readOnly, args, meta, agent: x.caller.agent });
      const outcome = await this.host.submit({
        request,
        agent: x.caller.agent,
        correlationId: x.caller.correlationId ?? randomUUID(),
        traceparent: span.traceparent,
        waitMs: 0,
        onAccepted: (id, created) => void this.cancellation.accepted(id, created, undefined),
      });
      accepted = outcome.kind === 'ended' ? outcome.ended.id : outcome.id;
      const rec = await this.store.create({ scope: x.scope, id: accepted, ttl, listed: true });
      reply(x, { task: await this.store.legacyView({ id: accepted, rec }) });
    } catch (err) {
      const e = answerError(err);
      if (!isGatewayError(err) && e.code !== 'UNAVAILABLE')
        this.host.logger.error({ err, service: target.service }, 'tools/call (task) failed');
      if (e.code === 'UNAVAILABLE')
        this.host.logger.warn({ why: String(e.cause ?? e.message), service: target.service }, 'tools/call (task) UNAVAILABLE');
      // Accepted, but its task could not be stored (Redis away): no task to give, and the job may still run.
      if (accepted) {
        const late = afterAccepted(e, accepted);
        return fail(x, -32603, `${late.code}: ${late.message}`, late.toBody());
      }
      await this.refused(x, e.toBody(), ttl);
    } finally {
      span.end();
    }
  }

  /**
   * A call refused before the queue took it (bad arguments, open circuit, rate limit, full queue): a
   * task created `failed` (that revision's end for a tool call whose result is `isError`), whose
   * tasks/result is the tool error the same call without a task gets. Its id is no request's: nothing
   * was queued. When not even that can be stored (Redis away), a JSON-RPC error with the same error as its data.
   */
  private async refused(x: Exchange, error: ErrorBody, ttl: number): Promise<void> {
    const id = randomUUID();
    const task = await this.store
      .create({ scope: x.scope, id, ttl, listed: true, refused: error })
      .then((rec) => this.store.legacyView({ id, rec }))
      .catch(() => undefined);
    if (task) reply(x, { task });
    else fail(x, -32603, `${error.code}: ${error.message}`, error);
  }

  private async list(x: Exchange): Promise<void> {
    const tasks = [];
    for (const id of await this.store.listed(x.scope)) {
      const found = await this.store.find(x.scope, id);
      const task = found ? await this.store.legacyView(found) : undefined;
      if (task) tasks.push(task);
    }
    reply(x, { tasks });
  }

  private async get(x: Exchange, found: FoundTask): Promise<void> {
    const task = await this.store.legacyView(found);
    if (task) reply(x, task);
    else fail(x, -32602, `Task ${found.id} expired`);
  }

  private async cancel(x: Exchange, found: FoundTask): Promise<void> {
    const status = await this.host.broker.status(found.id);
    if (!status || isEnded(status.state)) return fail(x, -32602, `Task ${found.id} has already ended`);
    if (await this.cancellation.shared(found.id))
      return fail(x, -32602, `Task ${found.id} cannot be cancelled: another call joined its request, which runs on for it`);
    try {
      await this.host.broker.cancel(found.id);
    } catch (err) {
      return fail(x, -32602, `Task ${found.id} cannot be cancelled: ${toGatewayError(err).message}`);
    }
    reply(x, await this.store.legacyView(found));
  }

  private async result(x: Exchange, found: FoundTask): Promise<void> {
    const tool = found.rec.refused ? errorResult(found.rec.refused) : await this.jobToolResult(found, x.res);
    if (!tool) return fail(x, -32603, `Task ${found.id} has no result yet; ask again (tasks/get shows its status)`);
    reply(x, { ...tool, _meta: { ...(tool._meta ?? {}), 'io.modelcontextprotocol/related-task': { taskId: found.id } } });
  }

  /**
   * The tool result of a task's job, once it has ended: waited for (one subscription per process, as
   * for sync requests) at most RESULT_WAIT_MS and never past the client's disconnect; undefined when
   * the job has not ended by then (the client asks again).
   */
  private async jobToolResult({ id, rec }: FoundTask, res: Response): Promise<ToolResult | undefined> {
    const w = this.host.waiter.register(id);
    const gone = () => w.cancel();
    res.on('close', gone);
    try {
      const job = await this.store.job(id);
      const ended = (job ? endedResult(job) : undefined) ?? (await w.wait(Math.min(RESULT_WAIT_MS, Math.max(1000, rec.ttl))))?.result;
      return ended && (await checkedToolResult(this.host.registry, ended));
    } finally {
      w.cancel();
      res.off('close', gone);
    }
  }
}
