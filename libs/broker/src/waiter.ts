import type Redis from 'ioredis';
import type { BrokerKeys } from './keys';
import { decodeResultMessage, decodeResultMessageId, type RequestRecords, type ResultMessage } from './records';

interface Entry {
  id: string;
  registeredAt: number;
  resolve: (msg: ResultMessage | undefined) => void;
  timer?: NodeJS.Timeout;
}

export interface Waiter {
  /** Resolves with the result, or undefined when `ms` passed first (after one last read). */
  wait(ms: number): Promise<ResultMessage | undefined>;
  cancel(): void;
}

export interface ResultWaiterOptions {
  /** A waiter older than this is also looked up by a read, in case its notification was missed. */
  sweepIntervalMs?: number;
}

/**
 * Waits for results with ONE subscription per process (not a listener per request). Register before
 * enqueueing; a missed notification costs a read (periodic sweep, a sweep after every reconnect, and
 * one final read at the end of each wait), never a hung request.
 */
export class ResultWaiter {
  private readonly entries = new Map<string, Set<Entry>>();
  private readonly sweepIntervalMs: number;
  private sweepTimer?: NodeJS.Timeout;
  private started = false;

  constructor(
    private readonly subscriber: Redis,
    private readonly records: RequestRecords,
    private readonly keys: BrokerKeys,
    options: ResultWaiterOptions = {},
  ) {
    this.sweepIntervalMs = options.sweepIntervalMs ?? 3000;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const channel = this.keys.resultsChannel();
    this.subscriber.on('message', (ch: string, message: string) => {
      if (ch === channel) this.onMessage(message);
    });
    // After a reconnect the subscription is restored, but anything published meanwhile is gone.
    this.subscriber.on('ready', () => void this.sweep(0));
    await this.subscriber.subscribe(channel);
    this.sweepTimer = setInterval(() => void this.sweep(this.sweepIntervalMs), this.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** How many callers are waiting now (a gauge for metrics and the memory benchmark). */
  get size(): number {
    let n = 0;
    for (const set of this.entries.values()) n += set.size;
    return n;
  }

  register(id: string): Waiter {
    let settle!: (msg: ResultMessage | undefined) => void;
    const promise = new Promise<ResultMessage | undefined>((resolve) => (settle = resolve));
    const entry: Entry = { id, registeredAt: Date.now(), resolve: (msg) => settle(msg) };
    let set = this.entries.get(id);
    if (!set) this.entries.set(id, (set = new Set()));
    set.add(entry);
    return {
      wait: (ms: number) => {
        // Cancelled before the wait began: no timer to leave behind.
        if (!set.has(entry)) return promise;
        entry.timer = setTimeout(() => {
          // One last read before giving up: the notification may have been missed.
          this.records
            .results([id])
            .then((found) => this.settle(entry, found.get(id)))
            .catch(() => this.settle(entry, undefined));
        }, Math.max(0, ms));
        return promise;
      },
      cancel: () => this.settle(entry, undefined),
    };
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const set of this.entries.values()) for (const e of [...set]) this.settle(e, undefined);
    this.started = false;
  }

  private onMessage(message: string): void {
    const id = decodeResultMessageId(message);
    const set = this.entries.get(id);
    if (!set) return;
    const msg = decodeResultMessage(message);
    for (const e of [...set]) this.settle(e, msg);
  }

  private settle(entry: Entry, msg: ResultMessage | undefined): void {
    const set = this.entries.get(entry.id);
    if (!set?.delete(entry)) return;
    if (set.size === 0) this.entries.delete(entry.id);
    if (entry.timer) clearTimeout(entry.timer);
    entry.resolve(msg);
  }

  private async sweep(minAgeMs: number): Promise<void> {
    const cutoff = Date.now() - minAgeMs;
    const ids: string[] = [];
    for (const [id, set] of this.entries) {
      for (const e of set) {
        if (e.registeredAt <= cutoff) {
          ids.push(id);
          break;
        }
      }
    }
    if (ids.length === 0) return;
    try {
      const found = await this.records.results(ids);
      for (const [id, msg] of found) for (const e of [...(this.entries.get(id) ?? [])]) this.settle(e, msg);
    } catch {
      // Redis away: the next sweep (or the reconnect sweep) tries again.
    }
  }
}
