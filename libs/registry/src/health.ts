import { randomUUID } from 'node:crypto';
import type { AxiosStatic } from 'axios';
import type { RedisClient } from '@mcp-gateway/redis';
import type { ServiceRegistry } from './registry';

export interface ProbeResult {
  status: 'healthy' | 'unhealthy';
  /** ISO time of the probe. */
  lastCheck: string;
  httpStatus?: number;
  latencyMs: number;
  /** Why it is unhealthy (status code or connection error), never a body. */
  error?: string;
}

export function healthKeys(prefix: string, service: string) {
  return { result: `${prefix}:{${service}}:health`, lock: `${prefix}:{${service}}:health:lock` };
}

/**
 * Probes each service's `healthPath` every `intervalMs`, by ONE process at a time across all API and
 * worker replicas: whoever takes the per-service lock (SET NX PX interval) probes and stores the
 * result in Redis, where every replica reads it. A lock is never released early, so a probe happens
 * at most once per interval whatever the number of replicas.
 */
export class HealthProber {
  private timer?: NodeJS.Timeout;
  private readonly owner = randomUUID();
  private running = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly registry: ServiceRegistry,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.timer) return;
    void this.tick();
    // Check more often than the interval so a lock left by a dead replica is taken over quickly.
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.intervalMs / 4)));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async read(service: string): Promise<ProbeResult | undefined> {
    const raw = await this.redis.get(healthKeys(this.prefix, service).result);
    if (!raw) return undefined;
    try {
      return JSON.parse(raw) as ProbeResult;
    } catch {
      return undefined;
    }
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await Promise.all(
        this.registry.names().map(async (name) => {
          const svc = this.registry.get(name);
          if (!svc?.healthPath) return;
          const k = healthKeys(this.prefix, name);
          const mine = await this.redis.set(k.lock, this.owner, 'PX', this.intervalMs, 'NX').catch(() => null);
          if (mine !== 'OK') return;
          const result = await probe(svc.endpoint, svc.healthPath, Math.min(5000, this.intervalMs));
          await this.redis.set(k.result, JSON.stringify(result), 'PX', this.intervalMs * 3).catch(() => undefined);
        }),
      );
    } finally {
      this.running = false;
    }
  }
}

async function probe(endpoint: string, healthPath: string, timeoutMs: number): Promise<ProbeResult> {
  // Loaded on the first probe: a service with no healthPath (the default) is never probed, and an API
  // process has no other use for axios.
  const axios = require('axios') as AxiosStatic;
  const url = new URL(endpoint);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${healthPath}`;
  const started = Date.now();
  const lastCheck = new Date(started).toISOString();
  try {
    const res = await axios.get(url.toString(), { timeout: timeoutMs, maxRedirects: 0, validateStatus: () => true, responseType: 'text' });
    const ok = res.status >= 200 && res.status < 300;
    return {
      status: ok ? 'healthy' : 'unhealthy',
      lastCheck,
      httpStatus: res.status,
      latencyMs: Date.now() - started,
      ...(ok ? {} : { error: `answered ${res.status}` }),
    };
  } catch (err) {
    const code = axios.isAxiosError(err) ? (err.code ?? 'ERR_NETWORK') : 'ERR_NETWORK';
    return { status: 'unhealthy', lastCheck, latencyMs: Date.now() - started, error: code };
  }
}
