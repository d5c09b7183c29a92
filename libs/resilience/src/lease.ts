import type { CircuitState } from './policy';
import { serviceOfEvent } from './keys';

/** How long one lease may be spent, at most (the README's bound counts on it). */
export const LEASE_MAX_LIFE_MS = 1000;

export interface LeaseOptions {
  /** Most tokens one lease holds; 0 turns leasing off. @defaultValue 32 */
  maxTokens?: number;
  /** How long a lease may be spent, from when it was asked for (ms, at most 1000). @defaultValue 500 */
  lifeMs?: number;
  /** Local monotonic clock in ms (tests move it). @defaultValue performance.now */
  clock?: () => number;
}

/** What a lease request was sent with: compared when its answer comes back. */
export interface LeaseTicket {
  wanted: number;
  epoch: number;
  sentAt: number;
}

interface Lease {
  tokens: number;
  expiresAt: number;
}

/** Admissions asked for in this process, per service: the size of the next lease. */
interface Demand {
  since: number;
  count: number;
  previous: number;
}

/**
 * A worker process's leases of real tokens, one per service: admit.lua takes a small batch for it
 * when the circuit is closed with no failures counted and the bucket holds plenty, and the process
 * spends them with no Redis command while the lease lives. A lease is dropped when the breaker is
 * seen leaving that state (this process's own records, other processes' events); its unused
 * tokens are then lost, as they are when it expires.
 */
export class AdmissionLeases {
  readonly maxTokens: number;
  readonly lifeMs: number;
  private readonly clock: () => number;
  private readonly leases = new Map<string, Lease>();
  /** Bumped by every drop: a lease asked for before a drop is not installed after it. */
  private readonly epochs = new Map<string, number>();
  private readonly demand = new Map<string, Demand>();

  constructor(options: LeaseOptions = {}) {
    this.maxTokens = Math.max(0, Math.floor(options.maxTokens ?? 32));
    this.lifeMs = Math.min(LEASE_MAX_LIFE_MS, Math.max(1, options.lifeMs ?? 500));
    this.clock = options.clock ?? (() => performance.now());
  }

  /** Spends one leased token of the service, if a live one is held. Counts the admission asked for either way. */
  take(service: string): boolean {
    const now = this.clock();
    this.count(service, now);
    const lease = this.leases.get(service);
    if (!lease) return false;
    if (now >= lease.expiresAt) {
      this.leases.delete(service);
      return false;
    }
    if (--lease.tokens <= 0) this.leases.delete(service);
    return true;
  }

  /**
   * What to ask admit.lua for: about what this process admitted in the last lease life (so a quiet
   * process leases little and loses little), at most maxTokens and the refill of one lease life.
   */
  ask(service: string, refillPerSecond: number): LeaseTicket {
    const d = this.demand.get(service);
    const recent = d ? Math.max(d.count, d.previous) : 0;
    const wanted = Math.min(this.maxTokens, Math.floor((refillPerSecond * this.lifeMs) / 1000), recent);
    return { wanted: Math.max(0, wanted), epoch: this.epochs.get(service) ?? 0, sentAt: this.clock() };
  }

  /**
   * admit.lua's answer to a ticket: a lease granted is held until `lifeMs` after the ask was sent,
   * unless the breaker was seen leaving closed-with-no-failures since.
   */
  granted(service: string, ticket: LeaseTicket, leased: number, state: CircuitState, failures: number): void {
    if (state !== 'closed' || failures > 0) return this.drop(service);
    if (leased <= 0 || (this.epochs.get(service) ?? 0) !== ticket.epoch) return;
    const held = this.leases.get(service);
    const expiresAt = ticket.sentAt + this.lifeMs;
    // Tokens of an older lease are kept, but live no longer than they did.
    if (held && this.clock() < held.expiresAt)
      this.leases.set(service, { tokens: held.tokens + leased, expiresAt: Math.min(held.expiresAt, expiresAt) });
    else this.leases.set(service, { tokens: leased, expiresAt });
  }

  /** The breaker as a record found it: a lease is held only while it is closed with no failures. */
  observe(service: string, state: CircuitState, failures: number): void {
    if (state !== 'closed' || failures > 0) this.drop(service);
  }

  /** A message of the events channel (`<prefix>:events`): any breaker news of a service drops its lease. */
  heard(message: string): void {
    const service = serviceOfEvent(message);
    if (service !== undefined) this.drop(service);
  }

  drop(service: string): void {
    this.leases.delete(service);
    this.epochs.set(service, (this.epochs.get(service) ?? 0) + 1);
  }

  /** Tokens of the service's live lease (0 when none). */
  held(service: string): number {
    const lease = this.leases.get(service);
    return lease && this.clock() < lease.expiresAt ? lease.tokens : 0;
  }

  private count(service: string, now: number): void {
    const d = this.demand.get(service);
    if (!d) this.demand.set(service, { since: now, count: 1, previous: 0 });
    else if (now - d.since >= this.lifeMs) {
      // A window with no admissions in between leaves nothing to remember.
      d.previous = now - d.since < 2 * this.lifeMs ? d.count : 0;
      d.since = now;
      d.count = 1;
    } else d.count++;
  }
}
