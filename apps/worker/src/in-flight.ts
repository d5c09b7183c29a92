/**
 * The jobs this worker process is running, by request id, each with the abort its backend call
 * listens to: a request cancelled while it runs (the API publishes its id) abandons its call.
 */
export class InFlightCalls {
  private readonly calls = new Map<string, AbortController>();

  /** Registered before the job's start is written, so a cancellation stored after it reaches the call. */
  begin(id: string): AbortSignal {
    const controller = new AbortController();
    this.calls.set(id, controller);
    return controller.signal;
  }

  end(id: string, signal: AbortSignal): void {
    // A second run of the same id in this process (a lost lock) must not unregister the newer one.
    if (this.calls.get(id)?.signal === signal) this.calls.delete(id);
  }

  /** True when a call of `id` was running here (and is now abandoned). */
  abort(id: string): boolean {
    const controller = this.calls.get(id);
    controller?.abort();
    return controller !== undefined;
  }

  get size(): number {
    return this.calls.size;
  }
}
