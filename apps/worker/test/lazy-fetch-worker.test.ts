import { Queue, Worker } from 'bullmq';
import Redis from 'ioredis';
import { startRedisServer, uniquePrefix, type TestRedis } from '@mcp-gateway/testing';
import { LazyFetchWorker } from '../src/lazy-fetch-worker';

/**
 * The lazy-fetch worker against BullMQ's own, on a private Redis (its command counts are this test's
 * alone): every job is taken and run however the jobs come, with fewer fetches.
 */
let redis: TestRedis;
let client: Redis;

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url, { maxRetriesPerRequest: null });
});

afterAll(async () => {
  client.disconnect();
  await redis.stop();
});

/** RPOPLPUSH calls so far: one per fetch from the wait list, found or empty. */
async function fetches(): Promise<number> {
  const stats = (await client.info('commandstats')).split('\n').find((l) => l.startsWith('cmdstat_rpoplpush:'));
  return Number(/calls=(\d+)/.exec(stats ?? '')?.[1] ?? 0);
}

/** Runs `jobs` jobs through a worker of the kind given, added in bursts; answers the fetches per job and the jobs run. */
async function run(kind: typeof Worker, jobs: number, burst: number): Promise<{ fetchesPerJob: number; ran: string[] }> {
  const prefix = uniquePrefix('lazy');
  const queue = new Queue('{svc}', { connection: client, prefix });
  const ran: string[] = [];
  const worker = new kind(
    '{svc}',
    async (job) => {
      await new Promise((r) => setTimeout(r, 2));
      ran.push(String(job.id));
    },
    { connection: client, prefix, concurrency: 8, removeOnComplete: { count: 0 } },
  );
  await worker.waitUntilReady();
  const before = await fetches();
  for (let i = 0; i < jobs; i += burst) {
    await queue.addBulk(
      Array.from({ length: Math.min(burst, jobs - i) }, (_, n) => ({ name: 'op', data: {}, opts: { jobId: `j${i + n}` } })),
    );
    // Each burst is run before the next comes: the queue is empty when its last jobs finish.
    for (let t = 0; t < 400 && ran.length < Math.min(i + burst, jobs); t++) await new Promise((r) => setTimeout(r, 5));
  }
  const used = (await fetches()) - before;
  await worker.close();
  await queue.close();
  return { fetchesPerJob: used / jobs, ran };
}

it('runs every job, one at a time or in bursts, fetching less than BullMQ’s worker', async () => {
  for (const burst of [1, 5]) {
    const plain = await run(Worker, 60, burst);
    const lazy = await run(LazyFetchWorker as unknown as typeof Worker, 60, burst);
    const all = Array.from({ length: 60 }, (_, i) => `j${i}`).sort();
    expect([...plain.ran].sort()).toEqual(all);
    expect([...lazy.ran].sort()).toEqual(all);
    // A job found costs one fetch; BullMQ's worker also fetches as each job ends and finds the queue empty.
    expect(lazy.fetchesPerJob).toBeGreaterThanOrEqual(1);
    expect(lazy.fetchesPerJob).toBeLessThan(plain.fetchesPerJob);
  }
}, 60_000);
