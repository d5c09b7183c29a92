import { publish, type RedisClient } from '@mcp-gateway/redis';
import { resilienceEventsChannel, resilienceKeys } from './keys';
import type { AdmissionLeases } from './lease';
import {
  peekOf,
  type Admission,
  type AdmitOptions,
  type BreakerOutcome,
  type CircuitState,
  type PeekResult,
  type RecordResult,
  type ResiliencePolicy,
} from './policy';
import { ResilienceScripts, type QueueKeys } from './scripts';

export interface BreakerSnapshot {
  state: CircuitState;
  failures: number;
  /** When the circuit last opened (epoch ms); null while it is closed. */
  openedAt: number | null;
  /** When an open circuit lets the first trial through; null while it is closed. */
  nextAttemptAt: number | null;
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

/**
 * A failure counted on a closed circuit: other processes drop their leases, so their next call goes
 * through admit.lua, learns the count, and records its success (which resets it).
 */
export interface FailuresEvent {
  type: 'failures';
  service: string;
  failures: number;
  /** Epoch ms (the emitting process's clock). */
  at: number;
}

export interface ResilienceEvents {
  /** A breaker changed state because of a recorded outcome (or half-opened on admission). */
  onStateChange?(service: string, from: CircuitState, to: CircuitState): void;
}

/** An admission served from the lease: leases are held only while the circuit is closed with no failures. */
const fromLease = (): Admission => ({ verdict: 'admitted', state: 'closed', failures: 0 });

/**
 * The shared resilience state of every service, in Redis. Each admission and each outcome is one
 * script call (EVALSHA); the clock is Redis TIME unless a test passes `now`. With `leases`, an
 * admission is served from this process's lease when it can be (no command at all).
 */
export class ResilienceStore {
  private readonly scripts: ResilienceScripts;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly events: ResilienceEvents = {},
    private readonly leases?: AdmissionLeases,
  ) {
    this.scripts = new ResilienceScripts(redis);
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
    // A caller holding a reserved token goes to the script, which checks its slot.
    if (o.reservedAt === undefined && this.leases?.take(service)) return fromLease();
    const { rateLimit: rl, circuitBreaker: cb } = policy;
    const refillPerSecond = rl.requestsPerMinute / 60;
    const ticket = o.reservedAt === undefined ? this.leases?.ask(service, refillPerSecond) : undefined;
    const { admission, halfOpened, leased } = await this.scripts.admit(resilienceKeys(this.prefix, service), {
      jobId,
      capacity: rl.burstLimit,
      refillPerSecond,
      recoveryMs: cb.recoveryTimeout,
      halfOpenMaxCalls: cb.halfOpenMaxCalls,
      permitTtlMs,
      leaseWanted: ticket?.wanted,
      ...o,
    });
    if (halfOpened) this.changed(service, 'open', 'half_open');
    if (ticket) this.leases?.granted(service, ticket, leased, admission.state, admission.verdict === 'admitted' ? admission.failures : 0);
    return admission;
  }

  async record(service: string, jobId: string, outcome: BreakerOutcome, policy: ResiliencePolicy, now?: number): Promise<RecordResult> {
    const recorded = await this.scripts.record(resilienceKeys(this.prefix, service), {
      jobId,
      outcome,
      failureThreshold: policy.circuitBreaker.failureThreshold,
      ttlMs: Math.max(policy.circuitBreaker.recoveryTimeout * 4, 3_600_000),
      now,
    });
    this.leases?.observe(service, recorded.after, recorded.failures);
    if (recorded.before !== recorded.after) this.changed(service, recorded.before, recorded.after);
    else if (outcome === 'failure' && recorded.after === 'closed') this.failed(service, recorded.failures);
    return recorded;
  }

  /**
   * A breaker transition: to this process's listener, and to every process on the events channel
   * (`<prefix>:events`, JSON `{type: 'circuit', service, from, to, at}`).
   */
  private changed(service: string, from: CircuitState, to: CircuitState): void {
    this.events.onStateChange?.(service, from, to);
    const event: CircuitEvent = { type: 'circuit', service, from, to, at: Date.now() };
    publish(this.redis, resilienceEventsChannel(this.prefix), JSON.stringify(event)).catch(() => undefined);
  }

  /** A failure counted on a closed circuit, to every process on the events channel (see FailuresEvent). */
  private failed(service: string, failures: number): void {
    const event: FailuresEvent = { type: 'failures', service, failures, at: Date.now() };
    publish(this.redis, resilienceEventsChannel(this.prefix), JSON.stringify(event)).catch(() => undefined);
  }

  /**
   * The API's fast-fail check, one round trip of plain reads sent at once (no script: it only reads,
   * and a reading a moment stale is what a fast fail can act on anyway): circuit open (wait), token
   * for a new job (wait), queue depth (every lane's).
   */
  async peek(service: string, policy: ResiliencePolicy, queueKeys: QueueKeys, now?: number): Promise<PeekResult> {
    const k = resilienceKeys(this.prefix, service);
    const [time, breaker, bucket, ...lengths] = await Promise.all([
      now === undefined ? this.redis.time() : undefined,
      this.redis.hmget(k.breaker, 'state', 'openedAt'),
      this.redis.hmget(k.bucket, 'tokens', 'ts'),
      ...queueKeys.waitLists.map((key) => this.redis.llen(key)),
      ...queueKeys.prioritizedSets.map((key) => this.redis.zcard(key)),
    ]);
    return peekOf(
      {
        now: now ?? Number(time![0]) * 1000 + Math.floor(Number(time![1]) / 1000),
        breaker: { state: breaker[0] ?? null, openedAt: breaker[1] ?? null },
        bucket: { tokens: bucket[0] ?? null, ts: bucket[1] ?? null },
        queueDepth: (lengths as number[]).reduce((sum, n) => sum + n, 0),
      },
      policy,
    );
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
