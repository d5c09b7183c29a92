import os from 'node:os';
import { Worker, type Job } from 'bullmq';
import type Redis from 'ioredis';
import type { GatewayConfig } from '@mcp-gateway/config';
import { BackendCaller } from '@mcp-gateway/backends';
import { Broker, BrokerKeys, RequestRecords, WorkerPresence, type GatewayJobData } from '@mcp-gateway/broker';
import { GatewayMetrics, ServiceStats } from '@mcp-gateway/metrics';
import { ServiceRegistry } from '@mcp-gateway/registry';
import { createRedis } from '@mcp-gateway/redis';
import { ResilienceStore } from '@mcp-gateway/resilience';
import type { Logger } from '@mcp-gateway/observability';
import { createProcessor, publishAbandoned, RetryLater, type PipelineDeps } from './pipeline';

export interface WorkerPoolOptions {
  config: GatewayConfig;
  logger: Logger;
  /** Defaults to config.worker.services, else every configured service. */
  services?: string[];
  workerId?: string;
  heartbeatMs?: number;
  /** How long stop() lets active jobs finish before closing anyway. */
  shutdownGraceMs?: number;
  /** Shared with an API in the same process (all-in-one gateway); else the pool makes its own. */
  metrics?: GatewayMetrics;
}

/** One BullMQ Worker per served service queue, sharing one pipeline, one Redis client and one HTTP client. */
export class WorkerPool {
  readonly workerId: string;
  private readonly workers: Worker<GatewayJobData>[] = [];
  private readonly byService = new Map<string, Worker<GatewayJobData>>();
  private readonly connection: Redis;
  private readonly presence: WorkerPresence;
  private readonly deps: PipelineDeps;
  readonly metrics: GatewayMetrics;
  private readonly broker: Broker;
  private heartbeat?: NodeJS.Timeout;
  private readonly services: string[];

  constructor(private readonly options: WorkerPoolOptions) {
    const { config } = options;
    this.workerId = options.workerId ?? `${os.hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
    this.services = options.services ?? config.worker.services ?? Object.keys(config.services);
    this.connection = createRedis(config.redis.url, 'blocking', `mcp-worker:${this.workerId}`);
    const keys = new BrokerKeys(config.redis.keyPrefix);
    this.presence = new WorkerPresence(this.connection, keys);
    const registry = new ServiceRegistry(config, {
      onDefinitionError: (service, err) => options.logger.error({ service, err: err.message }, 'service definition could not be loaded'),
    });
    this.metrics = options.metrics ?? new GatewayMetrics();
    // For queue counts only (the worker never submits).
    this.broker = new Broker({ redis: this.connection, keyPrefix: config.redis.keyPrefix, resultTtlSeconds: config.results.ttlSeconds });
    const resilience = new ResilienceStore(this.connection, config.redis.keyPrefix, {
      onStateChange: (service, from, to) => options.logger.warn({ service, from, to, workerId: this.workerId }, 'circuit state changed'),
    });
    this.metrics.watchSharedState({
      services: () => this.services,
      circuit: async (s) => (await resilience.breaker(s, config.services[s]!)).state,
      tokens: async (s) => (await resilience.limiter(s, config.services[s]!)).tokens,
      queue: (s) => this.broker.counts(s),
    });
    this.deps = {
      config,
      registry,
      metrics: this.metrics,
      stats: new ServiceStats(this.connection, config.redis.keyPrefix),
      records: new RequestRecords(this.connection, keys, config.results.ttlSeconds),
      caller: new BackendCaller({ redis: this.connection, keyPrefix: config.redis.keyPrefix }),
      resilience,
      logger: options.logger,
      workerId: this.workerId,
    };
  }

  async start(): Promise<void> {
    const { config, logger } = this.options;
    await this.deps.registry.init();
    const processor = createProcessor(this.deps);
    const keys = new BrokerKeys(config.redis.keyPrefix);
    for (const service of this.services) {
      const svc = config.services[service];
      if (!svc) throw new Error(`WORKER_SERVICES names unknown service ${service}`);
      const worker = new Worker<GatewayJobData>(keys.queueName(service), processor, {
        connection: this.connection,
        prefix: keys.prefix,
        concurrency: svc.concurrency ?? config.worker.concurrency,
        // A killed worker's job is taken over after the lock expires (lockDuration), not 30 s later.
        lockDuration: 10_000,
        stalledInterval: 5_000,
        maxStalledCount: 2,
        settings: {
          backoffStrategy: (_attemptsMade: number, _type?: string, err?: Error) => (err instanceof RetryLater ? err.delayMs : 1000),
        },
      });
      worker.on('failed', (job: Job<GatewayJobData> | undefined, err: Error) => {
        if (!job) return;
        const final = job.attemptsMade >= (job.opts.attempts ?? 1) || !(err instanceof RetryLater);
        if (!final) return;
        if (!(err instanceof RetryLater)) logger.error({ id: job.data.id, err: err.message }, 'job failed outside the pipeline');
        publishAbandoned(this.deps, job, err).catch((e: unknown) => logger.error({ id: job.data.id, err: String(e) }, 'could not publish the result of a failed job'));
      });
      worker.on('error', (err) => logger.warn({ service, err: err.message }, 'worker connection error'));
      this.workers.push(worker);
      this.byService.set(service, worker);
    }
    await Promise.all(this.workers.map((w) => w.waitUntilReady()));
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat(), this.options.heartbeatMs ?? 5000);
    this.heartbeat.unref();
    logger.info({ workerId: this.workerId, services: this.services }, 'worker ready');
  }

  private async beat(): Promise<void> {
    try {
      await this.presence.beat(this.workerId, this.services);
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'worker heartbeat failed');
    }
  }

  /** Stops taking jobs, lets active ones finish within the grace period, then closes. */
  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    const grace = this.options.shutdownGraceMs ?? this.options.config.worker.shutdownGraceMs;
    const closing = Promise.all(this.workers.map((w) => w.close()));
    const timedOut = await Promise.race([closing.then(() => false), sleep(grace).then(() => true)]);
    if (timedOut) {
      // worker.close() has no time limit; jobs still running are left to the stall checker of another worker.
      this.options.logger.warn({ graceMs: grace }, 'active jobs did not finish within the grace period; closing anyway');
      await Promise.all(this.workers.map((w) => w.close(true).catch(() => undefined)));
    }
    await this.presence.leave(this.workerId).catch(() => undefined);
    await this.broker.close();
    this.deps.caller.close();
    this.connection.disconnect();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
