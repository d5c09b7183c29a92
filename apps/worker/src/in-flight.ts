import { CallAbandon } from '@mcp-gateway/backends';

/** How long a cancellation heard before its run began here is remembered (the run is about to begin, or never will here). */
const EARLY_KEPT_MS = 10_000;

/**
 * The jobs this worker process is running, by request id, each with the handle its backend call
 * listens to: a request cancelled while it runs (the API publishes its id) abandons its call.
 */
export class InFlightCalls {
  private readonly calls = new Map<string, CallAbandon>();
  /**
   * Cancellations heard for ids not running here, by when they were heard: the API cancels a job a
   * worker has fetched as a running one, and its run may begin just after. It then begins abandoned
   * (its call is never sent). Every worker hears every cancellation; only the one that fetched the
   * job uses it, the rest expire.
   */
  private readonly early = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  begin(id: string): CallAbandon {
    const call = new CallAbandon();
    if (this.early.delete(id)) call.abandon();
    this.calls.set(id, call);
    return call;
  }

  end(id: string, call: CallAbandon): void {
    // A second run of the same id in this process (a lost lock) must not unregister the newer one.
    if (this.calls.get(id) === call) this.calls.delete(id);
  }

  /** True when a call of `id` was running here (and is now abandoned); otherwise a run of it that begins soon begins abandoned. */
  abort(id: string): boolean {
    const call = this.calls.get(id);
    if (call) {
      call.abandon();
      return true;
    }
    this.remember(id);
    return false;
  }

  private remember(id: string): void {
    const now = this.now();
    // Oldest first (a Map keeps insertion order): drop what has expired.
    for (const [old, heardAt] of this.early) {
      if (now - heardAt < EARLY_KEPT_MS) break;
      this.early.delete(old);
    }
    this.early.set(id, now);
  }
}
