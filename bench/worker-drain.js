/* eslint-disable no-console */
// node bench/worker-drain.js [rounds] [jobs]: the worker's CPU per job alone, the gateway's against
// the bare design's, with nothing else running while it is read.
//
// Each round fills a paused queue with the same number of jobs (the gateway's through its API with
// `Prefer: respond-async`, the bare design's with BullMQ's addBulk), resumes it, and reads the worker
// process's CPU (utime + stime, all its threads) from the resume until the queue is empty. The two
// designs alternate (ABBA), so a change in the machine's speed lands on both. What `bench/run.js`
// reads under load mixes the worker with its API, autocannon and Redis sharing two cores; this
// reads the worker only, at saturation, and is steady enough to see a few microseconds per job.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Queue } = require('bullmq');
const IORedis = require('ioredis');
const { Pool } = require('undici');
const { startRedisServer, freePort } = require('../libs/redis/dist');
const { BrokerKeys, LANES } = require('../libs/broker/dist');

const ROOT = path.resolve(__dirname, '..');
const ROUNDS = Number(process.argv[2] ?? 3);
const JOBS = Number(process.argv[3] ?? 8000);
const procs = [];
/** DRAIN_PROFILE=<dir>: both workers write V8 CPU profiles there (bench/profile-summary.js <dir>). */
const PROFILE = process.env.DRAIN_PROFILE;

/** Starts a process; its lines go to a file (as in bench/run.js), read until one says it is ready. */
function start(file, env, ready) {
  const args = PROFILE && /worker/.test(file) ? ['--cpu-prof', '--cpu-prof-interval=250', `--cpu-prof-dir=${PROFILE}`] : [];
  const log = path.join(os.tmpdir(), `drain-${path.basename(path.dirname(path.dirname(file)))}-${path.basename(file)}.log`);
  const child = spawn(process.execPath, [...args, file], {
    env: { ...process.env, ...env },
    stdio: ['ignore', fs.openSync(log, 'w'), 'inherit'],
  });
  procs.push(child);
  return new Promise((resolve, reject) => {
    const poll = setInterval(() => {
      if (fs.readFileSync(log, 'utf8').split('\n').some(ready)) {
        clearInterval(poll);
        resolve(child);
      }
    }, 50);
    child.on('exit', (code) => {
      clearInterval(poll);
      reject(new Error(`${file} exited ${code}`));
    });
  });
}

const ticks = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const jsonLine = (msg) => (line) => {
  try {
    return JSON.parse(line).msg === msg;
  } catch {
    return false;
  }
};

async function main() {
  const redis = await startRedisServer();
  const conn = new IORedis(redis.url, { maxRetriesPerRequest: null });
  const [pBackend, pApi] = await Promise.all([freePort(), freePort()]);
  await start(path.join(__dirname, 'lib/backend.js'), { PORT: String(pBackend) }, (l) => l === 'ready');
  const target = `http://127.0.0.1:${pBackend}`;
  const bare = await start(path.join(__dirname, 'lib/bare-worker.js'), { REDIS_URL: redis.url, TARGET: target }, (l) => l === 'ready');
  const gwEnv = {
    REDIS_URL: redis.url,
    MCP_REDIS_KEY_PREFIX: 'bench',
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.DRAIN_LOG_LEVEL ?? 'info',
    MCP_SERVICES: 'bench',
    MCP_SERVICE_BENCH_ENDPOINT: target,
    MCP_SERVICE_BENCH_RATE_LIMIT_RPM: '6000000',
    MCP_SERVICE_BENCH_BURST_LIMIT: '1000000',
    MCP_SERVICE_BENCH_CONCURRENCY: '50',
    MCP_SERVICE_BENCH_MAX_QUEUE_DEPTH: String(JOBS * 2),
    MCP_SERVICE_BENCH_TIMEOUT: '600000',
    WORKER_SERVICES: 'bench',
  };
  // DRAIN_LOG_LEVEL=warn: without the per-request line (nor the line that says the worker is ready: then its queue's workers are asked).
  const worker = await start(
    path.join(ROOT, 'apps/worker/dist/main.js'),
    gwEnv,
    gwEnv.LOG_LEVEL === 'info' ? jsonLine('worker ready') : () => true,
  );
  await start(path.join(ROOT, 'apps/api/dist/main.js'), { ...gwEnv, LOG_LEVEL: 'info', PORT: String(pApi) }, jsonLine('api ready'));
  const keys = new BrokerKeys('bench');
  const gwQueues = LANES.map((lane) => new Queue(keys.queueName('bench', lane), { connection: conn, prefix: 'bench' }));
  const bareQueue = new Queue('bare', { connection: conn, prefix: 'bare' });
  while ((await gwQueues[0].getWorkers()).length === 0) await sleep(100);
  const api = new Pool(`http://127.0.0.1:${pApi}`, { connections: 16, pipelining: 1 });
  const body = JSON.stringify({ service: 'bench', operation: 'echo', parameters: { item: 42 } });
  let seq = 0;

  const fill = {
    async bare() {
      for (let i = 0; i < JOBS; i += 500) {
        const n = Math.min(500, JOBS - i);
        await bareQueue.addBulk(
          Array.from({ length: n }, () => ({
            name: 'call',
            data: JSON.parse(body),
            opts: { jobId: `b${++seq}`, removeOnComplete: true, removeOnFail: true },
          })),
        );
      }
    },
    async gateway() {
      let next = 0;
      const one = async () => {
        while (next < JOBS) {
          next++;
          const r = await api.request({
            method: 'POST',
            path: '/mcp/request',
            headers: { 'content-type': 'application/json', prefer: 'respond-async' },
            body,
          });
          await r.body.text();
          if (r.statusCode !== 202) throw new Error(`gateway answered ${r.statusCode}`);
        }
      };
      await Promise.all(Array.from({ length: 16 }, one));
    },
  };
  const queuesOf = { bare: [bareQueue], gateway: gwQueues };
  const pidOf = { bare: bare.pid, gateway: worker.pid };
  const left = async (qs) => {
    let n = 0;
    for (const q of qs) {
      const c = await q.getJobCounts('wait', 'prioritized', 'active', 'delayed', 'paused');
      n += c.wait + c.prioritized + c.active + c.delayed + c.paused;
    }
    return n;
  };

  async function drain(design) {
    const qs = queuesOf[design];
    await Promise.all(qs.map((q) => q.pause()));
    await fill[design]();
    if ((await left(qs)) < JOBS) throw new Error(`${design}: jobs were taken while the queue was paused`);
    await sleep(300);
    const t0 = ticks(pidOf[design]);
    const w0 = process.hrtime.bigint();
    await Promise.all(qs.map((q) => q.resume()));
    while ((await left(qs)) > 0) await sleep(10);
    const cpuMs = (ticks(pidOf[design]) - t0) * 10;
    const wallMs = Number(process.hrtime.bigint() - w0) / 1e6;
    return { cpuUsPerJob: (cpuMs * 1000) / JOBS, jobsPerS: (JOBS * 1000) / wallMs };
  }

  // A first drain of each, not counted: JIT and connections.
  await drain('gateway');
  await drain('bare');
  const got = { bare: [], gateway: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const d of r % 2 ? ['gateway', 'bare', 'bare', 'gateway'] : ['bare', 'gateway', 'gateway', 'bare']) got[d].push(await drain(d));
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const pairs = got.bare.map((b, i) => got.gateway[i].cpuUsPerJob / b.cpuUsPerJob);
  for (const d of ['bare', 'gateway'])
    console.log(
      `${d.padEnd(8)} cpu/job ${got[d].map((x) => x.cpuUsPerJob.toFixed(0)).join(' ')} µs (median ${median(got[d].map((x) => x.cpuUsPerJob)).toFixed(1)}), jobs/s median ${median(got[d].map((x) => x.jobsPerS)).toFixed(0)}`,
    );
  console.log(`gateway ÷ bare, worker CPU per job: ${pairs.map((x) => x.toFixed(2)).join(' ')} (median ${median(pairs).toFixed(3)})`);
  await api.close();
  for (const p of procs) p.kill('SIGTERM');
  await conn.quit();
  await redis.stop();
}

for (const signal of ['SIGINT', 'SIGTERM'])
  process.on(signal, () => {
    for (const p of procs) p.kill('SIGKILL');
    process.exit(1);
  });

main().catch((err) => {
  console.error(err);
  for (const p of procs) p.kill('SIGKILL');
  process.exit(1);
});
