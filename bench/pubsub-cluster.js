/* eslint-disable no-console */
// node bench/pubsub-cluster.js: on a local Redis Cluster (3 masters, 0 and then 1 replica per
// master), what delivering N results to one subscriber process (the API) costs the cluster, for
//   classic: PUBLISH on one channel (`bench:results`, what the gateway uses on a single Redis), and
//   sharded: SPUBLISH on the record's channel (`bench:results:{rN}`, what it uses on a cluster),
// each published from the records' 16 slots. By default from a script call in the record's slot, as
// the gateway's finish script does (EVALSHA, KEYS[1] the request record; PUBSUB_VIA=command: plain
// PUBLISH / SPUBLISH, the first going to a random master, the second to the channel's master).
// Measured per message, summed over every node: Redis CPU (INFO cpu used_cpu_sys + used_cpu_user),
// commands (INFO commandstats), bytes written to clients and to replicas (INFO stats), cluster bus
// messages (CLUSTER INFO cluster_stats_messages_*_sent) and bus bytes (bytes_sent of every bus
// connection's two ends, from `ss -tin`), and the subscriber's own CPU and messages received.
// An idle window of the same cluster, measured the same way, gives what the cluster costs doing nothing.
//
// PUBSUB_N (default 50000 per run), PUBSUB_ROUNDS (2: each mode twice per cluster, in alternating
// order), PUBSUB_REPLICAS (default "0,1"), PUBSUB_BYTES (message size, default 400), PUBSUB_INFLIGHT
// (commands outstanding, default 64), PUBSUB_VIA (script | command). Writes
// bench/results/pubsub-cluster-latest.json.
const { fork, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const IORedis = require('ioredis');
const { otherLoad } = require('./lib/host-load');

const N = Number(process.env.PUBSUB_N ?? 50_000);
const ROUNDS = Number(process.env.PUBSUB_ROUNDS ?? 2);
const REPLICAS = (process.env.PUBSUB_REPLICAS ?? '0,1').split(',').map(Number);
const BYTES = Number(process.env.PUBSUB_BYTES ?? 400);
const INFLIGHT = Number(process.env.PUBSUB_INFLIGHT ?? 64);
const VIA = process.env.PUBSUB_VIA ?? 'script';
const IDLE_MS = 2000;
const PREFIX = 'bench';
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (process.argv[2] === 'subscriber') subscriber(JSON.parse(process.argv[3]));
else
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });

/**
 * The API's part: one process with a classic subscription (one connection, to some node) and sharded
 * ones (a connection to each master), as ioredis's Cluster makes them. Both stay subscribed for the
 * whole run: neither costs anything while the other kind is published.
 */
async function subscriber({ seeds, channel, shardChannels }) {
  const nodes = seeds.map((s) => ({ host: new URL(s).hostname, port: Number(new URL(s).port) }));
  const classic = new IORedis.Cluster(nodes);
  const sharded = new IORedis.Cluster(nodes, { shardedSubscribers: true });
  const counts = { message: 0, smessage: 0, bytes: 0 };
  classic.on('message', (_c, m) => {
    counts.message += 1;
    counts.bytes += m.length;
  });
  sharded.on('smessage', (_c, m) => {
    counts.smessage += 1;
    counts.bytes += m.length;
  });
  await classic.subscribe(channel);
  await Promise.all(shardChannels.map((c) => sharded.ssubscribe(c)));
  process.on('message', (msg) => {
    if (msg === 'snap') process.send({ ...counts, cpuUs: process.cpuUsage().user + process.cpuUsage().system });
    if (msg === 'quit') {
      classic.disconnect();
      sharded.disconnect();
      process.exit(0);
    }
  });
  process.send('ready');
}

function ask(child) {
  return new Promise((resolve) => {
    const on = (m) => {
      if (m && typeof m === 'object') {
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
    child.send('snap');
  });
}

/** Bytes sent over every cluster bus connection (both ends: each byte counted once, at its sender). */
function busBytes(busPorts) {
  const out = spawnSync('ss', ['-tinH', 'state', 'established'], { encoding: 'utf8' }).stdout ?? '';
  const lines = out.split('\n');
  let total = 0;
  for (let i = 0; i < lines.length; i++) {
    const m = /^\S*\s*\d+\s+\d+\s+\S+:(\d+)\s+\S+:(\d+)/.exec(lines[i]);
    if (!m || !(busPorts.has(Number(m[1])) || busPorts.has(Number(m[2])))) continue;
    total += Number(/bytes_sent:(\d+)/.exec(lines[i + 1] ?? '')?.[1] ?? 0);
  }
  return total;
}

/**
 * Socket syscalls (read, write+writev) of each pid while counting, by `perf stat` on the syscall
 * tracepoints: what a message costs depends on how many each read and write carry. Undefined where
 * perf cannot count them, or with PUBSUB_SYSCALLS=0.
 */
const SYSCALL_EVENTS = ['write', 'writev', 'read'].map((c) => `syscalls:sys_enter_${c}`).join(',');
let perfWorks;
function syscallCounter(pids) {
  if (process.env.PUBSUB_SYSCALLS === '0') return undefined;
  if (perfWorks === undefined) {
    const probe = spawnSync('perf', ['stat', '-x', ',', '-e', SYSCALL_EVENTS, '--', 'true'], { encoding: 'utf8' });
    perfWorks = probe.status === 0 && /^\d+,,syscalls:sys_enter_write,/m.test(probe.stderr ?? '');
  }
  if (!perfWorks) return undefined;
  const { spawn } = require('node:child_process');
  const runs = pids.map((pid) => {
    const perf = spawn('perf', ['stat', '-x', ',', '-e', SYSCALL_EVENTS, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let text = '';
    perf.stderr.on('data', (d) => (text += d));
    return { perf, done: new Promise((resolve) => perf.on('close', () => resolve(text))) };
  });
  return async () => {
    for (const r of runs) r.perf.kill('SIGINT');
    return (await Promise.all(runs.map((r) => r.done))).map((t) => {
      const c = Object.fromEntries([...t.matchAll(/^(\d+),,syscalls:sys_enter_(\w+)/gm)].map((m) => [m[2], Number(m[1])]));
      return { read: c.read ?? 0, write: (c.write ?? 0) + (c.writev ?? 0) };
    });
  };
}

const field = (text, name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? 0);

async function nodeReading(client) {
  const info = await client.info('cpu', 'commandstats', 'stats', 'replication');
  const cinfo = String(await client.call('CLUSTER', 'INFO'));
  let calls = 0;
  let rejected = 0;
  for (const m of info.matchAll(/^cmdstat_[\w|-]+:calls=(\d+),.*?rejected_calls=(\d+)/gm)) {
    calls += Number(m[1]);
    rejected += Number(m[2]);
  }
  return {
    cpu: field(info, 'used_cpu_sys') + field(info, 'used_cpu_user'),
    calls,
    rejected,
    netOut: field(info, 'total_net_output_bytes'),
    replOut: field(info, 'total_net_repl_output_bytes'),
    replOffset: field(info, 'master_repl_offset'),
    busSent: field(cinfo, 'cluster_stats_messages_sent'),
    publishSent: field(cinfo, 'cluster_stats_messages_publish_sent'),
    shardSent: field(cinfo, 'cluster_stats_messages_publishshard_sent'),
  };
}

async function snapshot(nodes, busPorts, sub) {
  const [readings, s] = await Promise.all([Promise.all(nodes.map((n) => nodeReading(n.client))), ask(sub)]);
  return { readings, bus: busBytes(busPorts), sub: s, at: performance.now() };
}

/** Per node and in all: what happened between two snapshots. Each reading's own INFO and CLUSTER INFO (2 calls) are taken out. */
function diff(a, b) {
  const nodes = a.readings.map((x, i) => {
    const y = b.readings[i];
    return {
      cpuS: y.cpu - x.cpu,
      calls: y.calls - x.calls - 2,
      rejected: y.rejected - x.rejected,
      netOut: y.netOut - x.netOut,
      replOut: y.replOut - x.replOut,
      busSent: y.busSent - x.busSent,
      publishSent: y.publishSent - x.publishSent,
      shardSent: y.shardSent - x.shardSent,
    };
  });
  const sum = (k) => nodes.reduce((s, n) => s + n[k], 0);
  return {
    ms: b.at - a.at,
    nodes,
    cpuS: sum('cpuS'),
    calls: sum('calls'),
    rejected: sum('rejected'),
    netOut: sum('netOut'),
    replOut: sum('replOut'),
    busSent: sum('busSent'),
    publishSent: sum('publishSent'),
    shardSent: sum('shardSent'),
    busBytes: b.bus - a.bus,
    received: b.sub.message + b.sub.smessage - a.sub.message - a.sub.smessage,
    subCpuUs: b.sub.cpuUs - a.sub.cpuUs,
  };
}

async function main() {
  const { startRedisCluster } = require('../libs/redis/dist');
  const { BrokerKeys, RECORD_SHARDS, recordShard } = require('../libs/broker/dist');
  const keys = new BrokerKeys(PREFIX);
  // Ids in every part of the records, 32 each, used in turn: the records' 16 slots all publish.
  const idsByPart = Array.from({ length: RECORD_SHARDS }, () => []);
  while (idsByPart.some((l) => l.length < 32)) {
    const id = randomUUID();
    const l = idsByPart[recordShard(id)];
    if (l.length < 32) l.push(id);
  }
  const ids = [];
  for (let i = 0; i < 32; i++) for (const l of idsByPart) ids.push(l[i]);
  // A result message as the finish script builds it: `id \n state \n` and the result's JSON.
  const message = (id) => {
    const head = `${id}\ncompleted\n{"id":"${id}","status":"success","data":{"ok":true,"item":{"id":42,"name":"Item 42"}},"metadata":{"service":"svc-a","operation":"echo","attempts":1,"queuedMs":1,"processingTime":2,"completedAt":"2026-12-06T22:00:00.000Z","correlationId":"`;
    const tail = '"}}';
    return head + 'c'.repeat(Math.max(0, BYTES - head.length - tail.length)) + tail;
  };
  console.log(`message: ${message(ids[0]).length} bytes; ${N} messages per run; via ${VIA}; ${INFLIGHT} in flight`);

  const results = [];
  for (const replicas of REPLICAS) {
    const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: replicas, nodeTimeoutMs: 5000 });
    const clients = [];
    let sub;
    try {
      console.log(
        `\ncluster: 3 masters, ${replicas} replica(s) each; nodes (port:pid) ${cluster.nodes.map((n) => `${n.port}:${n.pid}`).join(' ')}`,
      );
      const nodes = cluster.nodes.map((n) => {
        const client = new IORedis(n.url, { maxRetriesPerRequest: 1 });
        clients.push(client);
        return { ...n, client };
      });
      const lines = String(await nodes[0].client.call('CLUSTER', 'NODES'))
        .trim()
        .split('\n');
      const busPorts = new Set(lines.map((l) => Number(l.split(' ')[1].split('@')[1].split(',')[0])));
      for (const n of nodes) {
        const flags = lines.find((l) => l.split(' ')[1].startsWith(`127.0.0.1:${n.port}@`)).split(' ')[2];
        n.role = flags.split(',').includes('master') ? 'master' : 'replica';
      }
      const partsOn = new Map();
      for (let p = 0; p < RECORD_SHARDS; p++) {
        const port = (await cluster.masterFor(keys.request(idsByPart[p][0]))).port;
        partsOn.set(port, [...(partsOn.get(port) ?? []), p]);
      }
      console.log(`record parts per master: ${[...partsOn].map(([port, parts]) => `${port}: r${parts.join(',r')}`).join('; ')}`);

      sub = fork(__filename, [
        'subscriber',
        JSON.stringify({ seeds: cluster.seeds, channel: keys.resultsChannel(), shardChannels: keys.resultsShardChannels() }),
      ]);
      await new Promise((resolve, reject) => {
        sub.once('message', (m) => (m === 'ready' ? resolve() : reject(new Error(String(m)))));
        sub.once('exit', (code) => reject(new Error(`subscriber exited ${code}`)));
      });
      const seedNodes = cluster.seeds.map((s) => ({ host: '127.0.0.1', port: Number(new URL(s).port) }));
      const pub = new IORedis.Cluster(seedNodes);
      clients.push(pub);
      pub.defineCommand('publishIn', {
        numberOfKeys: 1,
        // As in finish.lua: the publish command is an argument, the key only places the call in the record's slot.
        lua: 'return redis.call(ARGV[1], ARGV[2], ARGV[3])',
      });
      const publishOne = (mode, i) => {
        const id = ids[i % ids.length];
        const channel = mode === 'classic' ? keys.resultsChannel() : keys.resultsShardChannel(id);
        const cmd = mode === 'classic' ? 'PUBLISH' : 'SPUBLISH';
        if (VIA === 'command') return mode === 'classic' ? pub.publish(channel, message(id)) : pub.spublish(channel, message(id));
        return pub.publishIn(keys.request(id), cmd, channel, message(id));
      };
      const publishMany = async (mode, count) => {
        let next = 0;
        let delivered = 0;
        await Promise.all(
          Array.from({ length: INFLIGHT }, async () => {
            while (next < count) {
              const i = next++;
              delivered += Number(await publishOne(mode, i));
            }
          }),
        );
        return delivered;
      };
      const settle = async (target) => {
        for (let i = 0; i < 200; i++) {
          const s = await ask(sub);
          if (s.message + s.smessage >= target) return;
          await sleep(25);
        }
      };
      // Warm-up: scripts loaded, connections made, slot map known, JIT.
      for (const mode of ['classic', 'sharded']) await publishMany(mode, 2000);
      await settle(4000);
      // Idle: the same readings over a quiet window.
      const i0 = await snapshot(nodes, busPorts, sub);
      await sleep(IDLE_MS);
      const idle = diff(i0, await snapshot(nodes, busPorts, sub));
      const idleRate = { cpuSPerMs: idle.cpuS / idle.ms, busSentPerMs: idle.busSent / idle.ms, busBytesPerMs: idle.busBytes / idle.ms };
      console.log(
        `idle: ${round((idle.cpuS * 1e6) / idle.ms, 1)} µs Redis CPU per ms (all nodes), ${round(idle.busSent / (idle.ms / 1000), 1)} bus messages/s, ${round(idle.busBytes / (idle.ms / 1000))} bus bytes/s, ${idle.calls} commands`,
      );
      for (let r = 0; r < ROUNDS; r++) {
        for (const mode of r % 2 === 0 ? ['classic', 'sharded'] : ['sharded', 'classic']) {
          const before = await snapshot(nodes, busPorts, sub);
          const others = otherLoad([process.pid, sub.pid, ...cluster.nodes.map((n) => n.pid)]);
          const syscalls = syscallCounter([...nodes.map((n) => n.pid), sub.pid]);
          // perf needs a moment to attach.
          if (syscalls) await sleep(300);
          const t0 = performance.now();
          const receivers = await publishMany(mode, N);
          const publishMs = performance.now() - t0;
          const receivedBefore = before.sub.message + before.sub.smessage;
          await settle(receivedBefore + N);
          const sys = await syscalls?.();
          const otherCores = others();
          const d = diff(before, await snapshot(nodes, busPorts, sub));
          const per = (x, k = 1) => round((x * k) / N, 3);
          const row = {
            replicas,
            mode,
            via: VIA,
            messages: N,
            receiversReported: receivers,
            received: d.received,
            msgsPerS: Math.round(N / (publishMs / 1000)),
            redisCpuUsPerMsg: per(d.cpuS, 1e6),
            redisCpuUsPerMsgLessIdle: per(d.cpuS - idleRate.cpuSPerMs * d.ms, 1e6),
            redisCpuUsPerMsgByNode: d.nodes.map((n, i) => `${nodes[i].role[0]}${nodes[i].port}:${per(n.cpuS, 1e6)}`),
            commandsPerMsg: per(d.calls),
            rejectedCalls: d.rejected,
            clientBytesOutPerMsg: per(d.netOut),
            replBytesOutPerMsg: per(d.replOut),
            busMessagesPerMsg: per(d.busSent),
            busMessagesPerMsgLessIdle: per(d.busSent - idleRate.busSentPerMs * d.ms),
            busPublishPerMsg: per(d.publishSent),
            busPublishShardPerMsg: per(d.shardSent),
            busBytesPerMsg: per(d.busBytes),
            busBytesPerMsgLessIdle: per(d.busBytes - idleRate.busBytesPerMs * d.ms),
            subscriberCpuUsPerMsg: per(d.subCpuUs),
            ...(sys
              ? {
                  // Per message: every Redis node's reads and writes summed, and the subscriber's.
                  redisReadsPerMsg: per(sys.slice(0, nodes.length).reduce((a, x) => a + x.read, 0)),
                  redisWritesPerMsg: per(sys.slice(0, nodes.length).reduce((a, x) => a + x.write, 0)),
                  redisSyscallsByNode: sys
                    .slice(0, nodes.length)
                    .map((x, i) => `${nodes[i].role[0]}${nodes[i].port}:${per(x.read)}/${per(x.write)}`),
                  subscriberReadsPerMsg: per(sys[nodes.length].read),
                }
              : {}),
            windowMs: Math.round(d.ms),
            otherCores,
          };
          results.push(row);
          console.log(
            `${replicas} replica(s) ${mode.padEnd(7)} ${String(row.msgsPerS).padStart(6)} msg/s  received ${row.received}/${N}  Redis CPU ${row.redisCpuUsPerMsg} µs/msg (less idle ${row.redisCpuUsPerMsgLessIdle}; ${row.redisCpuUsPerMsgByNode.join(' ')})  bus ${row.busMessagesPerMsg} msgs/msg (publish ${row.busPublishPerMsg}, publishshard ${row.busPublishShardPerMsg}), ${row.busBytesPerMsg} B/msg  client out ${row.clientBytesOutPerMsg} B/msg  repl out ${row.replBytesOutPerMsg} B/msg  commands ${row.commandsPerMsg}/msg rejected ${row.rejectedCalls}  subscriber CPU ${row.subscriberCpuUsPerMsg} µs/msg  other processes ${otherCores} cores${sys ? `  syscalls/msg: Redis reads ${row.redisReadsPerMsg} writes ${row.redisWritesPerMsg} (${row.redisSyscallsByNode.join(' ')}), subscriber reads ${row.subscriberReadsPerMsg}` : ''}`,
          );
        }
      }
    } finally {
      if (sub && sub.exitCode === null) {
        sub.send('quit');
        await new Promise((r) => {
          const t = setTimeout(() => {
            sub.kill('SIGKILL');
            r();
          }, 2000);
          sub.once('exit', () => {
            clearTimeout(t);
            r();
          });
        });
      }
      for (const c of clients) c.disconnect();
      await cluster.stop();
    }
  }
  console.log(`\n${markdown(results)}`);
  const out = path.join(__dirname, 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(
    path.join(out, 'pubsub-cluster-latest.json'),
    `${JSON.stringify({ at: new Date().toISOString(), settings: { N, ROUNDS, BYTES, INFLIGHT, VIA }, results }, null, 2)}\n`,
  );
}

function markdown(rows) {
  return [
    '| replicas/master | mode | msg/s | received | Redis CPU µs/msg (all nodes) | less idle | bus msgs/msg | bus bytes/msg | client bytes out/msg | repl bytes/msg | subscriber CPU µs/msg | Redis reads / writes per msg | subscriber reads/msg | other processes (cores) |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.replicas} | ${r.mode} | ${r.msgsPerS} | ${r.received}/${r.messages} | ${r.redisCpuUsPerMsg} | ${r.redisCpuUsPerMsgLessIdle} | ${r.busMessagesPerMsg} | ${r.busBytesPerMsg} | ${r.clientBytesOutPerMsg} | ${r.replBytesOutPerMsg} | ${r.subscriberCpuUsPerMsg} | ${r.redisReadsPerMsg ?? '–'} / ${r.redisWritesPerMsg ?? '–'} | ${r.subscriberReadsPerMsg ?? '–'} | ${r.otherCores} |`,
    ),
    '',
  ].join('\n');
}
