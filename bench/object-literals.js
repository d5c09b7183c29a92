// What an object literal (and a timestamp's text) costs on this Node, by form:
// `node bench/object-literals.js` (after `npm run build`). On Node 20 (V8 11.3) a literal that starts
// with a spread and has anything after it takes the slow path, about 1 µs against tens of ns, so the
// hot path copies with Object.assign or sets properties (docs/research/bench-costs.md, session 18). Each form is timed in the same run as the
// baseline (the source object with a property set) and printed as a ratio to it.
const { isoTime } = require('../libs/protocol/dist');

const N = 1_000_000;
const source = () => ({ kind: 'response', status: 200, headers: {}, data: { ok: true }, json: '{"ok":true}' });

const forms = {
  // The source object made and a property set on it: what every form below does at least.
  'o.x = … (the baseline)': (i) => {
    const o = source();
    o.durationMs = i;
    return o;
  },
  '{ ...o, x }': (i) => ({ ...source(), durationMs: i }),
  '{ ...o, ...p }': (i) => ({ ...source(), ...{ durationMs: i } }),
  '{ ...o } then o2.x = …': (i) => {
    const copy = { ...source() };
    copy.durationMs = i;
    return copy;
  },
  '{ x, ...o }': (i) => ({ durationMs: i, ...source() }),
  'Object.assign({}, o, { x })': (i) => Object.assign({}, source(), { durationMs: i }),
  'new Date(ms).toISOString()': (i) => new Date(1_765_000_000_000 + i).toISOString(),
  'isoTime(ms) (the same text)': (i) => isoTime(1_765_000_000_000 + i),
};

function nsPerCall(fn) {
  let sink = 0;
  for (let i = 0; i < N / 10; i++) sink += fn(i) ? 1 : 0;
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) sink += fn(i) ? 1 : 0;
  if (sink !== N + N / 10) throw new Error('unexpected result');
  return Number(process.hrtime.bigint() - t) / N;
}

const base = nsPerCall(forms['o.x = … (the baseline)']);
console.log(`Node ${process.version}, ${N} calls each`);
for (const [name, fn] of Object.entries(forms)) {
  const ns = fn === forms['o.x = … (the baseline)'] ? base : nsPerCall(fn);
  console.log(`${name.padEnd(32)} ${ns.toFixed(0).padStart(6)} ns  ${(ns / base).toFixed(1).padStart(6)}x the baseline`);
}
