import { Worker } from 'bullmq';
import { testRedis } from './prefix';

/**
 * What a worker that dies mid-run leaves: the job taken (active, its start stamped on it) and its
 * lock left to expire after `lockMs`. A live worker's stalled check then hands it back to the queue,
 * counted as stalled, as BullMQ does for a worker that crashed. Resolves once the job is taken.
 */
export async function takeAndAbandon(prefix: string, queueName: string, jobId: string, lockMs = 300): Promise<void> {
  const connection = testRedis();
  const worker = new Worker(queueName, null, { connection, prefix, autorun: false, lockDuration: lockMs });
  try {
    for (let tries = 0; tries < 50; tries += 1) {
      const job = await worker.getNextJob(`abandoned-${jobId}`, { block: false });
      if (job?.id === jobId) return;
      if (job) throw new Error(`takeAndAbandon: took ${job.id}, not ${jobId}: the queue must hold only the job to abandon`);
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`takeAndAbandon: job ${jobId} never came`);
  } finally {
    // Forced: nothing waits for the job, and its lock is not extended any more.
    await worker.close(true);
    connection.disconnect();
  }
}
