import { Worker, type Job, type JobJson } from 'bullmq';
import type { GatewayJobData } from '@mcp-gateway/broker';

/**
 * A BullMQ Worker that fetches the next job as it finishes one only while its queue may hold one.
 *
 * BullMQ's worker takes its next job in the same script that ends the last one. When the queue is
 * empty that fetch finds nothing, and under a steady load many finishes come at such a moment:
 * about five Redis commands each for nothing. Once a fetch has found the queue empty, this worker
 * ends its jobs without fetching: its main loop is then waiting on the queue's marker (which every
 * add sets), wakes for the next job and fetches until the queue is empty again. Nothing is left
 * waiting: a job added while no fetch runs sets the marker the main loop waits on.
 */
export class LazyFetchWorker extends Worker<GatewayJobData> {
  /** The last fetch (by a finish or by the main loop) found the queue empty. */
  private queueSeenEmpty = false;

  protected override async nextJobFromJobData(
    jobData?: JobJson,
    jobId?: string,
    token?: string,
  ): Promise<Job<GatewayJobData, unknown, string>> {
    this.queueSeenEmpty = !jobData;
    return super.nextJobFromJobData(jobData, jobId, token);
  }

  override processJob(
    job: Job<GatewayJobData, unknown, string>,
    token: string,
    fetchNextCallback: () => boolean = () => true,
  ): Promise<void | Job<GatewayJobData, unknown, string>> {
    return super.processJob(job, token, () => fetchNextCallback() && !this.queueSeenEmpty);
  }
}
