// Compares two builds in alternating quick runs: `node bench/ab.js <other checkout> [rounds]`.
// Each round runs other, this, this, other (ABBA: a plain ABAB showed an order effect here, the
// second run of a pair being slower for the bare architecture too). Every run is read as its own
// ratio to the bare architecture, and CPU per request as a multiple of bare's in the same run, so
// the machine's drift between runs cancels out. Both checkouts must be built (`npm run build`).
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const other = path.resolve(process.argv[2] ?? '');
const rounds = Number(process.argv[3] ?? 3);
const here = path.resolve(__dirname, '..');
if (!process.argv[2] || other === here) {
  console.error('usage: node bench/ab.js <other built checkout> [rounds]');
  process.exit(2);
}

/** A row of run.js: name, req/s, p50, CPU per request of the API and the worker, Redis's. */
const LINE = /^(.+?)\s+(\d+) req\/s\s+p50 ([\d.]+) ms.*cpu\/req ([\d.]+) \+ ([\d.]+) \(redis ([\d.]+)/;
const ROWS = {
  'bare architecture (express+BullMQ)': 'bare',
  'bare architecture, 1 connection': 'bareOne',
  'gateway sync, 1 connection': 'gatewayOne',
  'bare architecture, fixed rate': 'bareFixed',
  'gateway sync, fixed rate': 'gatewayFixed',
  // AB_ROW names the gateway row to compare (BENCH_QUICK=mcp: 'gateway MCP tools/call, 1 worker').
  [process.env.AB_ROW ?? 'gateway sync, 1 worker']: 'gateway',
};

function quickRun(dir) {
  const r = spawnSync(process.execPath, [path.join(dir, 'bench/run.js')], {
    cwd: dir,
    env: { ...process.env, BENCH_QUICK: process.env.BENCH_QUICK ?? '1' },
    encoding: 'utf8',
  });
  const rows = {};
  for (const line of r.stdout.split('\n')) {
    const m = LINE.exec(line);
    const key = m && ROWS[m[1].trim()];
    if (key) rows[key] = { rps: Number(m[2]), p50: Number(m[3]), api: Number(m[4]), worker: Number(m[5]), redis: Number(m[6]) };
  }
  if (!rows.bare || !rows.gateway) throw new Error(`no result from ${dir}:\n${r.stdout}\n${r.stderr}`);
  return {
    ratio: rows.gateway.rps / rows.bare.rps,
    rps: rows.gateway.rps,
    api: rows.gateway.api / rows.bare.api,
    worker: rows.gateway.worker / rows.bare.worker,
    redis: rows.gateway.redis / rows.bare.redis,
    // At one connection (a checkout whose quick run has those rows): the gateway's p50 over the bare architecture's.
    p50OverBare: rows.gatewayOne && rows.bareOne ? rows.gatewayOne.p50 - rows.bareOne.p50 : NaN,
    // Both offered the same rate below saturation (a checkout whose quick run has those rows).
    workerFixed: rows.gatewayFixed && rows.bareFixed ? rows.gatewayFixed.worker / rows.bareFixed.worker : NaN,
    apiFixed: rows.gatewayFixed && rows.bareFixed ? rows.gatewayFixed.api / rows.bareFixed.api : NaN,
  };
}

const runs = { other: [], here: [] };
for (let i = 0; i < rounds; i++) {
  for (const [name, dir] of [
    ['other', other],
    ['here', here],
    ['here', here],
    ['other', other],
  ]) {
    const r = quickRun(dir);
    runs[name].push(r);
    console.log(
      `${name.padEnd(5)} ratio ${r.ratio.toFixed(3)}  ${r.rps} req/s  CPU ÷ bare's: api ${r.api.toFixed(2)} worker ${r.worker.toFixed(2)} redis ${r.redis.toFixed(2)}  at a fixed rate: api ${r.apiFixed.toFixed(2)} worker ${r.workerFixed.toFixed(2)}  1-connection p50 − bare's ${r.p50OverBare.toFixed(2)} ms`,
    );
  }
}
const mean = (xs, k) => xs.reduce((s, x) => s + x[k], 0) / xs.length;
// The median too: on a shared machine one run in a dozen can be off by a third, and moves the mean.
const median = (xs, k) => {
  const v = xs.map((x) => x[k]).sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
console.log(
  `\n| build (${runs.here.length} runs each; mean / median) | gateway/bare | gateway req/s | API CPU ÷ bare's | worker CPU ÷ bare's | Redis CPU ÷ bare's | at a fixed rate: API / worker CPU ÷ bare's | 1-connection p50 − bare's, ms |`,
);
console.log('|---|---|---|---|---|---|---|---|');
for (const [name, label] of [
  ['other', other],
  ['here', here],
]) {
  const xs = runs[name];
  const both = (k, digits) => `${mean(xs, k).toFixed(digits)} / ${median(xs, k).toFixed(digits)}`;
  console.log(
    `| ${label} | ${both('ratio', 3)} | ${both('rps', 0)} | ${both('api', 2)} | ${both('worker', 2)} | ${both('redis', 2)} | ${both('apiFixed', 2)}; ${both('workerFixed', 2)} | ${both('p50OverBare', 2)} |`,
  );
}
