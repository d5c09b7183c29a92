import { readFileSync } from 'node:fs';
import path from 'node:path';
import type Redis from 'ioredis';
import { resilienceEventsChannel, resilienceKeys } from './keys';
import type { Admission, AdmitOptions, BreakerOutcome, CircuitState, RecordResult, ResiliencePolicy } from './policy';

const read = (name: string) => readFileSync(path.join(__dirname, 'lua', `${name}.lua`), 'utf8');
/** Each script with the shared clock function in front of it. */
const lua = (name: string) => `${read('clock')}\n${read(name)}`;

interface Commands {
  mcpAdmit(
    breaker: string,
    trials: string,
    bucket: string,
    jobId: string,
    capacity: number,
    refillPerSec: number,
    recovery: number,
    halfOpenMax: number,
    permitTtl: number,
    now: string,
    maxWait: number,
    reservedAt: string,
  ): Promise<[number, number, CircuitState, 0 | 1, number?, number?]>;
  mcpPeek(
    breaker: string,
    bucket: string,
    wait: string,
    prioritized: string,
    capacity: number,
    refillPerSec: number,
    recovery: number,
    now: string,
  ): Promise<[number, number, number]>;
  mcpRecord(
    breaker: string,
    trials: string,
    jobId: string,
    outcome: BreakerOutcome,
    threshold: number,
    now: string,
    ttl: number,
  ): Promise<[CircuitState, CircuitState, number]>;
}

export interface BreakerSnapshot {
  state: CircuitState;
  failures: number;
  successes: number;
  /** When the circuit last opened (epoch ms); null while it is closed. */
  openedAt: number | null;
  /** When an open circuit lets the first trial through; null while it is closed. */
  nextAttemptAt: number | null;
}

export interface PeekResult {
  /** > 0 while the circuit is open: how long until it lets a trial through. */
  openWaitMs: number;
  /** > 0 when a new job would wait for a token: the jobs already queued take theirs first. */
  tokenWaitMs: number;
  /** Jobs waiting in the service queue. */
  queueDepth: number;
}

export interface LimiterSnapshot {
  tokens: number;
  capacity: number;
  refillPerSecond: number;
}

export interface CircuitEvent {
  type: 'circuit';
  service: string;
  from: CircuitState;
  to: CircuitState;
  /** Epoch ms (the emitting process's clock). */
  at: number;
}

export interface ResilienceEvents {
  /** A breaker changed state because of a recorded outcome (or half-opened on admission). */
  onStateChange?(service: string, from: CircuitState, to: CircuitState): void;
}

/**
 * The shared resilience state of every service, in Redis. Each admission and each outcome is one
 * script call (EVALSHA); the clock is Redis TIME unless a test passes `now`.
 */
export class ResilienceStore {
  private readonly redis: Redis & Commands;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly events: ResilienceEvents = {},
  ) {
    if (!(redis as Partial<Commands>).mcpAdmit) {
      redis.defineCommand('mcpAdmit', { numberOfKeys: 3, lua: lua('admit') });
      redis.defineCommand('mcpRecord', { numberOfKeys: 2, lua: lua('record') });
      redis.defineCommand('mcpPeek', { numberOfKeys: 4, lua: lua('peek') });
    }
    this.redis = redis as Redis & Commands;
  }

  /**
   * Breaker, then rate limit, for one call. `permitTtlMs` bounds how long a half-open trial permit
   * is held if its worker dies mid-call (use the call's remaining deadline plus a margin). With
   * `maxWaitMs`, an empty bucket reserves the caller a future token instead of refusing it.
   * (A number as the last argument is the test clock, as in earlier versions.)
   */
  async admit(
    service: string,
    jobId: string,
    policy: ResiliencePolicy,
    permitTtlMs: number,
    options: AdmitOptions | number = {},
  ): Promise<Admission> {
    const o: AdmitOptions = typeof options === 'number' ? { now: options } : options;
    const k = resilienceKeys(this.prefix, service);
    const { rateLimit: rl, circuitBreaker: cb } = policy;
    const [verdict, waitMs, state, halfOpened, milliTokens, slotAt] = await this.redis.mcpAdmit(
      k.breaker,
      k.trials,
      k.bucket,
      jobId,
      rl.burstLimit,
      rl.requestsPerMinute / 60,
      cb.recoveryTimeout,
      cb.halfOpenMaxCalls,
      Math.max(1, Math.ceil(permitTtlMs)),
      o.now === undefined ? '' : String(o.now),
      o.maxWaitMs === undefined ? -1 : Math.max(0, Math.floor(o.maxWaitMs)),
      o.reservedAt === undefined ? '' : String(Math.floor(o.reservedAt)),
    );
    if (halfOpened === 1) this.changed(service, 'open', 'half_open');
    const tokens = milliTokens === undefined || milliTokens === -1 ? undefined : milliTokens / 1000;
    if (verdict === 1) return { verdict: 'admitted', state, ...(tokens === undefined ? {} : { tokens }) };
    if (verdict === 3) return { verdict: 'rate_limited', waitMs, state, tokens: tokens ?? 0 };
    if (verdict === 4) return { verdict: 'reserved', waitMs, state, slotAt: Number(slotAt), ...(tokens === undefined ? {} : { tokens }) };
    return { verdict: 'circuit_open', waitMs, state };
  }

  async record(service: string, jobId: string, outcome: BreakerOutcome, policy: ResiliencePolicy, now?: number): Promise<RecordResult> {
    const k = resilienceKeys(this.prefix, service);
    const ttl = Math.max(policy.circuitBreaker.recoveryTimeout * 4, 3_600_000);
    const [before, after, failures] = await this.redis.mcpRecord(
      k.breaker,
      k.trials,
      jobId,
      outcome,
      policy.circuitBreaker.failureThreshold,
      now === undefined ? '' : String(now),
      ttl,
    );
    if (before !== after) this.changed(service, before, after);
    return { before, after, failures };
  }

  /**
   * A breaker transition: to this process's listener, and to every process on the events channel
   * (`<prefix>:events`, JSON `{type: 'circuit', service, from, to, at}`).
   */
  private changed(service: string, from: CircuitState, to: CircuitState): void {
    this.events.onStateChange?.(service, from, to);
    const event: CircuitEvent = { type: 'circuit', service, from, to, at: Date.now() };
    this.redis.publish(resilienceEventsChannel(this.prefix), JSON.stringify(event)).catch(() => undefined);
  }

  /**
   * The API's fast-fail check, one round trip: circuit open (wait), token for a new job (wait), queue depth.
   * `queueKeys` are the service queue's BullMQ wait list and prioritized set (same hash tag).
   */
  async peek(
    service: string,
    policy: ResiliencePolicy,
    queueKeys: { wait: string; prioritized: string },
    now?: number,
  ): Promise<PeekResult> {
    const k = resilienceKeys(this.prefix, service);
    const [openWaitMs, tokenWaitMs, queueDepth] = await this.redis.mcpPeek(
      k.breaker,
      k.bucket,
      queueKeys.wait,
      queueKeys.prioritized,
      policy.rateLimit.burstLimit,
      policy.rateLimit.requestsPerMinute / 60,
      policy.circuitBreaker.recoveryTimeout,
      now === undefined ? '' : String(now),
    );
    return { openWaitMs, tokenWaitMs, queueDepth };
  }

  /** The breaker as the API sees it before enqueueing (read-only). */
  async breaker(service: string, policy: ResiliencePolicy): Promise<BreakerSnapshot> {
    const k = resilienceKeys(this.prefix, service);
    const h = await this.redis.hgetall(k.breaker);
    const state = (h.state as CircuitState | undefined) ?? 'closed';
    const openedAt = h.openedAt ? Number(h.openedAt) : undefined;
    return {
      state,
      failures: Number(h.failures ?? 0),
      successes: Number(h.successes ?? 0),
      // Always both fields (the metrics' contract), null while closed.
      ...(openedAt !== undefined && state !== 'closed'
        ? { openedAt, nextAttemptAt: openedAt + policy.circuitBreaker.recoveryTimeout }
        : { openedAt: null, nextAttemptAt: null }),
    };
  }

  async limiter(service: string, policy: ResiliencePolicy, now?: number): Promise<LimiterSnapshot> {
    const k = resilienceKeys(this.prefix, service);
    const capacity = policy.rateLimit.burstLimit;
    const refillPerSecond = policy.rateLimit.requestsPerMinute / 60;
    const [[, b], [, t]] = (await this.redis.multi().hmget(k.bucket, 'tokens', 'ts').time().exec()) as [
      [null, (string | null)[]],
      [null, [string, string]],
    ];
    const clock = now ?? Number(t[0]) * 1000 + Math.floor(Number(t[1]) / 1000);
    const tokens =
      b[0] === null ? capacity : Math.min(capacity, Number(b[0]) + Math.max(0, clock - Number(b[1])) * (refillPerSecond / 1000));
    return { tokens, capacity, refillPerSecond };
  }

  /** Redis server time in ms (the clock every decision uses). */
  async now(): Promise<number> {
    const [s, us] = await this.redis.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }
}
