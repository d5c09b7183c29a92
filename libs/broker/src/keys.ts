/**
 * How many parts the request records and the sweep's index are split into. Each part is one hash tag
 * (`{r0}` … `{r15}`): a request's record and its index entry share a slot, so one script writes both,
 * and a Redis Cluster spreads the records over 16 slots. Part of the key layout: changing it makes
 * the records already stored unreachable.
 */
export const RECORD_SHARDS = 16;

/**
 * A service's queue has two lanes, each a BullMQ queue of its own in the service's slot. `urgent`
 * holds `critical` and `high` requests in their agent's first fair-share tier and has worker slots of
 * its own, so they never wait behind `normal` work; everything else is in `normal`, where a `normal`
 * request in its first tier is a standard BullMQ job (the cheapest kind) and the rest are prioritized
 * after it. See `laneOf` and `jobOptions`.
 */
export type Lane = 'normal' | 'urgent';

export const LANES: readonly Lane[] = ['normal', 'urgent'];

/** The part an id's record and index entry are in: FNV-1a of its UTF-16 code units. */
export function recordShard(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i += 1) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % RECORD_SHARDS;
}

/**
 * Key layout. Everything of one service shares the hash tag `{service}` (BullMQ's queue keys are
 * `<prefix>:{service}:…` because the queue is named `{service}`), so a Redis Cluster keeps a service
 * in one slot. Request records are found by id alone (the poll endpoint knows only the id): the id
 * picks their part (`recordShard`).
 */
export class BrokerKeys {
  constructor(readonly prefix: string) {}

  /**
   * BullMQ queue name for a lane of a service (BullMQ forbids `:` in names; braces make the hash tag,
   * so both lanes share the service's slot).
   */
  queueName(service: string, lane: Lane = 'normal'): string {
    return lane === 'normal' ? `{${service}}` : `{${service}}urgent`;
  }

  /** A BullMQ key of a lane of the service's queue (`wait`, `prioritized`, …), for reads and scripts. */
  queueKey(service: string, type: 'wait' | 'prioritized' | 'delayed' | 'active', lane: Lane = 'normal'): string {
    return `${this.prefix}:${this.queueName(service, lane)}:${type}`;
  }

  request(id: string): string {
    return `${this.prefix}:req:{r${recordShard(id)}}:${id}`;
  }

  /**
   * The part of the sweep's index that holds `id`: every request not ended yet, scored by its
   * deadline, is in one; the sweep reads them all to end those that outlived it by far (no worker
   * took or finished them). In the slot of the request's record.
   */
  pending(id: string): string {
    return this.pendingShard(recordShard(id));
  }

  /** Every part of the sweep's index. */
  pendingShards(): string[] {
    return Array.from({ length: RECORD_SHARDS }, (_, n) => this.pendingShard(n));
  }

  private pendingShard(n: number): string {
    return `${this.prefix}:pending:{r${n}}`;
  }

  /**
   * A service's dead letters (hash by request id) and their index by failure time, in its slot. Two
   * segments after the tag, so no job id (one segment) names the same key as BullMQ's job hashes.
   */
  deadLetters(service: string): { items: string; index: string } {
    const base = `${this.prefix}:${this.queueName(service)}:dead`;
    return { items: `${base}:items`, index: `${base}:index` };
  }

  /** Held by the API process sweeping now (see Broker.sweepOverdue). */
  sweepLock(): string {
    return `${this.prefix}:pending:sweep`;
  }

  /** One channel for all results: each API process subscribes once, not once per request. */
  resultsChannel(): string {
    return `${this.prefix}:results`;
  }

  /**
   * On a cluster, results go on sharded channels instead, one per part of the records: the finish
   * script publishes in its record's slot, and only that shard carries the message.
   */
  resultsShardChannel(id: string): string {
    return this.resultsShard(recordShard(id));
  }

  /** Every sharded results channel (an API process subscribes to all). */
  resultsShardChannels(): string[] {
    return Array.from({ length: RECORD_SHARDS }, (_, n) => this.resultsShard(n));
  }

  private resultsShard(n: number): string {
    return `${this.prefix}:results:{r${n}}`;
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
