import os from 'node:os';
import type { Job } from 'bullmq';
import type { RedisClient } from '@mcp-gateway/redis';
import { configuredAgentIds, redactConfig, type GatewayConfig } from '@mcp-gateway/config';
import { BackendCaller } from '@mcp-gateway/backends';
import {
  Broker,
  BrokerKeys,
  DeadLetters,
  durabilityOf,
  LANES,
  RequestRecords,
  WorkerPresence,
  type GatewayJobData,
} from '@mcp-gateway/broker';
import { GatewayMetrics, ServiceStats } from '@mcp-gateway/metrics';
import { HealthProber, RegistrationStore, ServiceRegistry, type RegistryChange } from '@mcp-gateway/registry';
import { checkTopology, coalesceWrites, createRedis, finishThenClose, subscribe } from '@mcp-gateway/redis';
import { AdmissionLeases, ResilienceStore, resilienceEventsChannel } from '@mcp-gateway/resilience';
import { Tracing, type Logger } from '@mcp-gateway/observability';
import { InFlightCalls } from './in-flight';
import { LazyFetchWorker } from './lazy-fetch-worker';
import { createProcessor, publishAbandoned, RetryLater, type PipelineDeps } from './pipeline';

/** How often a worker writes the request stats it has added up (GET /mcp/services/:name/metrics lags by at most this). */
export const STATS_FLUSH_MS = 250;
/** How long a stop waits, after its grace period, for its last writes (stats, presence) before closing. */
export const STOP_CLEANUP_MS = 5000;

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
  /** Spans for queue, job and backend call; off unless given. */
  tracing?: Tracing;
}

/**
 * One BullMQ Worker per lane of each served service queue (a LazyFetchWorker), all sharing one
 * pipeline, one Redis client and one HTTP client. Without a fixed service list (WORKER_SERVICES) the
 * pool follows the registry: a service registered at run time gets a queue consumer, a removed one
 * loses it.
 */
export class WorkerPool {
  readonly workerId: string;
  /** A served service's workers, one per lane. */
  private readonly byService = new Map<string, LazyFetchWorker[]>();
  private readonly connection: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly presence: WorkerPresence;
  private readonly deps: PipelineDeps;
  readonly metrics: GatewayMetrics;
  private readonly broker: Broker;
  private readonly registrations: RegistrationStore;
  private readonly prober: HealthProber;
  private heartbeat?: NodeJS.Timeout;
  /** The fixed list, or undefined: every service the registry knows. */
  private readonly fixed?: string[];
  private processor?: ReturnType<typeof createProcessor>;
  private stopping = false;
  private changes: Promise<void> = Promise.resolve();
  private readonly cancels: string;
  /** A request cancelled while it runs: the worker whose call it is abandons it. */
  private readonly onMessage = (channel: string, message: string) => {
    if (channel === this.cancels) this.onCancel(message);
    else if (channel === this.breakerEvents) this.leases.heard(message);
  };
  private onCancel(id: string): void {
    if (this.deps.inFlight.abort(id))
      this.options.logger.info({ id, workerId: this.workerId }, 'call abandoned: the request was cancelled');
  }
  /** This process's leases of rate-limit tokens; breaker news from other processes drops them. */
  private readonly leases: AdmissionLeases;
  private readonly breakerEvents: string;

  constructor(private readonly options: WorkerPoolOptions) {
    const { config } = options;
    this.workerId = options.workerId ?? `${os.hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
    this.fixed = options.services ?? config.worker.services;
    // Every job's commands, BullMQ's included (its blocking reads use a duplicate of this connection),
    // sent coalesced: one write per event-loop turn (see coalesceWrites).
    this.connection = coalesceWrites(createRedis(config.redis, 'blocking', `mcp-worker:${this.workerId}`));
    this.subscriber = createRedis(config.redis, 'subscriber', `mcp-worker-events:${this.workerId}`);
    const keys = new BrokerKeys(config.redis.keyPrefix);
    this.cancels = keys.cancelsChannel();
    this.presence = new WorkerPresence(this.connection, keys);
    const registry = new ServiceRegistry(config, {
      onDefinitionError: (service, err) => options.logger.error({ service, err: err.message }, 'service definition could not be loaded'),
    });
    this.registrations = new RegistrationStore(this.connection, config.redis.keyPrefix);
    this.prober = new HealthProber(this.connection, config.redis.keyPrefix, registry, config.health.intervalMs);
    this.metrics = options.metrics ?? new GatewayMetrics();
    // For queue counts only (the worker never submits).
    this.broker = new Broker({
      redis: this.connection,
      keyPrefix: config.redis.keyPrefix,
      resultTtlSeconds: config.results.ttlSeconds,
      durability: durabilityOf(config.redis.waitReplicas),
    });
    this.leases = new AdmissionLeases({ maxTokens: config.worker.leaseMaxTokens, lifeMs: config.worker.leaseMs });
    this.breakerEvents = resilienceEventsChannel(config.redis.keyPrefix);
    const resilience = new ResilienceStore(
      this.connection,
      config.redis.keyPrefix,
      {
        onStateChange: (service, from, to) => options.logger.warn({ service, from, to, workerId: this.workerId }, 'circuit state changed'),
      },
      this.leases,
    );
    this.metrics.watchSharedState({
      services: () => this.services,
      circuit: async (s) => (await resilience.breaker(s, registry.require(s))).state,
      tokens: async (s) => (await resilience.limiter(s, registry.require(s))).tokens,
      queue: (s) => this.broker.counts(s),
    });
    this.deps = {
      config,
      redis: this.connection,
      registry,
      metrics: this.metrics,
      // Written every STATS_FLUSH_MS per service rather than once per request (a Redis round trip each).
      stats: new ServiceStats(this.connection, config.redis.keyPrefix, undefined, STATS_FLUSH_MS),
      agents: configuredAgentIds(config),
      records: new RequestRecords(this.connection, keys, config.results.ttlSeconds, durabilityOf(config.redis.waitReplicas)),
      deadLetters: new DeadLetters(this.connection, keys, config.deadLetters),
      caller: new BackendCaller({ redis: this.connection, keyPrefix: config.redis.keyPrefix }),
      resilience,
      tracing: options.tracing ?? Tracing.off,
      inFlight: new InFlightCalls(),
      logger: options.logger,
      workerId: this.workerId,
    };
  }

  /** The queues this process consumes now. */
  get services(): string[] {
    return [...this.byService.keys()];
  }

  async start(): Promise<void> {
    const { logger } = this.options;
    const registry = this.deps.registry;
    await checkTopology(this.subscriber, this.deps.config.redis);
    await registry.attach(this.registrations, this.subscriber);
    // Subscribed before the first job: no lease is taken that breaker news could miss.
    await subscribe(this.subscriber, [this.cancels, this.breakerEvents], this.onMessage);
    await registry.init();
    this.processor = createProcessor(this.deps);
    const initial = this.fixed ?? registry.names();
    for (const service of initial) {
      if (!registry.get(service)) throw new Error(`WORKER_SERVICES names unknown service ${service}`);
      this.consume(service);
    }
    if (!this.fixed) {
      registry.on('change', (c: RegistryChange) => {
        // Applied one after another, so a quick add-remove-add ends in the right state.
        this.changes = this.changes
          .then(() => this.apply(c))
          .catch((err: unknown) => logger.error({ service: c.name, err: String(err) }, 'could not follow a registry change'));
      });
    }
    await Promise.all([...this.byService.values()].flat().map((w) => w.waitUntilReady()));
    this.prober.start();
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat(), this.options.heartbeatMs ?? 5000);
    this.heartbeat.unref();
    logger.debug({ config: redactConfig(this.options.config) }, 'configuration');
    logger.info({ workerId: this.workerId, services: this.services }, 'worker ready');
  }

  private async apply(change: RegistryChange): Promise<void> {
    if (this.stopping) return;
    const current = this.byService.get(change.name);
    if (change.kind === 'removed') {
      if (!current) return;
      this.byService.delete(change.name);
      await Promise.all(current.map((w) => w.close()));
      await this.deps.metrics.forgetService(change.name);
      this.options.logger.info({ service: change.name, workerId: this.workerId }, 'stopped consuming a removed service');
    } else if (!current) {
      await Promise.all(this.consume(change.name).map((w) => w.waitUntilReady()));
      this.options.logger.info({ service: change.name, workerId: this.workerId }, 'consuming a registered service');
    } else {
      const svc = this.deps.registry.get(change.name);
      if (svc) for (const w of current) w.concurrency = svc.concurrency ?? this.options.config.worker.concurrency;
    }
    await this.beat();
  }

  /** A worker for each lane of the service's queue: each lane has the service's concurrency. */
  private consume(service: string): LazyFetchWorker[] {
    const keys = new BrokerKeys(this.options.config.redis.keyPrefix);
    const workers = LANES.map((lane) => this.laneWorker(service, keys.queueName(service, lane)));
    this.byService.set(service, workers);
    return workers;
  }

  private laneWorker(service: string, queueName: string): LazyFetchWorker {
    const { config, logger } = this.options;
    const svc = this.deps.registry.require(service);
    const worker = new LazyFetchWorker(queueName, this.processor!, {
      connection: this.connection,
      prefix: config.redis.keyPrefix,
      concurrency: svc.concurrency ?? config.worker.concurrency,
      // A killed worker's job is taken over once its lock expires (WORKER_LOCK_MS), not 30 s later.
      lockDuration: config.worker.lockMs,
      stalledInterval: Math.max(500, Math.floor(config.worker.lockMs / 2)),
      maxStalledCount: 2,
      settings: {
        // Only the pipeline's own RetryLater is retried; any other error ended the request (its result is published).
        backoffStrategy: (_attemptsMade: number, _type?: string, err?: Error) => (err instanceof RetryLater ? err.delayMs : -1),
      },
    });
    worker.on('failed', (job: Job<GatewayJobData> | undefined, err: Error) => {
      if (!job) return;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1) || !(err instanceof RetryLater);
      if (!final) return;
      if (!(err instanceof RetryLater)) logger.error({ id: job.data.id, err: err.message }, 'job failed outside the pipeline');
      publishAbandoned(this.deps, job, err).catch((e: unknown) =>
        logger.error({ id: job.data.id, err: String(e) }, 'could not publish the result of a failed job'),
      );
    });
    worker.on('error', (err) => logger.warn({ service, err: err.message }, 'worker connection error'));
    return worker;
  }

  private async beat(): Promise<void> {
    try {
      await this.presence.beat(this.workerId, this.services);
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'worker heartbeat failed');
    }
  }

  /**
   * Stops taking jobs, lets the active ones finish for the grace period, then leaves. What it still
   * waits for after grace + STOP_CLEANUP_MS (Redis unreachable) is cut off: a stop always ends.
   */
  async stop(): Promise<void> {
    const grace = this.options.shutdownGraceMs ?? this.options.config.shutdownGraceMs;
    if (!(await finishThenClose(this.stopSteps(grace), grace + STOP_CLEANUP_MS, [this.subscriber, this.connection]))) {
      this.options.logger.warn(
        { afterMs: grace + STOP_CLEANUP_MS },
        'stop did not finish within the grace period and the cleanup limit (a job still running, or Redis unreachable); its connections were closed',
      );
    }
    this.deps.caller.close();
  }

  private async stopSteps(grace: number): Promise<void> {
    this.stopping = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.prober.stop();
    await this.deps.registry.detach();
    await this.changes;
    const workers = [...this.byService.values()].flat();
    const closing = Promise.all(workers.map((w) => w.close()));
    const timedOut = await Promise.race([closing.then(() => false), sleep(grace).then(() => true)]);
    if (timedOut) {
      // worker.close() has no time limit; jobs still running are left to the stall checker of another worker.
      this.options.logger.warn({ graceMs: grace }, 'active jobs did not finish within the grace period; closing anyway');
      await Promise.all(workers.map((w) => w.close(true).catch(() => undefined)));
    }
    // Cancellations are heard until the last active job ended: one cancelled in the grace period is abandoned.
    this.subscriber.off('message', this.onMessage);
    this.subscriber.off('smessage', this.onMessage);
    await this.deps.stats
      .close()
      .catch((err: unknown) => this.options.logger.warn({ err: String(err) }, 'request stats not written on stop'));
    await this.presence.leave(this.workerId).catch(() => undefined);
    await this.broker.close();
    await this.deps.tracing.forceFlush().catch(() => undefined);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
