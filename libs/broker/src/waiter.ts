import { subscribe, type RedisClient } from '@mcp-gateway/redis';
import type { BrokerKeys } from './keys';
import { decodeResultMessage, decodeResultMessageId, type RequestRecords, type ResultMessage } from './records';

export interface Waiter {
  /** Resolves with the result, or undefined when `ms` passed first (after one last read). */
  wait(ms: number): Promise<ResultMessage | undefined>;
  /** Ends the wait now (undefined). A method: to hand it on as a listener, wrap it (`() => w.cancel()`). */
  cancel(): void;
}

/**
 * One caller's wait. A sync caller's lasts as long as its request, so it is kept small: methods on
 * the prototype instead of closures, the timer's callback shared (the entry is its argument), and the
 * waiters of one id chained through `next` (almost always one) instead of a Set per id.
 */
class Entry implements Waiter {
  /** The next waiter of the same id. */
  next: Entry | undefined = undefined;
  timer: NodeJS.Timeout | undefined = undefined;
  /** Set by the promise's executor, which runs at once. */
  resolve!: (msg: ResultMessage | undefined) => void;
  readonly promise: Promise<ResultMessage | undefined>;

  constructor(
    readonly owner: ResultWaiter,
    readonly id: string,
    readonly registeredAt: number,
  ) {
    this.promise = new Promise((resolve) => (this.resolve = resolve));
  }

  wait(ms: number): Promise<ResultMessage | undefined> {
    // Cancelled (or settled) before the wait began: no timer to leave behind.
    if (this.owner.holds(this)) this.timer = setTimeout(expire, Math.max(0, ms), this);
    return this.promise;
  }

  cancel(): void {
    this.owner.settle(this, undefined);
  }
}

/** A wait ran out: one last read before giving up, as the notification may have been missed. */
function expire(entry: Entry): void {
  entry.owner.lastRead(entry);
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
  /** The first waiter of each id (the others hang from its `next`). */
  private readonly entries = new Map<string, Entry>();
  private count = 0;
  private readonly sweepIntervalMs: number;
  private sweepTimer?: NodeJS.Timeout;
  private started = false;

  constructor(
    private readonly subscriber: RedisClient,
    private readonly records: RequestRecords,
    private readonly keys: BrokerKeys,
    options: ResultWaiterOptions = {},
  ) {
    this.sweepIntervalMs = options.sweepIntervalMs ?? 3000;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    // After a reconnect the subscription is restored, but anything published meanwhile is gone.
    this.subscriber.on('ready', () => void this.sweep(0));
    const channels = new Set(this.records.shardedResults ? this.keys.resultsShardChannels() : [this.keys.resultsChannel()]);
    await subscribe(this.subscriber, [...channels], (ch, message) => {
      if (channels.has(ch)) this.onMessage(message);
    });
    this.sweepTimer = setInterval(() => void this.sweep(this.sweepIntervalMs), this.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** How many callers are waiting now (a gauge for metrics and the memory benchmark). */
  get size(): number {
    return this.count;
  }

  register(id: string): Waiter {
    const entry = new Entry(this, id, Date.now());
    entry.next = this.entries.get(id);
    this.entries.set(id, entry);
    this.count += 1;
    return entry;
  }

  /** Ends every wait now (undefined), as its timeout would: the API's grace period on shutdown is over. */
  cancelAll(): void {
    for (const id of [...this.entries.keys()]) this.settleAll(id, undefined);
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.cancelAll();
    this.started = false;
  }

  /** Whether `entry` is still waiting (for Entry). */
  holds(entry: Entry): boolean {
    for (let e = this.entries.get(entry.id); e; e = e.next) if (e === entry) return true;
    return false;
  }

  /** Ends one wait (a no-op when it has ended; for Entry). */
  settle(entry: Entry, msg: ResultMessage | undefined): void {
    let prev: Entry | undefined;
    let e = this.entries.get(entry.id);
    while (e && e !== entry) {
      prev = e;
      e = e.next;
    }
    if (!e) return;
    if (prev) prev.next = entry.next;
    else if (entry.next) this.entries.set(entry.id, entry.next);
    else this.entries.delete(entry.id);
    entry.next = undefined;
    this.count -= 1;
    if (entry.timer) clearTimeout(entry.timer);
    entry.resolve(msg);
  }

  /** A wait that ran out: the stored result if there is one by now, else undefined (for Entry). */
  lastRead(entry: Entry): void {
    this.records
      .results([entry.id])
      .then((found) => this.settle(entry, found.get(entry.id)))
      .catch(() => this.settle(entry, undefined));
  }

  /** Ends every wait of one id. */
  private settleAll(id: string, msg: ResultMessage | undefined): void {
    let e = this.entries.get(id);
    if (!e) return;
    this.entries.delete(id);
    while (e) {
      const next: Entry | undefined = e.next;
      e.next = undefined;
      this.count -= 1;
      if (e.timer) clearTimeout(e.timer);
      e.resolve(msg);
      e = next;
    }
  }

  private onMessage(message: string): void {
    const id = decodeResultMessageId(message);
    if (!this.entries.has(id)) return;
    this.settleAll(id, decodeResultMessage(message));
  }

  private async sweep(minAgeMs: number): Promise<void> {
    const cutoff = Date.now() - minAgeMs;
    const ids: string[] = [];
    for (const [id, first] of this.entries) {
      for (let e: Entry | undefined = first; e; e = e.next) {
        if (e.registeredAt <= cutoff) {
          ids.push(id);
          break;
        }
      }
    }
    if (ids.length === 0) return;
    try {
      const found = await this.records.results(ids);
      for (const [id, msg] of found) this.settleAll(id, msg);
    } catch {
      // Redis away: the next sweep (or the reconnect sweep) tries again.
    }
  }
}
