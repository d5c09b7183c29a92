import { spawn, type ChildProcess } from 'node:child_process';

export interface RunningProcess {
  pid: number;
  child: ChildProcess;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  /** Parsed JSON log lines (pino) written so far. */
  logLines(): Record<string, unknown>[];
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Signals the process and waits for it to exit (SIGKILL after the grace period). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
}

/** Runs a Node entry point (a built `dist/*.js`) with the given environment. */
export function startNodeProcess(entry: string, env: NodeJS.ProcessEnv, args: string[] = []): RunningProcess {
  const child = spawn(process.execPath, [...args, entry], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: (() => void)[] = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const logLines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  return {
    pid: child.pid ?? -1,
    child,
    output: () => out,
    logLines,
    // Long enough for a process's start on a loaded two-core machine: in CI, beside the Prism suite,
    // processes took over 15 s to write their first line.
    waitForLog(predicate, timeoutMs = 40_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for a log line; output:\n${out.slice(-3000)}`)), timeoutMs);
        const check = () => {
          const hit = logLines().find(predicate);
          if (hit) {
            clearTimeout(timer);
            resolve(hit);
          } else if (child.exitCode !== null) {
            clearTimeout(timer);
            reject(new Error(`process exited with ${child.exitCode}; output:\n${out.slice(-3000)}`));
          } else waiters.push(check);
        };
        check();
      });
    },
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
