import { appendFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import {
  API,
  WORKER,
  freePort,
  startBackend,
  startNodeProcess,
  startRedisServer,
  uniquePrefix,
  type BackendHandler,
  type RunningProcess,
  type TestBackend,
} from '@mcp-gateway/testing';

/** Fault-suite harness: a Redis with AOF fsync always, API and worker processes, a counting backend. */
export { API, WORKER };
/** CI runs a short version (CHAOS_SHORT=1): fewer requests, fewer repetitions. */
export const SHORT = process.env.CHAOS_SHORT === '1';

/**
 * What every chaos scenario's gateway processes share: a killed worker's job is taken over within
 * about 2 s, and retries come quickly.
 */
export const CHAOS_PROCESS_ENV = {
  HOST: '127.0.0.1',
  NODE_ENV: 'test',
  LOG_LEVEL: 'info',
  WORKER_LOCK_MS: '2000',
  MCP_RETRY_INITIAL_DELAY: '50',
  MCP_RETRY_MAX_DELAY: '200',
};

export interface Cluster {
  env: Record<string, string>;
  backend: TestBackend;
  /** Backend calls per request id (the gateway sends the id as Idempotency-Key). */
  calls: Map<string, number>;
  apis: RunningProcess[];
  workers: RunningProcess[];
  redis: {
    url: string;
    port: number;
    dir: string;
    kill9(): void;
    /** SHUTDOWN (graceful: AOF flushed). */ shutdown(): Promise<void>;
    restart(): Promise<void>;
    stop(): Promise<void>;
  };
  http(): ReturnType<typeof request>;
  /** The port of the newest live API process. */
  apiPort(): number;
  startWorker(extraEnv?: Record<string, string>, args?: string[]): Promise<RunningProcess>;
  startApi(): Promise<RunningProcess>;
  stop(): Promise<void>;
}

export async function startCluster(options: {
  handler: BackendHandler;
  services?: Record<string, string>;
  workers?: number;
  env?: Record<string, string>;
}): Promise<Cluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcp-chaos-redis-'));
  const redisArgs = ['--appendonly', 'yes', '--appendfsync', 'always'];
  let redis = await startRedisServer({ args: redisArgs, dir });
  const port = Number(new URL(redis.url).port);
  const calls = new Map<string, number>();
  const backend = await startBackend((req) => {
    const id = String(req.headers['idempotency-key'] ?? '');
    calls.set(id, (calls.get(id) ?? 0) + 1);
    return options.handler(req);
  });
  const env: Record<string, string> = {
    REDIS_URL: redis.url,
    MCP_REDIS_KEY_PREFIX: uniquePrefix('chaos'),
    MCP_SERVICES: Object.keys(options.services ?? { svc: '' }).join(','),
    ...CHAOS_PROCESS_ENV,
    ...Object.fromEntries(
      Object.keys(options.services ?? { svc: '' }).map((s) => [
        `MCP_SERVICE_${s.toUpperCase().replace(/-/g, '_')}_ENDPOINT`,
        `${backend.url}${(options.services ?? { svc: '' })[s]}`,
      ]),
    ),
    ...(options.env ?? {}),
  };
  const apis: RunningProcess[] = [];
  const workers: RunningProcess[] = [];
  const ports: number[] = [];
  const startApi = async () => {
    const p = await freePort();
    const api = startNodeProcess(API, { ...env, PORT: String(p) });
    apis.push(api);
    ports.push(p);
    await api.waitForLog((l) => l.msg === 'api ready');
    return api;
  };
  const startWorker = async (extraEnv: Record<string, string> = {}, args: string[] = []) => {
    const w = startNodeProcess(WORKER, { ...env, ...extraEnv }, args);
    workers.push(w);
    await w.waitForLog((l) => l.msg === 'worker ready');
    return w;
  };
  await Promise.all(Array.from({ length: options.workers ?? 2 }, () => startWorker()));
  await startApi();
  const live = () => {
    for (let i = apis.length - 1; i >= 0; i--) if (apis[i]!.child.exitCode === null && apis[i]!.child.signalCode === null) return ports[i]!;
    throw new Error('no live API process');
  };
  return {
    env,
    backend,
    calls,
    apis,
    workers,
    redis: {
      url: redis.url,
      port,
      dir,
      kill9: () => redis.process.kill('SIGKILL'),
      shutdown: async () => {
        const exited = new Promise((r) => redis.process.once('exit', r));
        redis.process.kill('SIGTERM');
        await exited;
      },
      restart: async () => {
        redis = await startRedisServer({ args: redisArgs, dir, port });
      },
      stop: () => redis.stop(),
    },
    http: () => request(`http://127.0.0.1:${live()}`),
    apiPort: live,
    startWorker,
    startApi,
    stop: async () => {
      await Promise.all([...apis, ...workers].map((p) => p.stop('SIGKILL', 1000)));
      await backend.close();
      await redis.stop();
    },
  };
}

export interface Tally {
  fault: string;
  sent: number;
  accepted: number;
  completed: number;
  failed: Record<string, number>;
  lost: number;
  duplicates: number;
}

/** Submits `n` async requests (ids `<label>-<i>`); returns the accepted ids and the refused answers. */
export async function submit(c: Cluster, label: string, n: number, body: (i: number) => object, spacingMs = 0) {
  const accepted: string[] = [];
  const refused: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const id = `${label}-${i}`;
    const res = await c
      .http()
      .post('/mcp/request')
      .set('Prefer', 'respond-async')
      .send({ id, ...body(i) })
      .then(
        (r) => r,
        () => undefined,
      );
    if (res && (res.status === 202 || res.status === 200)) accepted.push(id);
    else {
      const code = res?.body?.error?.code ?? 'NO_ANSWER';
      refused[code] = (refused[code] ?? 0) + 1;
    }
    if (spacingMs) await new Promise((r) => setTimeout(r, spacingMs));
  }
  return { accepted, refused };
}

/** Polls every accepted id until it ends (or `timeoutMs`), and counts the outcome. */
export async function settle(c: Cluster, fault: string, sent: number, accepted: string[], timeoutMs = 60_000): Promise<Tally> {
  const pending = new Set(accepted);
  const failed: Record<string, number> = {};
  let completed = 0;
  const until = Date.now() + timeoutMs;
  while (pending.size > 0 && Date.now() < until) {
    for (const id of [...pending]) {
      const res = await c
        .http()
        .get(`/mcp/requests/${id}`)
        .then(
          (r) => r,
          () => undefined,
        );
      const state = res?.body?.state;
      if (state === 'completed') completed += 1;
      else if (state === 'failed' || state === 'cancelled')
        failed[res!.body.error?.code ?? state] = (failed[res!.body.error?.code ?? state] ?? 0) + 1;
      else continue;
      pending.delete(id);
    }
    if (pending.size > 0) await new Promise((r) => setTimeout(r, 200));
  }
  const duplicates = accepted.reduce((n, id) => n + Math.max(0, (c.calls.get(id) ?? 0) - 1), 0);
  const tally = { fault, sent, accepted: accepted.length, completed, failed, lost: pending.size, duplicates };
  report(tally);
  return tally;
}

const REPORT = path.join(os.tmpdir(), 'mcp-chaos-report.jsonl');

/** One row per fault: printed now, and kept for the table at the end of the run. */
export function report(t: Tally): void {
  const failed =
    Object.entries(t.failed)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || '-';
  process.stdout.write(
    `[chaos] ${t.fault.padEnd(44)} sent ${t.sent}  accepted ${t.accepted}  completed ${t.completed}  failed ${failed}  lost ${t.lost}  duplicates ${t.duplicates}\n`,
  );
  appendFileSync(REPORT, `${JSON.stringify(t)}\n`);
}
