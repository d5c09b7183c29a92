/**
 * Key layout. Everything of one service shares the hash tag `{service}` (BullMQ's queue keys are
 * `<prefix>:{service}:…` because the queue is named `{service}`), so a Redis Cluster keeps a service
 * in one slot. Request records are per id: the poll endpoint knows only the id.
 */
export class BrokerKeys {
  constructor(readonly prefix: string) {}

  /** BullMQ queue name for a service (BullMQ forbids `:` in names; braces make the hash tag). */
  queueName(service: string): string {
    return `{${service}}`;
  }

  /** A BullMQ key of the service's queue (`wait`, `prioritized`, …), for scripts that read it. */
  queueKey(service: string, type: 'wait' | 'prioritized' | 'delayed' | 'active'): string {
    return `${this.prefix}:${this.queueName(service)}:${type}`;
  }

  request(id: string): string {
    return `${this.prefix}:req:${id}`;
  }

  /**
   * Every request not ended yet, scored by its deadline: what the sweep reads to end those that
   * outlived it by far (no worker took or finished them). One key for all services.
   */
  pending(): string {
    return `${this.prefix}:pending`;
  }

  /** Held by the API process sweeping now (see Broker.sweepOverdue). */
  sweepLock(): string {
    return `${this.prefix}:pending:sweep`;
  }

  /** One channel for all results: each API process subscribes once, not once per request. */
  resultsChannel(): string {
    return `${this.prefix}:results`;
  }

  /** Cancellations of running requests (their ids), heard by every worker. */
  cancelsChannel(): string {
    return `${this.prefix}:cancels`;
  }

  /** Worker heartbeats; `{workers}` tags it and its `:services` hash into one slot (one MULTI). */
  workers(): string {
    return `${this.prefix}:{workers}`;
  }
}
