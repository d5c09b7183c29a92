import type { RedisClient } from '@mcp-gateway/redis';
import { isEnded, type ErrorBody, type MCPResponse, type RequestState } from '@mcp-gateway/protocol';
import type { Broker, RequestRecord } from '@mcp-gateway/broker';
import type { ServiceRegistry } from '@mcp-gateway/registry';
import { checkedToolResult } from './output';

/**
 * MCP tasks, both generations, over one store: a task's id IS the queue job id, so any API replica
 * answers for it and `GET /mcp/requests/:id` answers for the same id (a refused 2025-11-25 call's
 * task aside: it has no job). Calls that joined one job share its task id, and then none of them
 * cancels it (see callCancellation).
 */
export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';
export const MAX_TASK_TTL_MS = 24 * 3_600_000;
const POLL_INTERVAL_MS = 500;

interface TaskRecord {
  scope: string;
  createdAt: string;
  ttl: number;
  /** A 2025-11-25 call refused before the queue took it: the task failed at once, with this error. */
  refused?: ErrorBody;
}

export interface FoundTask {
  id: string;
  rec: TaskRecord;
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

/** The ended job's result, or undefined while it runs. */
export const endedResult = (job: RequestRecord): MCPResponse | undefined => (isEnded(job.state) ? job.result : undefined);

/** Task records in Redis, and the task views of both generations built from them and their jobs. */
export class TaskStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly broker: Broker,
    private readonly registry: ServiceRegistry,
  ) {}

  // A scope's tasks and their list share one hash tag, so a MULTI over both is one slot on a cluster.
  private taskKey(scope: string, id: string): string {
    return `${this.prefix}:{tasks-${scope}}:task:${id}`;
  }

  private listKey(scope: string): string {
    return `${this.prefix}:{tasks-${scope}}:list`;
  }

  /**
   * Stores the task before it is announced, so a tasks/get that follows at once finds it. `listed`:
   * 2025-11-25 tasks go on their scope's tasks/list; 2026-07-28 ones do not (that revision has no
   * tasks/list, and without sessions a scope can be every anonymous caller).
   */
  async create(task: { scope: string; id: string; ttl: number; listed: boolean; refused?: ErrorBody }): Promise<TaskRecord> {
    const { scope, id, ttl, refused } = task;
    const rec: TaskRecord = { scope, createdAt: new Date().toISOString(), ttl, ...(refused ? { refused } : {}) };
    const tx = this.redis.multi().set(this.taskKey(scope, id), JSON.stringify(rec), 'PX', ttl);
    if (task.listed) {
      const list = this.listKey(scope);
      tx.zadd(list, Date.now(), id).zremrangebyrank(list, 0, -1001).pexpire(list, MAX_TASK_TTL_MS);
    }
    const stored = await tx.exec();
    const failed = stored?.find(([err]) => err);
    if (!stored || failed) throw failed?.[0] ?? new Error('the task could not be stored');
    return rec;
  }

  /** A task of this scope; another session's (or agent's) task is as good as unknown. */
  async find(scope: string, taskId: unknown): Promise<FoundTask | undefined> {
    if (typeof taskId !== 'string') return undefined;
    const raw = await this.redis.get(this.taskKey(scope, taskId));
    const rec = raw ? (JSON.parse(raw) as TaskRecord) : undefined;
    return rec && rec.scope === scope ? { id: taskId, rec } : undefined;
  }

  /** The ids on a scope's 2025-11-25 tasks/list, newest first. */
  listed(scope: string): Promise<string[]> {
    return this.redis.zrevrange(this.listKey(scope), 0, 99);
  }

  job(id: string): Promise<RequestRecord | undefined> {
    return this.broker.records.get(id);
  }

  async legacyView({ id, rec }: FoundTask): Promise<Record<string, unknown> | undefined> {
    const fixed = { ttl: rec.ttl, pollInterval: POLL_INTERVAL_MS };
    if (rec.refused) {
      const statusMessage = `${rec.refused.code}: ${rec.refused.message}`;
      return { taskId: id, createdAt: rec.createdAt, lastUpdatedAt: rec.createdAt, statusMessage, status: 'failed', ...fixed };
    }
    const job = await this.job(id);
    if (!job) return undefined;
    return { ...common(id, rec, job), status: LEGACY_STATUS[job.state], ...fixed };
  }

  /**
   * The 2026-07-28 detailed task. A call that reached its end is `completed` with the tool result,
   * `isError` included (a backend failure is the tool's answer, as in a direct call); `failed` is
   * for JSON-RPC errors, which a queued job never ends with.
   */
  async modernView({ id, rec }: FoundTask, given?: RequestRecord): Promise<Record<string, unknown> | undefined> {
    const job = given ?? (await this.job(id));
    if (!job) return undefined;
    const base = { ...common(id, rec, job), ttlMs: rec.ttl, pollIntervalMs: POLL_INTERVAL_MS };
    if (job.state === 'cancelled') return { ...base, status: 'cancelled' };
    const ended = endedResult(job);
    if (!ended) return { ...base, status: 'working' };
    return { ...base, status: 'completed', result: { resultType: 'complete', ...(await checkedToolResult(this.registry, ended)) } };
  }
}

/** The fields both generations share, from the job's record: updated when it was accepted, then when it ended. */
function common(id: string, rec: TaskRecord, job: RequestRecord) {
  const error = job.result?.error;
  return {
    taskId: id,
    createdAt: rec.createdAt,
    lastUpdatedAt: job.result ? job.result.metadata.completedAt : new Date(job.acceptedAt).toISOString(),
    statusMessage: error ? `${error.code}: ${error.message}` : job.state,
  };
}
