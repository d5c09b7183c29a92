import type { GatewayJobData } from './job';
import type { RequestRecords } from './records';

/**
 * How long a sync request can stay out of the sweep's index (or until its deadline, if that comes
 * first). Most end well within it, and then the index costs them nothing (no `ZADD` at the claim, no
 * `ZREM` at the end).
 */
export const INDEX_LATER_MS = 1000;

/** When a request claimed with `indexLater` is indexed if it is still pending. */
export function indexDueAt(d: Pick<GatewayJobData, 'acceptedAt' | 'deadline'>): number {
  return Math.min(d.acceptedAt + INDEX_LATER_MS, d.deadline);
}

/** How often an API process indexes the sync requests it holds that have waited INDEX_LATER_MS. */
const FLUSH_EVERY_MS = 250;

/**
 * Whether a finish must take the id out of the sweep's index: always for a request indexed at its
 * claim; for one indexed later, only once it may have been (from half of INDEX_LATER_MS before it
 * was due: room for the clocks of the API and the worker to differ). An entry left behind by a
 * finish that guessed wrong is dropped by the sweep once its deadline has passed.
 */
export function mayBeIndexed(d: Pick<GatewayJobData, 'indexLater' | 'acceptedAt' | 'deadline'>, now: number): boolean {
  return !d.indexLater || now >= indexDueAt(d) - INDEX_LATER_MS / 2;
}

/**
 * An API process's sync requests claimed without an entry in the sweep's index (`indexLater`): the
 * process holds their callers, and indexes those not ended after INDEX_LATER_MS (or at their
 * deadline, if sooner) in one write every FLUSH_EVERY_MS, before the sweep (which ends a request
 * `graceMs` after its deadline) can need the entry. One whose caller was answered "pending" stays
 * held until then. If the process dies meanwhile, the request still ends: a worker that takes its
 * job ends it, and once it is due, the next submission or poll of its id indexes it (see
 * Broker.status and join).
 */
export class LateIndex {
  /** By id. */
  private readonly held = new Map<string, { deadline: number; dueAt: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly records: RequestRecords,
    private readonly onError: (err: unknown) => void,
    private readonly clock: () => number = Date.now,
  ) {
    this.timer = setInterval(() => void this.flush(), FLUSH_EVERY_MS);
    this.timer.unref();
  }

  /** A sync request claimed without an index entry, whose caller this process holds. */
  hold(request: Pick<GatewayJobData, 'id' | 'deadline' | 'acceptedAt'>): void {
    this.held.set(request.id, { deadline: request.deadline, dueAt: indexDueAt(request) });
  }

  /** It ended while its caller waited: it needs no entry. */
  drop(id: string): void {
    this.held.delete(id);
  }

  get size(): number {
    return this.held.size;
  }

  /** Indexes the requests held until they were due; those Redis did not take are tried again next time. */
  async flush(): Promise<void> {
    const due: { id: string; deadline: number; dueAt: number }[] = [];
    const now = this.clock();
    for (const [id, entry] of this.held) if (now >= entry.dueAt) due.push({ id, ...entry });
    if (due.length === 0) return;
    for (const { id } of due) this.held.delete(id);
    await this.records.index(due).catch((err: unknown) => {
      for (const { id, deadline, dueAt } of due) if (!this.held.has(id)) this.held.set(id, { deadline, dueAt });
      this.onError(err);
    });
  }

  /** Stops, indexing every request still held (due or not): nobody holds their callers any more. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    const rest = [...this.held].map(([id, { deadline }]) => ({ id, deadline }));
    this.held.clear();
    if (rest.length > 0) await this.records.index(rest).catch((err: unknown) => this.onError(err));
  }
}
