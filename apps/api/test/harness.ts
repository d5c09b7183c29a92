import { Writable } from 'node:stream';
import request from 'supertest';
import type { GatewayConfig, GatewayConfigInput } from '@mcp-gateway/config';
import { createLogger, type Logger } from '@mcp-gateway/observability';
import { ApiServer } from '@mcp-gateway/api';
import { GatewayMetrics } from '@mcp-gateway/metrics';
import { WorkerPool } from '@mcp-gateway/worker';
import { testConfig } from '@mcp-gateway/testing';

export interface Running {
  config: GatewayConfig;
  api: ApiServer;
  pools: WorkerPool[];
  http: ReturnType<typeof request>;
  startWorkers(services?: string[]): Promise<WorkerPool>;
  close(): Promise<void>;
}

/** The real API (listening on a free port) and an in-process worker pool on the test Redis. */
export async function startGateway(
  input: GatewayConfigInput,
  workerServices?: string[],
  options: { logger?: Logger; sweep?: { everyMs?: number; graceMs?: number } } = {},
): Promise<Running> {
  const config = testConfig(input);
  const logger = options.logger ?? createLogger({ level: (process.env.TEST_LOG_LEVEL as 'info' | undefined) ?? 'silent' });
  const pools: WorkerPool[] = [];
  // One registry, as in the all-in-one gateway: the API's /metrics shows the workers' counters.
  const metrics = new GatewayMetrics();
  const startWorkers = async (services?: string[]) => {
    const pool = new WorkerPool({ config, logger, services, heartbeatMs: 200, shutdownGraceMs: 2000, metrics });
    await pool.start();
    pools.push(pool);
    return pool;
  };
  if (workerServices === undefined || workerServices.length > 0) await startWorkers(workerServices);
  const api = new ApiServer({ config, logger, metrics, ...(options.sweep ? { sweep: options.sweep } : {}) });
  api.stopGraceMs = 1000;
  const address = await api.start(0, '127.0.0.1');
  return {
    config,
    api,
    pools,
    http: request(`http://127.0.0.1:${address.port}`),
    startWorkers,
    // The pools stop even when the API's stop throws: a pool left running keeps its Redis clients (and
    // their timers) alive in the in-band cluster suite, which then never exits.
    close: async () => {
      try {
        await api.stop();
      } finally {
        await Promise.all(pools.map((p) => p.stop()));
      }
    },
  };
}

export async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A logger whose JSON lines a test can read back. */
export function capturingLogger(level: 'warn' | 'info' | 'debug' = 'info'): {
  logger: Logger;
  lines: Record<string, unknown>[];
  text: () => string;
} {
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString('utf8'));
      done();
    },
  });
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level, destination });
  return {
    logger,
    lines: new Proxy(lines, {
      get(target, prop, receiver) {
        target.length = 0;
        for (const l of raw.join('').split('\n').filter(Boolean)) target.push(JSON.parse(l) as Record<string, unknown>);
        return Reflect.get(target, prop, receiver);
      },
    }),
    text: () => raw.join(''),
  };
}
