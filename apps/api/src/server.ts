import http from 'node:http';
import { GatewayError } from '@mcp-gateway/protocol';
import type { AddressInfo } from 'node:net';
import type { RedisClient } from '@mcp-gateway/redis';
import {
  assertSafeToServe,
  configuredAgentIds,
  OVERDUE_SWEEP_EVERY_MS,
  overdueGraceMs,
  redactConfig,
  type GatewayConfig,
} from '@mcp-gateway/config';
import { ParameterValidator } from '@mcp-gateway/backends';
import {
  Broker,
  DeadLetters,
  deadLetterOf,
  durabilityOf,
  isDeadLetter,
  LateIndex,
  ResultWaiter,
  WorkerPresence,
  type EndedRequest,
} from '@mcp-gateway/broker';
import { HealthProber, RegistrationStore, ServiceRegistry } from '@mcp-gateway/registry';
import { checkTopology, coalesceWrites, createRedis, finishThenClose, subscribe } from '@mcp-gateway/redis';
import { AgentQuotas, ResilienceStore, resilienceEventsChannel } from '@mcp-gateway/resilience';
import { logScalars, Tracing, type Logger } from '@mcp-gateway/observability';
import { AgentUsage, agentLabel, CIRCUIT_LEVEL, GatewayMetrics, ServiceSeries, ServiceStats } from '@mcp-gateway/metrics';
import { createApp, serverOptionsFor } from './app';
import { FastFailReadings } from './fast-fail';
import { Lifecycle } from './lifecycle';
import type { ApiDeps } from './deps';
import { workersByService } from './services';

/** How often an API process samples the queues and circuits for the console's series. */
const SAMPLE_EVERY_MS = 10_000;

/** How long a stop waits, after its HTTP server closed, for its last Redis steps before closing its connections. */
const STOP_CLEANUP_MS = 5000;

export interface ApiServerOptions {
  config: GatewayConfig;
  logger: Logger;
  /** Shared with workers in the same process (all-in-one gateway); else the API makes its own. */
  metrics?: GatewayMetrics;
  /** A span per POST /mcp/request; off unless given. */
  tracing?: Tracing;
  /**
   * The sweep that ends requests left without a result long after their deadline (no worker serves
   * their queue, or the one that took them never finished): every `everyMs` (5 s), those `graceMs`
   * past it (twice the job lock plus 5 s: by then a worker that serves the queue has ended them).
   */
  sweep?: { everyMs?: number; graceMs?: number };
}

/** The API process's parts: a fail-fast Redis client, one subscriber, the broker and the HTTP server. */
export class ApiServer {
  readonly deps: ApiDeps;
  private readonly redis: RedisClient;
  private readonly subscriber: RedisClient;
  private server?: http.Server;
  private closeStreams: () => void = () => undefined;
  private sweeper?: NodeJS.Timeout;
  private sampledAt = 0;
  private readonly sweepEveryMs: number;
  private readonly sweepGraceMs: number;
  /** The HTTP app, once started (its routes are what `/openapi.json` describes). */
  app?: ReturnType<typeof createApp>;
  /** How long stop() lets in-flight requests finish (default: the config's shutdownGraceMs). */
  stopGraceMs?: number;

  constructor(options: ApiServerOptions) {
    const { config, logger } = options;
    assertSafeToServe(config);
    this.sweepEveryMs = options.sweep?.everyMs ?? OVERDUE_SWEEP_EVERY_MS;
    this.sweepGraceMs = options.sweep?.graceMs ?? overdueGraceMs(config.worker.lockMs);
    // Every request's commands: sent coalesced, one write per event-loop turn (see coalesceWrites).
    this.redis = coalesceWrites(createRedis(config.redis, 'command', 'mcp-api'));
    this.subscriber = createRedis(config.redis, 'subscriber', 'mcp-api-results');
    const broker = new Broker({
      redis: this.redis,
      keyPrefix: config.redis.keyPrefix,
      resultTtlSeconds: config.results.ttlSeconds,
      durability: durabilityOf(config.redis.waitReplicas),
      onEnded: (ended) => this.recordEnded(ended),
    });
    const resilience = new ResilienceStore(this.redis, config.redis.keyPrefix);
    const deadLetters = new DeadLetters(this.redis, broker.keys, config.deadLetters);
    const registry = new ServiceRegistry(config, {
      onDefinitionError: (service, err) => logger.error({ service, err: err.message }, 'service definition could not be loaded'),
    });
    const waiter = new ResultWaiter(this.subscriber, broker.records, broker.keys);
    const metrics = options.metrics ?? new GatewayMetrics();
    metrics.watchWaiters(() => waiter.size);
    metrics.watchSharedState({
      services: () => registry.names(),
      circuit: async (s) => (await resilience.breaker(s, registry.require(s))).state,
      tokens: async (s) => (await resilience.limiter(s, registry.require(s))).tokens,
      queue: (s) => broker.counts(s),
      workers: async () => (await workersByService(this.deps)).serving,
      deadLetters: (s) => deadLetters.count(s),
    });
    this.deps = {
      lifecycle: new Lifecycle(() => waiter.cancelAll()),
      config,
      redis: this.redis,
      logger,
      broker,
      waiter,
      lateIndex: new LateIndex(broker.records, (err) =>
        logger.warn({ err: String(err) }, 'sync requests not indexed for the sweep; tried again shortly'),
      ),
      registry,
      registrations: new RegistrationStore(this.redis, config.redis.keyPrefix),
      health: new HealthProber(this.redis, config.redis.keyPrefix, registry, config.health.intervalMs),
      validator: new ParameterValidator(),
      presence: new WorkerPresence(this.redis, broker.keys),
      resilience,
      fastFail: new FastFailReadings(resilience, broker),
      agentQuotas: new AgentQuotas(this.redis, config.redis.keyPrefix),
      series: new ServiceSeries(this.redis, config.redis.keyPrefix),
      deadLetters,
      metrics,
      tracing: options.tracing ?? Tracing.off,
      stats: new ServiceStats(this.redis, config.redis.keyPrefix),
      usage: new AgentUsage(this.redis, config.redis.keyPrefix),
      agents: configuredAgentIds(config),
    };
  }

  /**
   * A request this process ended itself (cancelled, swept past its deadline, its service removed):
   * its `request finished` line, metrics and stats, as a worker gives the requests it ends.
   */
  private recordEnded({ result, acceptedAt, agentId, job }: EndedRequest): void {
    const { logger, metrics, stats, registry, agents } = this.deps;
    const m = result.metadata;
    const outcome = result.status === 'success' ? 'success' : (result.error?.code ?? 'INTERNAL_ERROR');
    const totalMs = Math.max(0, Date.parse(m.completedAt) - acceptedAt);
    logScalars(
      logger,
      'info',
      {
        id: result.id,
        correlationId: m.correlationId,
        agentId,
        service: m.service,
        operation: m.operation,
        outcome,
        attempts: m.attempts,
        queuedMs: m.queuedMs,
        processingTime: m.processingTime,
        totalMs,
        stored: true,
      },
      'request finished',
    );
    // A removed service has no series any more (its name may never come back).
    if (!registry.get(m.service)) return;
    // Its agent's usage too (no backend time: the API made no call).
    stats
      .record(m.service, outcome, totalMs, agentId ? { agentId } : undefined)
      .catch((err: unknown) => logger.warn({ service: m.service, err: String(err) }, 'request stats not recorded'));
    metrics.totalSeconds.observe({ service: m.service, outcome }, totalMs / 1000);
    if (agentId) metrics.agentRequests.inc({ agent: agentLabel(agentId, agents), service: m.service, outcome });
    void registry
      .operationLabel(m.service, m.operation)
      .then((operation) => metrics.requests.inc({ service: m.service, operation, outcome }));
    // A request swept past its deadline may pass later: kept, when its job was there to say what it asked.
    if (job && isDeadLetter(result))
      this.deps.deadLetters
        .add(deadLetterOf(job, result, Date.parse(m.completedAt)))
        .catch((err: unknown) => logger.warn({ id: result.id, service: m.service, err: String(err) }, 'the dead letter was not kept'));
  }

  /** Listens on `port` (0 for any free one) and resolves with the bound address. */
  async start(port = this.deps.config.port, host = this.deps.config.host): Promise<AddressInfo> {
    await checkTopology(this.subscriber, this.deps.config.redis);
    await this.deps.waiter.start();
    // A service removed at run time is no longer consumed: requests still waiting in its queue end now.
    this.deps.registry.on('change', (c: { name: string; kind: string }) => {
      if (c.kind !== 'removed') return;
      const error = new GatewayError('UNKNOWN_SERVICE', `Service ${c.name} was removed before this request could run`).toBody();
      this.deps.broker
        .failWaiting(c.name, error)
        .then((n) => n > 0 && this.deps.logger.warn({ service: c.name, ended: n }, 'ended the requests waiting for a removed service'))
        .catch((err: unknown) =>
          this.deps.logger.error({ service: c.name, err: String(err) }, 'could not end the requests of a removed service'),
        );
    });
    await this.deps.registry.attach(this.deps.registrations, this.subscriber);
    // Breaker news retires the service's fast-fail reading.
    const events = resilienceEventsChannel(this.deps.config.redis.keyPrefix);
    await subscribe(this.subscriber, [events], (channel, message) => channel === events && this.deps.fastFail.heard(message));
    await this.deps.registry.init();
    this.deps.health.start();
    this.sweeper = setInterval(() => void this.sweep(), this.sweepEveryMs);
    this.sweeper.unref();
    // The charts have a point from the start.
    void this.sampleSeries();
    const app = createApp(this.deps);
    this.app = app;
    this.closeStreams = () => (app.locals.closeStreams as (() => void) | undefined)?.();
    const server = http.createServer(serverOptionsFor(app), app);
    // Longer than common load balancers' idle timeouts, so they close first.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    // Receiving a request (not waiting for its result) may take at most this long: slow clients cannot hold sockets forever.
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const address = server.address() as AddressInfo;
    this.deps.logger.debug({ config: redactConfig(this.deps.config) }, 'configuration');
    this.deps.logger.info({ port: address.port, host }, 'api ready');
    return address;
  }

  /** Ends what outlived its deadline without a result (see `ApiServerOptions.sweep`); samples the charts' series. */
  private async sweep(): Promise<void> {
    const { broker, logger } = this.deps;
    await this.sampleSeries();
    try {
      const ended = await broker.sweepOverdue(this.sweepGraceMs, this.sweepEveryMs);
      if (ended.length > 0)
        logger.warn(
          { ended: ended.length, ids: ended.slice(0, 10), graceMs: this.sweepGraceMs },
          'ended requests that outlived their deadline without a result',
        );
    } catch (err) {
      logger.warn({ err: String(err) }, 'the sweep of overdue requests failed; the next one tries again');
    }
  }

  /**
   * Every SAMPLE_EVERY_MS, each service's waiting jobs and circuit state into its minute of the
   * console's series (the minute keeps the worst seen, so every replica may sample).
   */
  private async sampleSeries(): Promise<void> {
    const { registry, broker, resilience, series, logger } = this.deps;
    if (Date.now() - this.sampledAt < SAMPLE_EVERY_MS) return;
    this.sampledAt = Date.now();
    await Promise.all(
      registry.names().map(async (name) => {
        const [queue, breaker] = await Promise.all([broker.counts(name), resilience.breaker(name, registry.require(name))]);
        await series.sample(name, queue.waiting, CIRCUIT_LEVEL[breaker.state]);
      }),
    ).catch((err: unknown) => logger.warn({ err: String(err) }, 'the series sample failed; the next one tries again'));
  }

  get address(): AddressInfo | undefined {
    return this.server?.address() as AddressInfo | undefined;
  }

  /**
   * Graceful: readiness fails and new requests are refused at once; requests in flight get the grace
   * period to finish; callers still waiting then get 202 with their poll link (their jobs go on);
   * only then are connections closed. Nothing accepted is lost.
   */
  async stop(): Promise<void> {
    const { lifecycle, logger } = this.deps;
    lifecycle.stopping = true;
    clearInterval(this.sweeper);
    if (this.server) {
      const server = this.server;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      this.closeStreams();
      const grace = this.stopGraceMs ?? this.deps.config.shutdownGraceMs;
      if (!(await lifecycle.idle(grace))) {
        logger.warn(
          { inFlight: lifecycle.inFlight, graceMs: grace },
          'grace period over: answering waiting callers 202 with their poll link',
        );
        lifecycle.releaseWaiters();
        await lifecycle.idle(2000);
      }
      server.closeAllConnections();
      await closed;
    }
    this.deps.health.stop();
    const steps = (async () => {
      // Every wait has ended by now: what is still held is indexed before the connections close.
      await this.deps.lateIndex.close();
      await this.deps.registry.detach();
      await this.deps.waiter.close();
      await this.deps.broker.close();
      await this.deps.tracing.forceFlush().catch(() => undefined);
    })();
    if (!(await finishThenClose(steps, STOP_CLEANUP_MS, [this.subscriber, this.redis]))) {
      logger.warn({ afterMs: STOP_CLEANUP_MS }, 'stop did not finish (is Redis reachable?); its connections were closed');
    }
  }
}
