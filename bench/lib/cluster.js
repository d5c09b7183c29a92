/* eslint-disable no-console */
// BENCH_CLUSTER=1 node bench/run.js: the gateway on a local Redis Cluster (3 masters, no replicas by
// default: it measures what the commands cost, not replication) next to the same gateway on one
// redis-server, same services, same load, same run. Per master: the commands and script calls it ran
// per request (INFO commandstats deltas), its share of all commands, its CPU per request (INFO cpu),
// and the commands it refused (rejected_calls: MOVED/ASK/CROSSSLOT answers are counted there, not in
// calls) or that failed. Writes bench/results/cluster-latest.{json,md}.
const fs = require('node:fs');
const path = require('node:path');
const IORedis = require('ioredis');
const { Pool } = require('undici');
const { startRedisServer, startRedisCluster, freePort } = require('../../libs/redis/dist');
const { BrokerKeys, RECORD_SHARDS } = require('../../libs/broker/dist');
const { otherLoad } = require('./host-load');

const MASTERS = Number(process.env.BENCH_CLUSTER_MASTERS ?? 3);
const REPLICAS = Number(process.env.BENCH_CLUSTER_REPLICAS ?? 0);
const SERVICES = Number(process.env.BENCH_CLUSTER_SERVICES ?? 6);
const PREFIX = 'bench';
const SCRIPT_COMMANDS = /^(evalsha|eval|evalsha_ro|eval_ro|fcall|fcall_ro)$/;

const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** One node's counters: INFO commandstats, errorstats and cpu, read with one INFO command. */
async function reading(client) {
  const text = await client.info('commandstats', 'errorstats', 'cpu', 'stats');
  const byName = new Map();
  let calls = 0;
  let scripts = 0;
  let rejected = 0;
  let failed = 0;
  for (const m of text.matchAll(/^cmdstat_([\w|-]+):calls=(\d+),.*?rejected_calls=(\d+),failed_calls=(\d+)/gm)) {
    const n = Number(m[2]);
    byName.set(m[1], n);
    calls += n;
    rejected += Number(m[3]);
    failed += Number(m[4]);
    if (SCRIPT_COMMANDS.test(m[1])) scripts += n;
  }
  const errors = new Map([...text.matchAll(/^errorstat_(\w+):count=(\d+)/gm)].map((m) => [m[1], Number(m[2])]));
  const cpu = ['used_cpu_sys', 'used_cpu_user'].reduce((s, f) => s + Number(new RegExp(`^${f}:([\\d.]+)`, 'm').exec(text)[1]), 0);
  const connections = Number(/^total_connections_received:(\d+)/m.exec(text)?.[1] ?? 0);
  return { calls, scripts, rejected, failed, byName, errors, cpu, connections };
}

/** What a node did between two readings; its own INFO (the first reading's) is taken out. */
function delta(before, after) {
  const byName = new Map();
  for (const [k, v] of after.byName) {
    const d = v - (before.byName.get(k) ?? 0) - (k === 'info' ? 1 : 0);
    if (d > 0) byName.set(k, d);
  }
  const errors = new Map();
  for (const [k, v] of after.errors) if (v - (before.errors.get(k) ?? 0) > 0) errors.set(k, v - (before.errors.get(k) ?? 0));
  return {
    calls: after.calls - before.calls - 1,
    scripts: after.scripts - before.scripts,
    rejected: after.rejected - before.rejected,
    failed: after.failed - before.failed,
    byName,
    errors,
    cpuS: after.cpu - before.cpu,
    connections: after.connections - before.connections,
  };
}

const ticks = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
};

/** Sums `mcp_gateway_requests_total` by service from an API's /metrics. */
async function requestsByService(apiUrl) {
  const pool = new Pool(apiUrl, { connections: 1 });
  try {
    const text = await (await pool.request({ method: 'GET', path: '/metrics' })).body.text();
    const out = {};
    for (const m of text.matchAll(/^mcp_gateway_requests_total\{([^}]*)\} (\S+)/gm)) {
      const service = /service="([^"]+)"/.exec(m[1])?.[1];
      if (service) out[service] = (out[service] ?? 0) + Number(m[2]);
    }
    return out;
  } finally {
    await pool.close();
  }
}

/** Lines of a gateway log at warn or above, grouped by message, and how many name a cluster error. */
function logTrouble(file) {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const byMsg = new Map();
  let clusterErrors = 0;
  for (const line of text.split('\n')) {
    if (/MOVED|ASK |CROSSSLOT|TRYAGAIN|CLUSTERDOWN|non local key/i.test(line)) clusterErrors += 1;
    let l;
    try {
      l = JSON.parse(line);
    } catch {
      continue;
    }
    if (l.level >= 40) {
      const key = `${l.msg}${l.err ? `: ${String(l.err).slice(0, 160)}` : ''}`;
      byMsg.set(key, (byMsg.get(key) ?? 0) + 1);
    }
  }
  return { warnings: [...byMsg].map(([msg, n]) => `${n}x ${msg}`), clusterErrors };
}

/** One connection, one request at a time, cycling through `bodies`, for `durationS`. */
async function oneConnection(origin, bodies, durationS) {
  const pool = new Pool(origin, { connections: 1 });
  const latencies = [];
  let errors = 0;
  const until = performance.now() + durationS * 1000;
  for (let i = 0; performance.now() < until; i++) {
    const t0 = performance.now();
    const r = await pool.request({
      method: 'POST',
      path: '/mcp/request',
      headers: { 'content-type': 'application/json' },
      body: bodies[i % bodies.length],
    });
    await r.body.text();
    latencies.push(performance.now() - t0);
    if (r.statusCode !== 200) errors += 1;
  }
  await pool.close();
  latencies.sort((a, b) => a - b);
  const pct = (p) => round(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]);
  return { rps: Math.round(latencies.length / durationS), p50: pct(50), p99: pct(99), errors, total: latencies.length };
}

/**
 * h: the helpers of run.js (start, cannon, stop, procs) and its settings (ROOT, RESULTS, DURATION,
 * PAIRS, PAIR_S, CONNECTIONS).
 */
async function runCluster(h) {
  const { start, cannon, stop, procs, ROOT, RESULTS, DURATION, PAIRS, PAIR_S } = h;
  fs.mkdirSync(RESULTS, { recursive: true });
  const logs = { single: path.join(RESULTS, 'gateway-single.log.tmp'), cluster: path.join(RESULTS, 'gateway-cluster.log.tmp') };
  for (const f of Object.values(logs)) fs.writeFileSync(f, '');
  const single = await startRedisServer();
  const cluster = await startRedisCluster({ masters: MASTERS, replicasPerMaster: REPLICAS });
  const cleanup = async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    for (const c of clients) c.disconnect();
    await cluster.stop().catch((err) => console.error(`cluster stop: ${err.message}`));
    await single.stop();
  };
  const clients = [];
  try {
    const masterPorts = cluster.seeds.map((s) => Number(new URL(s).port)).sort((a, b) => a - b);
    console.log(`build: ${JSON.stringify(buildInfo(ROOT))}`);
    console.log(
      `cluster: ${MASTERS} masters (${masterPorts.join(', ')}), ${REPLICAS} replica(s) each; pids ${cluster.nodes.map((n) => `${n.port}:${n.pid}`).join(' ')}`,
    );
    const keys = new BrokerKeys(PREFIX);

    // Services whose queue key lands on each master in turn, from candidate names in order.
    const perMaster = new Map(masterPorts.map((p) => [p, []]));
    const placed = [];
    for (let i = 0; placed.length < SERVICES && i < 200; i++) {
      const name = `svc-${String.fromCharCode(97 + (i % 26))}${i >= 26 ? Math.floor(i / 26) : ''}`;
      const key = keys.queueKey(name, 'wait');
      const port = (await cluster.masterFor(key)).port;
      const wanted = Math.ceil(SERVICES / MASTERS);
      if (perMaster.get(port).length >= wanted) continue;
      perMaster.get(port).push(name);
      placed.push({ name, key, port });
    }
    const probe = new IORedis(cluster.seeds[0]);
    clients.push(probe);
    for (const s of placed) s.slot = Number(await probe.call('CLUSTER', 'KEYSLOT', s.key));
    const recordParts = new Map(masterPorts.map((p) => [p, []]));
    for (let n = 0; n < RECORD_SHARDS; n++) recordParts.get((await cluster.masterFor(`${PREFIX}:req:{r${n}}:x`)).port).push(n);
    console.log('service queue keys:');
    for (const s of placed) console.log(`  ${s.key.padEnd(22)} slot ${String(s.slot).padStart(5)} on master ${s.port}`);
    console.log(
      `request records {r0}..{r15} (and their results channels): ${[...recordParts].map(([p, parts]) => `${p}: ${parts.length} parts (r${parts.join(',r')})`).join('; ')}`,
    );
    const workersPort = (await cluster.masterFor(keys.workers())).port;
    console.log(`worker heartbeats ${keys.workers()} on ${workersPort}`);

    const pBackend = await freePort();
    const [pSingle, pCluster, mSingle, mCluster] = [await freePort(), await freePort(), await freePort(), await freePort()];
    await start(path.join(__dirname, 'backend.js'), { PORT: String(pBackend) });
    const target = `http://127.0.0.1:${pBackend}`;
    const names = placed.map((s) => s.name);
    const gwEnv = (redis) => {
      const env = {
        ...redis,
        MCP_REDIS_KEY_PREFIX: PREFIX,
        NODE_ENV: 'test',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        MCP_SERVICES: names.join(','),
        WORKER_SERVICES: names.join(','),
      };
      for (const n of names) {
        const v = n.toUpperCase().replace(/-/g, '_');
        env[`MCP_SERVICE_${v}_ENDPOINT`] = target;
        env[`MCP_SERVICE_${v}_RATE_LIMIT_RPM`] = '6000000';
        env[`MCP_SERVICE_${v}_BURST_LIMIT`] = '1000000';
        // The default bench's one service has 50 slots; spread over the services here.
        env[`MCP_SERVICE_${v}_CONCURRENCY`] = String(Math.max(8, Math.ceil(50 / names.length)));
      }
      return env;
    };
    const isReady = (msg) => (l) => l && l.msg === msg;
    const gateway = async (which, redis, port, metricsPort) => {
      const env = gwEnv(redis);
      // The worker's /metrics: its requests by service show the load reached every service.
      const worker = await start(
        path.join(ROOT, 'apps/worker/dist/main.js'),
        { ...env, WORKER_METRICS_PORT: String(metricsPort) },
        { ready: isReady('worker ready'), log: logs[which] },
      );
      const api = await start(
        path.join(ROOT, 'apps/api/dist/main.js'),
        { ...env, PORT: String(port) },
        { ready: isReady('api ready'), log: logs[which] },
      );
      return { worker, api, url: `http://127.0.0.1:${port}`, workerMetrics: `http://127.0.0.1:${metricsPort}` };
    };
    // REDIS_URL and REDIS_CLUSTER_NODES both set, so neither comes from the caller's environment.
    const gwSingle = await gateway('single', { REDIS_URL: single.url, REDIS_CLUSTER_NODES: '', REDIS_SENTINELS: '' }, pSingle, mSingle);
    const gwCluster = await gateway(
      'cluster',
      { REDIS_URL: 'redis://127.0.0.1:1', REDIS_CLUSTER_NODES: cluster.seeds.join(','), REDIS_SENTINELS: '' },
      pCluster,
      mCluster,
    );

    const bodies = names.map((service) => JSON.stringify({ service, operation: 'echo', parameters: { item: 42 } }));
    // autocannon: each connection sends these in turn, so every service gets the same share.
    const requests = bodies.map((body) => ({ method: 'POST', path: '/mcp/request', body }));
    const load = (gw, duration) => cannon({ url: gw.url, requests, ...(duration ? { duration } : {}) });
    await load(gwSingle, 2);
    await load(gwCluster, 2);

    // Plain connections to each node (not cluster clients): INFO goes exactly where it is sent.
    const nodeClient = (url) => {
      const c = new IORedis(url, { maxRetriesPerRequest: 1 });
      clients.push(c);
      return c;
    };
    const singleClient = nodeClient(single.url);
    const pidOf = (port) => cluster.nodes.find((n) => n.port === port).pid;
    const masterClients = masterPorts.map((p) => ({ port: p, pid: pidOf(p), client: nodeClient(`redis://127.0.0.1:${p}`) }));
    const replicaClients = cluster.nodes
      .filter((n) => !masterPorts.includes(n.port))
      .map((n) => ({ port: n.port, pid: n.pid, client: nodeClient(n.url) }));

    const rows = [];
    const measure = async (name, gw, run, nodes) => {
      const pids = [gw.api.pid, gw.worker.pid];
      const t0 = pids.map(ticks);
      const servedBefore = await requestsByService(gw.workerMetrics);
      const before = await Promise.all(nodes.map((n) => reading(n.client)));
      const others = otherLoad([process.pid, single.process.pid, ...cluster.nodes.map((n) => n.pid), ...procs.map((p) => p.pid)]);
      // Socket syscalls per request of the API, the worker and each Redis node (perf; BENCH_SYSCALLS=0: none).
      const syscalls = h.syscallCounter([...pids, ...nodes.map((n) => n.pid)]);
      const started = performance.now();
      const r = await run();
      const seconds = (performance.now() - started) / 1000;
      const sys = await syscalls?.(r.total);
      const otherCores = others();
      const after = await Promise.all(nodes.map((n) => reading(n.client)));
      const servedAfter = await requestsByService(gw.workerMetrics);
      const per = (x, d = 2) => round(x / Math.max(1, r.total), d);
      const cpu = pids.map((p, i) => per((ticks(p) - t0[i]) * 10, 3));
      const shards = nodes.map((n, i) => {
        const d = delta(before[i], after[i]);
        return {
          port: n.port,
          role: n.role,
          commands: d.calls,
          scripts: d.scripts,
          commandsPerRequest: per(d.calls),
          scriptsPerRequest: per(d.scripts),
          redisCpuMsPerRequest: per(d.cpuS * 1000, 4),
          // Connections the node accepted meanwhile (a cluster client's slot refresh opens one each time).
          newConnectionsPerS: round(d.connections / seconds, 1),
          rejectedCalls: d.rejected,
          failedCalls: d.failed,
          errors: Object.fromEntries(d.errors),
          byCommand: Object.fromEntries([...d.byName].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, per(v, 3)])),
        };
      });
      const masters = shards.filter((s) => s.role !== 'replica');
      const allCommands = masters.reduce((s, x) => s + x.commands, 0);
      for (const s of masters) s.share = round((s.commands / Math.max(1, allCommands)) * 100, 1);
      const served = Object.fromEntries(names.map((n) => [n, (servedAfter[n] ?? 0) - (servedBefore[n] ?? 0)]));
      const row = {
        scenario: name,
        ...r,
        cpuMsPerRequest: cpu,
        otherCores,
        ...(sys
          ? {
              syscallsPerRequest: Object.fromEntries(
                ['api', 'worker', ...nodes.map((n) => `${n.role} ${n.port}`)].map((k, i) => [k, sys[i]]),
              ),
            }
          : {}),
        commandsPerRequest: per(allCommands),
        scriptsPerRequest: per(masters.reduce((s, x) => s + x.scripts, 0)),
        redisCpuMsPerRequest: round(
          shards.reduce((s, x) => s + x.redisCpuMsPerRequest, 0),
          4,
        ),
        shards,
        servedByService: served,
      };
      rows.push(row);
      console.log(
        `${name.padEnd(36)} ${String(r.rps).padStart(6)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  errors ${r.errors}  other processes ${otherCores} cores  cpu/req api+worker ${cpu.join(' + ')} ms; redis ${row.redisCpuMsPerRequest} ms; ${row.commandsPerRequest} commands, ${row.scriptsPerRequest} scripts`,
      );
      if (shards.length > 1)
        for (const s of shards)
          console.log(
            `    ${s.role} ${s.port}: ${s.commandsPerRequest} commands/req (${s.share ?? '-'}%), ${s.scriptsPerRequest} scripts/req, cpu ${s.redisCpuMsPerRequest} ms/req, new connections ${s.newConnectionsPerS}/s, rejected ${s.rejectedCalls}, failed ${s.failedCalls}${Object.keys(s.errors).length ? `, errors ${JSON.stringify(s.errors)}` : ''}`,
          );
      if (row.syscallsPerRequest)
        console.log(
          `    socket syscalls per request (read / write+writev): ${Object.entries(row.syscallsPerRequest)
            .map(([k, v]) => `${k} ${v.read ?? 0} / ${round((v.write ?? 0) + (v.writev ?? 0))}`)
            .join(', ')}`,
        );
      console.log(
        `    served by service: ${Object.entries(served)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
      if (process.env.BENCH_COMMANDS === '1')
        for (const s of shards)
          console.log(
            `    ${s.role} ${s.port}: ${Object.entries(s.byCommand)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')}`,
          );
      return row;
    };
    const singleNodes = [{ port: Number(new URL(single.url).port), pid: single.process.pid, role: 'single', client: singleClient }];
    const clusterNodes = [
      ...masterClients.map((m) => ({ ...m, role: 'master' })),
      ...replicaClients.map((m) => ({ ...m, role: 'replica' })),
    ];

    const loadedSingle = await measure('gateway sync, single Redis', gwSingle, () => load(gwSingle), singleNodes);
    const loadedCluster = await measure(
      `gateway sync, cluster ${MASTERS} masters${REPLICAS ? ` + ${REPLICAS} replica(s) each` : ''}`,
      gwCluster,
      () => load(gwCluster),
      clusterNodes,
    );
    // Short runs of the two in turn: neighbouring runs share most of the machine's drift.
    const ratios = [];
    const pairOthers = [];
    const pairRps = [];
    for (let i = 0; i < Math.max(1, PAIRS); i++) {
      const rps = {};
      const others = otherLoad([process.pid, single.process.pid, ...cluster.nodes.map((n) => n.pid), ...procs.map((p) => p.pid)]);
      for (const which of i % 2 === 0 ? ['single', 'cluster'] : ['cluster', 'single'])
        rps[which] = (await load(which === 'single' ? gwSingle : gwCluster, PAIR_S)).rps;
      ratios.push(round(rps.cluster / Math.max(1, rps.single)));
      pairOthers.push(others());
      pairRps.push(rps);
    }
    const sorted = [...ratios].sort((a, b) => a - b);
    const median =
      sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : round((sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2);
    console.log(
      `cluster / single Redis, ${ratios.length} interleaved pairs of ${PAIR_S} s: ${ratios.join(', ')} (median ${median}; req/s single/cluster ${pairRps.map((p) => `${p.single}/${p.cluster}`).join(', ')}; other processes ${pairOthers.join(', ')} cores)`,
    );
    const oneSingle = await measure(
      'gateway sync, 1 connection, single',
      gwSingle,
      () => oneConnection(gwSingle.url, bodies, DURATION),
      singleNodes,
    );
    const oneCluster = await measure(
      'gateway sync, 1 connection, cluster',
      gwCluster,
      () => oneConnection(gwCluster.url, bodies, DURATION),
      clusterNodes,
    );

    const keyShapes = await Promise.all(masterClients.map(async (m) => ({ port: m.port, shapes: await shapesOn(m.client) })));
    for (const k of keyShapes) console.log(`  keys on ${k.port}: ${k.shapes}`);
    const trouble = { single: logTrouble(logs.single), cluster: logTrouble(logs.cluster) };
    for (const [which, t] of Object.entries(trouble))
      console.log(
        `  ${which} gateway log: ${t.warnings.length ? t.warnings.slice(0, 8).join(' | ') : 'no warnings'}; lines naming a cluster error: ${t.clusterErrors}`,
      );

    const report = {
      at: new Date().toISOString(),
      build: buildInfo(ROOT),
      machine: { cpus: require('node:os').cpus().length, node: process.version },
      settings: { durationS: DURATION, connections: h.CONNECTIONS, pairS: PAIR_S, masters: MASTERS, replicasPerMaster: REPLICAS },
      services: placed,
      recordParts: Object.fromEntries(recordParts),
      workersKeyOn: workersPort,
      rows,
      ratios: {
        clusterVsSingleLoaded: round(loadedCluster.rps / loadedSingle.rps),
        clusterVsSinglePairs: ratios,
        clusterVsSingleMedian: median,
        pairsRps: pairRps,
        pairsOtherCores: pairOthers,
        clusterVsSingleOneConnection: round(oneCluster.rps / oneSingle.rps),
      },
      keyShapes,
      logs: trouble,
    };
    fs.writeFileSync(path.join(RESULTS, 'cluster-latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    fs.writeFileSync(path.join(RESULTS, 'cluster-latest.md'), markdown(report));
    console.log(`\n${markdown(report)}`);
    for (const gw of [gwSingle, gwCluster]) for (const p of [gw.api, gw.worker]) await stop(p);
    for (const f of Object.values(logs)) fs.rmSync(f, { force: true });
  } finally {
    await cleanup();
  }
}

/** Which gateway ran: the checkout's HEAD and when its compiled API and Redis library were written. */
function buildInfo(root) {
  const head = require('node:child_process').spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' });
  const mtime = (f) => fs.statSync(path.join(root, f)).mtime.toISOString();
  return { head: head.stdout?.trim(), apiDist: mtime('apps/api/dist/main.js'), redisDist: mtime('libs/redis/dist/connections.js') };
}

/** Keys on one node by shape (ids and numbers as `*`), most first. */
async function shapesOn(client) {
  const shapes = new Map();
  let cursor = '0';
  do {
    const [next, found] = await client.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const k of found) {
      const shape = k.replace(/[0-9a-f]{8}-[0-9a-f-]{27}|[A-Za-z0-9_-]{40,}|\d+/g, '*');
      shapes.set(shape, (shapes.get(shape) ?? 0) + 1);
    }
  } while (cursor !== '0');
  return [...shapes]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 10)
    .map(([s, n]) => `${s} ${n}`)
    .join(', ');
}

function markdown(r) {
  const masterRows = (row) => row.shards.filter((s) => s.role !== 'single');
  const lines = [
    `# Cluster benchmark (${r.at}, ${r.machine.cpus} cores, Node ${r.machine.node}, ${r.settings.durationS} s per scenario, ${r.settings.connections} connections, ${r.settings.masters} masters x ${r.settings.replicasPerMaster} replicas)`,
    '',
    `Build: HEAD ${r.build.head}, apps/api/dist written ${r.build.apiDist}, libs/redis/dist ${r.build.redisDist}.`,
    '',
    `Services: ${r.services.map((s) => `${s.name} (slot ${s.slot}, master ${s.port})`).join(', ')}. Record parts per master: ${Object.entries(
      r.recordParts,
    )
      .map(([p, parts]) => `${p}: ${parts.length}`)
      .join(', ')}.`,
    '',
    '| scenario | req/s | p50 ms | p99 ms | errors | CPU ms/req (API + worker) | Redis CPU ms/req (all nodes) | commands/req (all nodes) | script calls/req | other processes (cores) |',
    '|---|---:|---:|---:|---:|---|---:|---:|---:|---:|',
    ...r.rows.map(
      (x) =>
        `| ${x.scenario} | ${x.rps} | ${x.p50} | ${x.p99} | ${x.errors} | ${x.cpuMsPerRequest.join(' + ')} | ${x.redisCpuMsPerRequest} | ${x.commandsPerRequest} | ${x.scriptsPerRequest} | ${x.otherCores} |`,
    ),
    '',
    '| scenario | node | commands/req | share | script calls/req | Redis CPU ms/req | new connections/s | rejected calls | failed calls | error replies |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---|',
    ...r.rows.flatMap((x) =>
      masterRows(x).map(
        (s) =>
          `| ${x.scenario} | ${s.role} ${s.port} | ${s.commandsPerRequest} | ${s.share ?? '–'}% | ${s.scriptsPerRequest} | ${s.redisCpuMsPerRequest} | ${s.newConnectionsPerS} | ${s.rejectedCalls} | ${s.failedCalls} | ${
            Object.entries(s.errors)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ') || '–'
          } |`,
      ),
    ),
    '',
    ...(r.rows.some((x) => x.syscallsPerRequest)
      ? [
          '| scenario | socket syscalls per request, read / write+writev (API, worker, each Redis node) |',
          '|---|---|',
          ...r.rows
            .filter((x) => x.syscallsPerRequest)
            .map(
              (x) =>
                `| ${x.scenario} | ${Object.entries(x.syscallsPerRequest)
                  .map(([k, v]) => `${k} ${v.read ?? 0} / ${round((v.write ?? 0) + (v.writev ?? 0))}`)
                  .join('; ')} |`,
            ),
          '',
        ]
      : []),
    `- cluster / single Redis: ${r.ratios.clusterVsSingleLoaded}x in the loaded rows; median of interleaved pairs ${r.ratios.clusterVsSingleMedian}x (${r.ratios.clusterVsSinglePairs.join(', ')}; other processes ${r.ratios.pairsOtherCores.join(', ')} cores); at 1 connection ${r.ratios.clusterVsSingleOneConnection}x`,
    '',
  ];
  return lines.join('\n');
}

module.exports = { runCluster };
