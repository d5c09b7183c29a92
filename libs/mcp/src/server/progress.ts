import type { RedisClient } from '@mcp-gateway/redis';
import type { Broker, Lane } from '@mcp-gateway/broker';
import { isEnded, type RequestState } from '@mcp-gateway/protocol';

/** How often a waiting call's state is read for its progress notifications. */
const PROGRESS_POLL_MS = 500;

const STATE_MESSAGE: Record<Exclude<RequestState, 'queued'>, string> = {
  active: 'calling the backend',
  retrying: 'retrying after a failure',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
};

export interface ProgressTarget {
  jobId: string;
  service: string;
  progressToken: string | number;
  notify(notification: { method: 'notifications/progress'; params: Record<string, unknown> }): Promise<void>;
}

/** A lane's waiting jobs and where `jobId` is among them (1 = next), or undefined when it is not waiting there. */
async function laneStanding(
  redis: RedisClient,
  broker: Broker,
  service: string,
  lane: Lane,
  jobId: string,
): Promise<{ size: number; position: number | undefined }> {
  const wait = broker.keys.queueKey(service, 'wait', lane);
  const prioritized = broker.keys.queueKey(service, 'prioritized', lane);
  const [[, waiting], [, inWait], [, ranked], [, rank]] = (await redis
    .multi()
    .llen(wait)
    .lpos(wait, jobId)
    .zcard(prioritized)
    .zrank(prioritized, jobId)
    .exec()) as [[null, number], [null, number | null], [null, number], [null, number | null]];
  // Unprioritized jobs are taken from the wait list's right end first (LPOS counts from the left),
  // then the prioritized set in order.
  const position = inWait !== null ? waiting - inWait : rank === null ? undefined : waiting + rank + 1;
  return { size: waiting + ranked, position };
}

/** Where a waiting job stands in its service's queue (1 = next): the urgent lane's jobs go first. */
async function queuePosition(redis: RedisClient, broker: Broker, service: string, jobId: string): Promise<number | undefined> {
  const [urgent, normal] = await Promise.all([
    laneStanding(redis, broker, service, 'urgent', jobId),
    laneStanding(redis, broker, service, 'normal', jobId),
  ]);
  if (urgent.position !== undefined) return urgent.position;
  return normal.position === undefined ? undefined : urgent.size + normal.position;
}

/**
 * Progress notifications while a call waits: its place in the queue, the backend call, retries. One
 * notification per change; returns the function that stops them. They also stop once the job has
 * ended, and never keep the process alive: a call that does not return (a bug) costs no poll.
 */
export function reportProgress(redis: RedisClient, broker: Broker, target: ProgressTarget): () => void {
  let last = '';
  let progress = 0;
  let busy = false;
  const report = async () => {
    const status = await broker.status(target.jobId).catch(() => undefined);
    if (!status) return;
    if (isEnded(status.state)) clearInterval(timer);
    let message: string;
    if (status.state === 'queued') {
      const position = await queuePosition(redis, broker, target.service, target.jobId).catch(() => undefined);
      message = `waiting in the queue${position ? ` (position ${position})` : ''}`;
    } else message = STATE_MESSAGE[status.state];
    if (message === last) return;
    last = message;
    progress += 1;
    const params = { progressToken: target.progressToken, progress, message };
    await target.notify({ method: 'notifications/progress', params }).catch(() => undefined);
  };
  const tick = async () => {
    if (busy) return;
    busy = true;
    await report().finally(() => (busy = false));
  };
  const timer = setInterval(() => void tick(), PROGRESS_POLL_MS).unref();
  void tick();
  return () => clearInterval(timer);
}
