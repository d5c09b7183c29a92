import { publish, type RedisClient } from '@mcp-gateway/redis';
import { ServiceConfigSchema, type ServiceConfig } from '@mcp-gateway/config';

export interface Registration {
  name: string;
  config: ServiceConfig;
  /** Set for a registration that lives only while heartbeats come (PUT .../heartbeat). */
  ttlSeconds?: number;
  registeredAt: string;
}

export type RegistryChangeKind = 'changed' | 'removed' | 'refresh';

/** What travels on the changes channel: which service, and what to do about it. */
export interface RegistryMessage {
  name: string;
  kind: RegistryChangeKind;
}

/**
 * Services registered at run time, in Redis, shared by every process. All keys carry the
 * `{registry}` hash tag (one cluster slot, so MULTI works); the hash is bounded by the number of
 * services an admin registers; a TTL registration's liveness key expires unless heartbeats renew it.
 * Credentials in a registration live here like the rest of the shared state: never in answers or logs.
 */
export class RegistrationStore {
  readonly hash: string;
  readonly channel: string;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {
    this.hash = `${prefix}:{registry}:services`;
    this.channel = `${prefix}:registry:changes`;
  }

  private alive(name: string): string {
    return `${this.prefix}:{registry}:alive:${name}`;
  }

  async put(name: string, config: ServiceConfig, ttlSeconds?: number): Promise<Registration> {
    const reg: Registration = { name, config, ...(ttlSeconds ? { ttlSeconds } : {}), registeredAt: new Date().toISOString() };
    const multi = this.redis.multi().hset(this.hash, name, JSON.stringify(reg));
    if (ttlSeconds) multi.set(this.alive(name), '1', 'EX', ttlSeconds);
    else multi.del(this.alive(name));
    await multi.exec();
    await this.announce({ name, kind: 'changed' });
    return reg;
  }

  async delete(name: string): Promise<boolean> {
    const [[, removed]] = (await this.redis.multi().hdel(this.hash, name).del(this.alive(name)).exec()) as [[null, number], unknown];
    if (removed) await this.announce({ name, kind: 'removed' });
    return removed === 1;
  }

  /** Renews a TTL registration: 'ok', 'missing' (unknown or already expired), or 'no_ttl'. */
  async heartbeat(name: string): Promise<'ok' | 'missing' | 'no_ttl'> {
    const reg = await this.get(name);
    if (!reg) return 'missing';
    if (!reg.ttlSeconds) return 'no_ttl';
    const renewed = await this.redis.expire(this.alive(name), reg.ttlSeconds);
    return renewed === 1 ? 'ok' : 'missing';
  }

  async get(name: string): Promise<Registration | undefined> {
    const raw = await this.redis.hget(this.hash, name);
    return raw ? this.parse(raw) : undefined;
  }

  /** Every live registration; expired ones are removed (and announced) on the way. */
  async list(): Promise<Registration[]> {
    const all = await this.redis.hgetall(this.hash);
    const regs = Object.values(all)
      .map((raw) => this.parse(raw))
      .filter((r): r is Registration => r !== undefined);
    const withTtl = regs.filter((r) => r.ttlSeconds);
    if (withTtl.length === 0) return regs;
    const alive = await Promise.all(withTtl.map((r) => this.redis.exists(this.alive(r.name))));
    const expired = new Set(withTtl.filter((_, i) => alive[i] === 0).map((r) => r.name));
    for (const name of expired) {
      // Only the process that actually removes it announces it.
      if ((await this.redis.hdel(this.hash, name)) === 1) await this.announce({ name, kind: 'removed' });
    }
    return regs.filter((r) => !expired.has(r.name));
  }

  async announce(message: RegistryMessage): Promise<void> {
    await publish(this.redis, this.channel, JSON.stringify(message));
  }

  private parse(raw: string): Registration | undefined {
    try {
      const r = JSON.parse(raw) as Registration;
      const config = ServiceConfigSchema.safeParse(r.config);
      return config.success ? { ...r, config: config.data } : undefined;
    } catch {
      return undefined;
    }
  }
}
