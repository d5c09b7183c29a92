import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CircuitLevel } from './series';

export type CircuitStateName = 'closed' | 'open' | 'half_open';

/** What the shared-state gauges read on each scrape (any process can: the state is in Redis). */
export interface SharedStateSource {
  services(): string[];
  circuit(service: string): Promise<CircuitStateName>;
  tokens(service: string): Promise<number>;
  queue(service: string): Promise<{ waiting: number; active: number; delayed: number }>;
  /** Live workers serving each service (their heartbeats); a process that cannot tell leaves it out. */
  workers?(): Promise<ReadonlyMap<string, number>>;
  /** Dead letters kept for the service; a process that cannot tell leaves it out. */
  deadLetters?(service: string): Promise<number>;
}

/** A circuit state as a number: the gauge's value, and the console's series. */
export const CIRCUIT_LEVEL: Record<CircuitStateName, CircuitLevel> = { closed: 0, half_open: 1, open: 2 };

/** Seconds buckets from 5 ms to 60 s: gateway overhead and slow backends on one scale. */
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The `agent` label of every agent that is not configured (JWT subjects are not bounded). */
export const OTHER_AGENT = '_other';

/** An agent's `agent` label: its id when it is one of the configured agents, else OTHER_AGENT. */
export function agentLabel(agentId: string, configured: ReadonlySet<string>): string {
  return configured.has(agentId) ? agentId : OTHER_AGENT;
}

/**
 * The Prometheus metrics of one process (API, worker, or both in one). Labels are bounded: service
 * names come from the registry, operations from definitions (dynamic services report `_dynamic`),
 * outcomes and codes from the error catalog, routes from the router, agents from the configuration
 * (agentLabel). No request ids, ever.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'service' | 'operation' | 'outcome'>;
  readonly agentRequests: Counter<'agent' | 'service' | 'outcome'>;
  readonly totalSeconds: Histogram<'service' | 'outcome'>;
  readonly queueWaitSeconds: Histogram<'service'>;
  readonly backendSeconds: Histogram<'service' | 'operation'>;
  readonly retries: Counter<'service'>;
  readonly rejections: Counter<'code'>;
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  private readonly waiterSources: (() => number)[] = [];
  private sharedSources: SharedStateSource[] = [];

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'mcp_gateway_requests_total',
      help: 'Requests that ended, by service, operation and outcome (success or an error code)',
      labelNames: ['service', 'operation', 'outcome'],
      registers,
    });
    this.agentRequests = new Counter({
      name: 'mcp_gateway_agent_requests_total',
      help: 'Requests that ended, by agent (a configured one, else _other), service and outcome',
      labelNames: ['agent', 'service', 'outcome'],
      registers,
    });
    this.totalSeconds = new Histogram({
      name: 'mcp_gateway_request_duration_seconds',
      help: 'Accepted to ended, queue wait and retries included',
      labelNames: ['service', 'outcome'],
      buckets: SECONDS,
      registers,
    });
    this.queueWaitSeconds = new Histogram({
      name: 'mcp_gateway_queue_wait_seconds',
      help: 'Accepted to first taken by a worker',
      labelNames: ['service'],
      buckets: SECONDS,
      registers,
    });
    this.backendSeconds = new Histogram({
      name: 'mcp_gateway_backend_duration_seconds',
      help: 'One backend call (each attempt)',
      labelNames: ['service', 'operation'],
      buckets: SECONDS,
      registers,
    });
    this.retries = new Counter({ name: 'mcp_gateway_retries_total', help: 'Retries scheduled', labelNames: ['service'], registers });
    this.rejections = new Counter({
      name: 'mcp_gateway_api_errors_total',
      help: 'Error answers of the HTTP API by code (validation, auth, fast fail, …)',
      labelNames: ['code'],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'mcp_gateway_http_requests_total',
      help: 'HTTP requests to the API by route template, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    const waiters = this.waiterSources;
    new Gauge({
      name: 'mcp_gateway_sync_waiters',
      help: 'Callers waiting for a result in this process',
      registers,
      collect() {
        this.set(waiters.reduce((n, f) => n + f(), 0));
      },
    });
    const shared = () => this.sharedSources;
    /** `fn` once per service, with the first source that knows it (and, with `has`, can answer it). */
    const perService = async (fn: (src: SharedStateSource, service: string) => Promise<void>, has = (_src: SharedStateSource) => true) => {
      const seen = new Set<string>();
      for (const src of shared().filter(has)) {
        for (const service of src.services()) {
          if (seen.has(service)) continue;
          seen.add(service);
          await fn(src, service).catch(() => undefined);
        }
      }
    };
    new Gauge({
      name: 'mcp_gateway_circuit_state',
      help: 'Circuit breaker per service: 0 closed, 1 half-open, 2 open (shared state)',
      labelNames: ['service'],
      registers,
      async collect() {
        this.reset();
        await perService(async (src, s) => this.set({ service: s }, CIRCUIT_LEVEL[await src.circuit(s)]));
      },
    });
    new Gauge({
      name: 'mcp_gateway_rate_limiter_tokens',
      help: 'Tokens in the service bucket (negative: reserved by waiting jobs) (shared state)',
      labelNames: ['service'],
      registers,
      async collect() {
        this.reset();
        await perService(async (src, s) => this.set({ service: s }, await src.tokens(s)));
      },
    });
    new Gauge({
      name: 'mcp_gateway_workers',
      help: 'Live worker processes serving the service, from their heartbeats (shared state)',
      labelNames: ['service'],
      registers,
      async collect() {
        this.reset();
        const source = shared().find((src) => src.workers);
        const serving = await source?.workers?.().catch(() => undefined);
        if (!source || !serving) return;
        for (const service of source.services()) this.set({ service }, serving.get(service) ?? 0);
      },
    });
    new Gauge({
      name: 'mcp_gateway_dead_letters',
      help: 'Failed requests kept for replay, per service (shared state)',
      labelNames: ['service'],
      registers,
      async collect() {
        this.reset();
        await perService(
          async (src, s) => this.set({ service: s }, await src.deadLetters!(s)),
          (src) => src.deadLetters !== undefined,
        );
      },
    });
    new Gauge({
      name: 'mcp_gateway_queue_jobs',
      help: 'Jobs in the service queue by state (shared state)',
      labelNames: ['service', 'state'],
      registers,
      async collect() {
        this.reset();
        await perService(async (src, s) => {
          const q = await src.queue(s);
          for (const state of ['waiting', 'active', 'delayed'] as const) this.set({ service: s, state }, q[state]);
        });
      },
    });
  }

  /** Counts this source's waiters in `mcp_gateway_sync_waiters`. */
  watchWaiters(count: () => number): void {
    this.waiterSources.push(count);
  }

  /** Reads circuit, tokens and queue depth from the shared state on each scrape. */
  watchSharedState(source: SharedStateSource): void {
    this.sharedSources.push(source);
  }

  /**
   * Drops every series of a service removed at run time: its counters and histograms would otherwise
   * stay until the process restarts, and services registered and removed over time (per-instance
   * names) would grow the series without bound.
   */
  async forgetService(service: string): Promise<void> {
    const perService: {
      get(): Promise<{ values: { labels: Record<string, string | number> }[] }>;
      remove(labels: Record<string, string | number>): void;
    }[] = [this.requests, this.agentRequests, this.totalSeconds, this.queueWaitSeconds, this.backendSeconds, this.retries];
    for (const metric of perService) {
      const series = new Map<string, Record<string, string | number>>();
      for (const { labels } of (await metric.get()).values) {
        if (labels.service !== service) continue;
        // A histogram's values are its buckets (`le`), sum and count: one series by the other labels.
        const { le: _bucket, ...own } = labels;
        series.set(JSON.stringify(own), own);
      }
      for (const labels of series.values()) metric.remove(labels);
    }
  }

  contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
