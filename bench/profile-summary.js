// Summarises V8 .cpuprofile files: self time by function and by package, the top entries.
const fs = require('node:fs');
const path = require('node:path');
const dir = process.argv[2] ?? path.join(__dirname, 'results/profiles');
for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
  const prof = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  const self = new Map();
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const dt = prof.timeDeltas;
  const counts = new Map();
  prof.samples.forEach((id, i) => counts.set(id, (counts.get(id) ?? 0) + (dt[i] ?? 0)));
  const pkg = new Map();
  let total = 0;
  for (const [id, us] of counts) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const where = cf.url.includes('node_modules')
      ? cf.url
          .split('node_modules/')
          .pop()
          .split('/')
          .slice(0, cf.url.includes('node_modules/@') ? 2 : 1)
          .join('/')
      : cf.url.includes('/work/') || cf.url.includes('/app')
        ? cf.url.split('/').slice(-3).join('/')
        : cf.url || '(native)';
    const key = `${cf.functionName || '(anonymous)'} ${where}:${cf.lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + us);
    const p = cf.url.includes('node_modules')
      ? where
      : cf.url.startsWith('node:')
        ? 'node internals'
        : cf.url
          ? 'gateway code'
          : cf.functionName || '(native)';
    pkg.set(p, (pkg.get(p) ?? 0) + us);
    total += us;
  }
  console.log(`\n== ${f} (${Math.round(total / 1000)} ms sampled)`);
  for (const [k, v] of [...pkg].sort((a, b) => b[1] - a[1]).slice(0, 12))
    console.log(`  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
  console.log('  -- top functions (self)');
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 12))
    console.log(`  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
}
