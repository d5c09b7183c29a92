import type { RedisClient } from '@mcp-gateway/redis';
import type { BrokerKeys } from './keys';

export interface LiveWorker {
  id: string;
  services: string[];
}

/** Worker heartbeats: a sorted set of worker ids by last beat, and which queues each serves. */
export class WorkerPresence {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: BrokerKeys,
    /** A worker not heard from for this long is not counted. */
    private readonly staleAfterMs = 15_000,
  ) {}

  /** Records a beat; workers gone for long are dropped from both keys, which expire when no worker beats. */
  async beat(workerId: string, services: string[], now = Date.now()): Promise<void> {
    const key = this.keys.workers();
    const keepMs = this.staleAfterMs * 4;
    await this.redis
      .multi()
      .zadd(key, now, workerId)
      .hset(`${key}:services`, workerId, services.join(','))
      .pexpire(key, keepMs)
      .pexpire(`${key}:services`, keepMs)
      .exec();
    const gone = await this.redis.zrangebyscore(key, '-inf', now - keepMs);
    if (gone.length > 0)
      await this.redis
        .multi()
        .zrem(key, ...gone)
        .hdel(`${key}:services`, ...gone)
        .exec();
  }

  async leave(workerId: string): Promise<void> {
    const key = this.keys.workers();
    await this.redis.multi().zrem(key, workerId).hdel(`${key}:services`, workerId).exec();
  }

  async live(now = Date.now()): Promise<LiveWorker[]> {
    const key = this.keys.workers();
    const ids = await this.redis.zrangebyscore(key, now - this.staleAfterMs, '+inf');
    if (ids.length === 0) return [];
    const services = await this.redis.hmget(`${key}:services`, ...ids);
    return ids.map((id, i) => ({ id, services: (services[i] ?? '').split(',').filter(Boolean) }));
  }
}
