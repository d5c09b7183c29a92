// What a worker's `request finished` line costs, made and written: `node bench/log-line.js` (after
// `npm run build`). Each way runs in a child process of its own whose stdout is /dev/null, logging
// the worker's fields in turns of 50 lines (as jobs end), and is printed as CPU per line and as a
// ratio to the baseline in the same run: pino writing through sonic-boom's own batching (`minLength`),
// what createLogger did before it batched lines itself (docs/research/bench-costs.md, session 20).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');

const LINES = 200_000;
const ROUNDS = Number(process.argv[2] ?? 3);

/** In the child: a logger made `how`, then LINES lines, then the CPU they took (µs per line) on stderr. */
function child(how) {
  const pino = require('pino');
  const obs = require('../libs/observability/dist');
  const { isoTime } = require('../libs/protocol/dist');
  const logger =
    how === 'baseline'
      ? pino(
          { base: { pid: process.pid }, name: 'worker', timestamp: () => `,"time":"${isoTime(Date.now())}"` },
          pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 100, maxLength: 16 * 1024 * 1024 }),
        )
      : obs.createLogger({ name: 'worker' });
  let i = 0;
  const started = process.cpuUsage();
  (function turn() {
    for (let k = 0; k < 50 && i < LINES; k++, i++) {
      obs.logScalars(
        logger,
        'info',
        {
          id: `b1d6f8a2-0f0c-4d2a-9b7e-${String(100000000000 + i)}`,
          correlationId: `c-${i}`,
          traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
          service: 'bench',
          operation: 'echo',
          outcome: 'success',
          attempts: 1,
          queuedMs: i % 7,
          processingTime: 2,
          totalMs: 5,
          backendMs: 1,
          backendStatus: 200,
          stored: true,
        },
        'request finished',
      );
    }
    if (i < LINES) return setImmediate(turn);
    // What is still batched goes out too before the reading.
    setTimeout(() => {
      const t = process.cpuUsage(started);
      process.stderr.write(`${(t.user + t.system) / LINES}\n`);
    }, 300);
  })();
}

if (process.argv[2] === '--child') child(process.argv[3]);
else {
  const ways = {
    baseline: 'pino + sonic-boom batching (minLength 4096): the baseline',
    ours: 'createLogger (lines batched before sonic-boom)',
  };
  const per = { baseline: [], ours: [] };
  const devNull = fs.openSync('/dev/null', 'w');
  for (let r = 0; r < ROUNDS; r++) {
    for (const how of r % 2 ? ['ours', 'baseline'] : ['baseline', 'ours']) {
      const run = spawnSync(process.execPath, [__filename, '--child', how], { stdio: ['ignore', devNull, 'pipe'], encoding: 'utf8' });
      per[how].push(Number(run.stderr.trim()));
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const [how, label] of Object.entries(ways))
    console.log(`${label.padEnd(62)} ${median(per[how]).toFixed(2)} µs/line  ×${(median(per[how]) / median(per.baseline)).toFixed(2)}`);
}
