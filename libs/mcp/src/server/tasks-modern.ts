import * as z from 'zod';
import { ProtocolError, ProtocolErrorCode, type Server } from '@modelcontextprotocol/server';
import type { CallCancellation } from './cancellation';
import { MAX_TASK_TTL_MS, type FoundTask, type TaskStore } from './task-store';

/** The params of tasks/get, tasks/update and tasks/cancel: made once (a zod schema is costly to build, and a server is built per request). */
const BY_TASK_ID = { params: z.looseObject({ taskId: z.string() }) };

/**
 * 2026-07-28 tasks (the `io.modelcontextprotocol/tasks` extension, SEP-2663): the server decides. A
 * call from a client that declares the extension and is still running after `mcp.taskAfterMs` is
 * answered with `resultType: "task"`; tasks/get, tasks/update and tasks/cancel are registered on the
 * SDK's modern server.
 */
export class ModernTasks {
  constructor(
    private readonly store: TaskStore,
    private readonly cancellation: CallCancellation,
    private readonly resultTtlMs: number,
  ) {}

  /**
   * Makes the running job a task and answers the call with it (`resultType: "task"`). The task
   * lives as long as the job's result will: the rest of its deadline, then the result TTL.
   */
  async created(scope: string, id: string): Promise<Record<string, unknown>> {
    const gone = () => new ProtocolError(ProtocolErrorCode.InternalError, `The request ${id} disappeared before its task was created`);
    const job = await this.store.job(id);
    if (!job) throw gone();
    const ttl = Math.min((job.result ? 0 : Math.max(0, job.deadline - Date.now())) + this.resultTtlMs, MAX_TASK_TTL_MS);
    const rec = await this.store.create({ scope, id, ttl, listed: false });
    const task = await this.store.modernView({ id, rec }, job);
    if (!task) throw gone();
    // A CreateTaskResult never carries the result, even when the job ended a moment ago: tasks/get has it.
    const { result: _result, ...seed } = task;
    return { ...seed, resultType: 'task' };
  }

  /** tasks/get, tasks/update and tasks/cancel on a 2026-07-28 server of this scope. */
  register(server: Server, scope: string): void {
    const known = async (taskId: string): Promise<FoundTask> => {
      const found = await this.store.find(scope, taskId);
      if (!found) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown task: ${taskId}`);
      return found;
    };
    server.setRequestHandler('tasks/get', BY_TASK_ID, async (params) => {
      const task = await this.store.modernView(await known(params.taskId));
      if (!task) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown task: ${params.taskId}`);
      return task;
    });
    // No gateway task asks for input, so a known task's update is acknowledged and changes nothing.
    server.setRequestHandler('tasks/update', BY_TASK_ID, async (params) => (await known(params.taskId), {}));
    // A job no other call joined is cancelled (a running one's backend call is abandoned); one
    // another call joined ends as it would have. The ack is the same either way, as the spec asks.
    server.setRequestHandler('tasks/cancel', BY_TASK_ID, async (params) => {
      const found = await known(params.taskId);
      await this.cancellation.cancelOwn(found.id);
      return {};
    });
  }
}
