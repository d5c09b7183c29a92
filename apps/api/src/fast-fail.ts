import type { ServiceConfig } from '@mcp-gateway/config';
import { LANES, type Broker } from '@mcp-gateway/broker';
import { serviceOfEvent, type PeekResult, type ResilienceStore } from '@mcp-gateway/resilience';

/** How long a fast-fail reading answers the requests that come after it. */
export const PEEK_SHARED_MS = 20;

interface Reading {
  reading: Promise<PeekResult>;
  /** Until when it answers (Infinity while it is out). */
  until: number;
  value?: PeekResult;
  /** Jobs this process added since it was answered: let straight in, or checked on it. */
  added: number;
}

/**
 * This API process's fast-fail readings of its services (circuit, token wait, queue depth): one read
 * per service at a time, shared by every way a request comes in (HTTP, MCP, replays). Any breaker
 * news of a service on the events channel retires its reading: a caller told its call failed finds
 * the next one read afresh.
 */
export class FastFailReadings {
  private readonly readings = new Map<string, Reading>();
  /** Submissions in this process now. */
  submitting = 0;

  constructor(
    private readonly resilience: ResilienceStore,
    private readonly broker: Broker,
    /** Milliseconds, for the readings' age only (a test may hold it still). */
    public clock: () => number = () => performance.now(),
  ) {}

  /**
   * A reading of the service: the one out, if any (sent less than one round trip ago); or, while
   * other requests are in this process too (a load, not one caller at a time), one answered less
   * than PEEK_SHARED_MS ago; else a new one.
   */
  read(name: string, service: ServiceConfig): Promise<PeekResult> {
    const now = this.clock();
    const kept = this.readings.get(name);
    if (kept && (kept.until === Infinity || (now <= kept.until && this.submitting > 1))) return kept.reading;
    const reading = this.resilience.peek(name, service, {
      waitLists: LANES.map((lane) => this.broker.keys.queueKey(name, 'wait', lane)),
      prioritizedSets: LANES.map((lane) => this.broker.keys.queueKey(name, 'prioritized', lane)),
    });
    const entry: Reading = { reading, until: Infinity, added: 0 };
    this.readings.set(name, entry);
    reading.then(
      (value) => {
        entry.value = value;
        entry.until = this.clock() + PEEK_SHARED_MS;
      },
      () => {
        if (this.readings.get(name) === entry) this.readings.delete(name);
      },
    );
    return reading;
  }

  /**
   * Whether a reading answered less than PEEK_SHARED_MS ago lets a new request straight in, without
   * reading again: its circuit closed, and a token and room in its queue for it after the jobs added
   * since. One it lets in counts against both.
   */
  letsIn(name: string, service: ServiceConfig): boolean {
    const kept = this.readings.get(name);
    const v = kept?.value;
    if (!kept || !v || this.clock() > kept.until) return false;
    if (v.openWaitMs > 0 || v.tokenWaitMs > 0 || kept.added > v.spareTokens || v.queueDepth + kept.added >= service.maxQueueDepth)
      return false;
    kept.added += 1;
    return true;
  }

  /** A job added after the service's reading was answered (the reading that checked it is taken before its job). */
  added(name: string): void {
    const kept = this.readings.get(name);
    if (kept?.value) kept.added += 1;
  }

  /** A message of the events channel (`<prefix>:events`): the service's reading is retired. */
  heard(message: string): void {
    const service = serviceOfEvent(message);
    if (service !== undefined) this.readings.delete(service);
  }
}
