import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import teardown from '../libs/testing/jest/global-teardown';
import type { Tally } from './harness';

/** The table of the run: one row per fault, printed (and, for a full run, written to chaos/results/latest.md). */
export default async function chaosTeardown(): Promise<void> {
  await teardown();
  const file = path.join(os.tmpdir(), 'mcp-chaos-report.jsonl');
  if (!existsSync(file)) return;
  const rows = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Tally);
  const lines = [
    '| fault | sent | accepted | completed | failed (by code) | lost | duplicate backend calls |',
    '|---|---:|---:|---:|---|---:|---:|',
    ...rows.map(
      (t) =>
        `| ${t.fault} | ${t.sent} | ${t.accepted} | ${t.completed} | ${
          Object.entries(t.failed)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ') || '–'
        } | ${t.lost} | ${t.duplicates} |`,
    ),
  ];
  const table = `${lines.join('\n')}\n`;
  process.stdout.write(`\n${table}`);
  // The full run's table is kept in the repository; CI's short run only prints its own.
  if (process.env.CHAOS_SHORT !== '1')
    writeFileSync(path.join(__dirname, 'results', 'latest.md'), `# Fault suite (full run, ${new Date().toISOString()})\n\n${table}`);
}
