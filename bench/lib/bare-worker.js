// Baseline 3, worker half: a BullMQ worker calling the backend and publishing the result.
const { Worker } = require('bullmq');
const IORedis = require('ioredis');
const { Pool } = require('undici');
const connection = new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const pub = new IORedis(process.env.REDIS_URL);
const pool = new Pool(process.env.TARGET, { connections: 64 });
const worker = new Worker(
  'bare',
  async (job) => {
    const r = await pool.request({
      method: 'POST',
      path: '/echo',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(job.data),
    });
    const text = await r.body.text();
    await pub.publish('bare:results', `${job.id}\n${text}`);
  },
  { connection, prefix: 'bare', concurrency: 50 },
);
worker.waitUntilReady().then(() => process.stdout.write('ready\n'));
// Exits normally on SIGTERM, so that a CPU profile (BENCH_PROFILE=1) is written.
process.on('SIGTERM', () => process.exit(0));
