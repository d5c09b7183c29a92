import { CallAbandon } from '@mcp-gateway/backends';

/**
 * The jobs this worker process is running, by request id, each with the handle its backend call
 * listens to: a request cancelled while it runs (the API publishes its id) abandons its call.
 */
export class InFlightCalls {
  private readonly calls = new Map<string, CallAbandon>();

  /** Registered before the job's start is written, so a cancellation stored after it reaches the call. */
  begin(id: string): CallAbandon {
    const call = new CallAbandon();
    this.calls.set(id, call);
    return call;
  }

  end(id: string, call: CallAbandon): void {
    // A second run of the same id in this process (a lost lock) must not unregister the newer one.
    if (this.calls.get(id) === call) this.calls.delete(id);
  }

  /** True when a call of `id` was running here (and is now abandoned). */
  abort(id: string): boolean {
    const call = this.calls.get(id);
    call?.abandon();
    return call !== undefined;
  }
}
