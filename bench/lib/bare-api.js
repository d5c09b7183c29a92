// Baseline 3, API half: the bare architecture — express, queue.add, one pub/sub result channel.
// No validation, no resilience, no records: the floor of this design.
const express = require('express');
const { Queue } = require('bullmq');
const IORedis = require('ioredis');
const { randomUUID } = require('node:crypto');
const connection = new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const sub = new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const queue = new Queue('bare', { connection, prefix: 'bare' });
const pending = new Map();
sub.subscribe('bare:results');
sub.on('message', (_c, msg) => {
  const i = msg.indexOf('\n');
  const id = msg.slice(0, i);
  const done = pending.get(id);
  if (done) {
    pending.delete(id);
    done(msg.slice(i + 1));
  }
});
const app = express();
app.use(express.json());
app.post('/request', async (req, res) => {
  const id = randomUUID();
  const result = new Promise((resolve) => pending.set(id, resolve));
  await queue.add('call', req.body, { jobId: id, removeOnComplete: true, removeOnFail: true });
  res.type('application/json').send(await result);
});
const server = app.listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('ready\n'));
server.keepAliveTimeout = 65_000;
// Exits normally on SIGTERM, so that a CPU profile (BENCH_PROFILE=1) is written.
process.on('SIGTERM', () => process.exit(0));
