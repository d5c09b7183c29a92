import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import setup from '../libs/testing/jest/global-setup';

export default async function chaosSetup(): Promise<void> {
  rmSync(path.join(os.tmpdir(), 'mcp-chaos-report.jsonl'), { force: true });
  await setup();
}
