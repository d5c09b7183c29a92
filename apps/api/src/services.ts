import type { Request, Response } from 'express';
import { callableDefinition, GatewayError } from '@mcp-gateway/protocol';
import type { ProbeResult } from '@mcp-gateway/registry';
import { mayUse } from './auth';
import type { ApiDeps } from './deps';

/** The endpoint as it may be shown: no user-info, no query string (either may hold a secret). */
export function publicEndpoint(endpoint: string): string {
  const u = new URL(endpoint);
  u.username = '';
  u.password = '';
  u.search = '';
  u.hash = '';
  return u.toString().replace(/\/$/, '');
}

/**
 * A service's status from the shared state: `unavailable` without a worker serving it, `unhealthy`
 * when its health probe fails, `degraded` while its circuit is not closed, else `healthy`.
 */
async function serviceState(
  deps: ApiDeps,
  name: string,
  workers: number,
): Promise<{ status: string; circuit: string; lastCheck?: string; probe?: ProbeResult }> {
  const svc = deps.registry.require(name);
  const [breaker, probe] = await Promise.all([deps.resilience.breaker(name, svc), deps.health.read(name).catch(() => undefined)]);
  const status =
    workers === 0 ? 'unavailable' : probe?.status === 'unhealthy' ? 'unhealthy' : breaker.state === 'closed' ? 'healthy' : 'degraded';
  return { status, circuit: breaker.state, ...(probe ? { lastCheck: probe.lastCheck, probe } : {}) };
}

/** The live workers, and how many serve each service. */
export async function workersByService(deps: ApiDeps): Promise<{ count: number; serving: Map<string, number> }> {
  const live = await deps.presence.live();
  const serving = new Map<string, number>();
  for (const w of live) for (const s of w.services) serving.set(s, (serving.get(s) ?? 0) + 1);
  return { count: live.length, serving };
}

export function serviceHandlers(deps: ApiDeps) {
  const { broker, registry, resilience } = deps;

  /** GET /mcp/health — 503 when Redis cannot be reached (the gateway cannot accept work). */
  async function health(_req: Request, res: Response): Promise<void> {
    const redisUp = await broker.ping();
    const now = new Date().toISOString();
    if (!redisUp) {
      res.status(503).json({ status: 'unhealthy', redis: 'down', workers: { count: 0 }, services: {} });
      return;
    }
    const { count, serving } = await workersByService(deps).catch(() => ({ count: 0, serving: new Map<string, number>() }));
    const services: Record<string, { status: string; circuit: string; workers: number; lastCheck: string }> = {};
    await Promise.all(
      registry.names().map(async (name) => {
        const n = serving.get(name) ?? 0;
        // lastCheck: the health probe's time when the service has a healthPath, else this read's.
        services[name] = { lastCheck: now, ...(await serviceState(deps, name, n)), workers: n };
      }),
    );
    const allServed = Object.values(services).every((s) => s.status === 'healthy');
    res.status(200).json({ status: allServed ? 'healthy' : 'degraded', redis: 'up', workers: { count }, services });
  }

  /** GET /mcp/services — never any credential. */
  async function list(req: Request, res: Response): Promise<void> {
    const { serving } = await workersByService(deps);
    const services = await Promise.all(
      registry
        .names()
        .filter((name) => mayUse(req, name))
        .map(async (name) => {
          const svc = registry.require(name);
          const [counts, def, state] = await Promise.all([
            broker.counts(name),
            registry.definition(name).catch(() => undefined),
            serviceState(deps, name, serving.get(name) ?? 0),
          ]);
          return {
            name,
            registered: !registry.isStatic(name),
            endpoint: publicEndpoint(svc.endpoint),
            ...(svc.description ? { description: svc.description } : {}),
            ...state,
            queueDepth: counts.waiting + counts.delayed,
            operations: def ? callableDefinition(req.agent, def).operations.length : 0,
            definitionSource: def?.source ?? 'unavailable',
          };
        }),
    );
    res.status(200).json({ services });
  }

  /** GET /mcp/services/:name/definition */
  async function definition(req: Request, res: Response): Promise<void> {
    const name = String(req.params.name);
    if (!registry.get(name) || !mayUse(req, name)) throw new GatewayError('UNKNOWN_SERVICE', `Unknown service: ${name}`);
    const def = await registry.definition(name);
    res.status(200).json(callableDefinition(req.agent, def));
  }

  /**
   * GET /mcp/services/:name/metrics — from the shared state only, so every API replica answers the same:
   * circuit, rate limiter, queue, latency percentiles over the recent window, counts by outcome.
   */
  async function metrics(req: Request, res: Response): Promise<void> {
    const name = String(req.params.name);
    const svc = registry.get(name);
    if (!svc || !mayUse(req, name)) throw new GatewayError('UNKNOWN_SERVICE', `Unknown service: ${name}`);
    const [circuit, rateLimiter, queue, stats] = await Promise.all([
      resilience.breaker(name, svc),
      resilience.limiter(name, svc),
      broker.counts(name),
      deps.stats.snapshot(name),
    ]);
    const ended = Object.entries(stats.counts);
    res.status(200).json({
      service: name,
      // The breaker counts failures only; successes are the request stats' count.
      circuit: { ...circuit, successes: stats.counts.success ?? 0 },
      rateLimiter: { ...rateLimiter, tokens: Math.round(rateLimiter.tokens * 1000) / 1000 },
      // BullMQ drops finished jobs (results live in our records), so completed/failed come from the stats.
      queue: {
        waiting: queue.waiting,
        active: queue.active,
        delayed: queue.delayed,
        completed: stats.counts.success ?? 0,
        failed: ended.filter(([o]) => o !== 'success').reduce((n, [, c]) => n + c, 0),
      },
      latency: stats.latency,
      counts: stats.counts,
    });
  }

  return { health, list, definition, metrics };
}
