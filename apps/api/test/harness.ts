import request from 'supertest';
import type { GatewayConfig, GatewayConfigInput } from '@mcp-gateway/config';
import { createLogger } from '@mcp-gateway/observability';
import { ApiServer } from '@mcp-gateway/api';
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
export async function startGateway(input: GatewayConfigInput, workerServices?: string[]): Promise<Running> {
  const config = testConfig(input);
  const logger = createLogger({ level: (process.env.TEST_LOG_LEVEL as 'info' | undefined) ?? 'silent' });
  const pools: WorkerPool[] = [];
  const startWorkers = async (services?: string[]) => {
    const pool = new WorkerPool({ config, logger, services, heartbeatMs: 200, shutdownGraceMs: 2000 });
    await pool.start();
    pools.push(pool);
    return pool;
  };
  if (workerServices === undefined || workerServices.length > 0) await startWorkers(workerServices);
  const api = new ApiServer({ config, logger });
  const address = await api.start(0, '127.0.0.1');
  return {
    config,
    api,
    pools,
    http: request(`http://127.0.0.1:${address.port}`),
    startWorkers,
    close: async () => {
      await api.stop();
      await Promise.all(pools.map((p) => p.stop()));
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
