import type { GatewayJobData } from './job';
import {
  GatewayError,
  isEnded,
  isoTime,
  type ErrorBody,
  type MCPResponse,
  type RequestState,
  type RequestStatus,
} from '@mcp-gateway/protocol';
import { eachInOneWrite, inOneWrite, isCluster, publish, replicated, type RedisClient } from '@mcp-gateway/redis';
import type { BrokerKeys } from './keys';
import {
  parseRecordText,
  pendingRecordText,
  PENDING_STATE,
  recordLines,
  resultJsonOf,
  ownerLines,
  type PendingFields,
  type RecordOwner,
  type PendingRecord,
  type RequestRecord,
} from './record-text';
import { legacyResultJson, resultJsonParts } from './stored-result';
import { BrokerScripts, type FinishArgs } from './scripts';

export type { EndedRecord, PendingRecord, RequestRecord } from './record-text';

/** How many replicas a write a promise rests on must reach (WAIT), and how long to wait for them. */
export interface Durability {
  replicas: number;
  timeoutMs: number;
}

export const NO_REPLICAS: Durability = { replicas: 0, timeoutMs: 0 };

/** How long a write waits for its replicas (WAIT) before the gateway answers UNAVAILABLE instead. */
export const REPLICAS_WAIT_MS = 1000;

/** The durability REDIS_WAIT_REPLICAS asks for. */
export function durabilityOf(waitReplicas: number): Durability {
  return waitReplicas > 0 ? { replicas: waitReplicas, timeoutMs: REPLICAS_WAIT_MS } : NO_REPLICAS;
}

/** A new request's claim of its id. */
export type NewClaim = PendingFields;

export type ClaimOutcome =
  | { kind: 'created' }
  /** The request that holds the id: its state, and its result's JSON once it has one (its deadline until then). */
  | { kind: 'joined'; state: RequestState; resultJson?: string; deadline?: number }
  /** The id is held by a request with another body. */
  | { kind: 'conflict' };

/**
 * A request's final result as the worker stored it (the message on the results channel carries the id
 * and the whole result, so a waiter needs no read). The JSON text is kept: a caller that only relays
 * it (a sync success) never parses it; `result` parses it on first use.
 */
export class ResultMessage {
  private constructor(
    readonly id: string,
    readonly state: RequestState,
    private text: string | undefined,
    private parsed: MCPResponse | undefined,
  ) {}

  static fromJson(id: string, state: RequestState, json: string): ResultMessage {
    return new ResultMessage(id, state, json, undefined);
  }

  static fromResult(id: string, state: RequestState, result: MCPResponse): ResultMessage {
    return new ResultMessage(id, state, undefined, result);
  }

  get result(): MCPResponse {
    return (this.parsed ??= JSON.parse(this.text!) as MCPResponse);
  }

  get json(): string {
    return (this.text ??= JSON.stringify(this.parsed));
  }
}

/** Request records in Redis: claim (idempotency), finish (store + publish), read. */
export class RequestRecords {
  private readonly scripts: BrokerScripts;
  /** Results are published on sharded channels (on a cluster: see BrokerKeys.resultsShardChannel). */
  readonly shardedResults: boolean;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: BrokerKeys,
    private readonly ttlSeconds: number,
    /** Replicas that must have a write a promise rests on before the gateway acts on it (0: none). */
    readonly durability: Durability = NO_REPLICAS,
  ) {
    this.scripts = new BrokerScripts(redis, keys);
    this.shardedResults = isCluster(redis);
  }

  /**
   * Waits until the writes this client sent to the node serving `key` are on `durability.replicas`
   * replicas: UNAVAILABLE when they are not within its timeout (the write stands on the primary
   * alone, and a failover now could lose it). No command without replicas to wait for.
   */
  async replicated(keys: readonly string[], what: string): Promise<void> {
    const { replicas, timeoutMs } = this.durability;
    if (replicas === 0) return;
    const acked = await replicated(this.redis, keys, replicas, timeoutMs);
    if (acked < replicas)
      throw new GatewayError('UNAVAILABLE', `${what} reached ${acked} of the ${replicas} Redis replicas required within ${timeoutMs} ms`, {
        retryAfterMs: 1000,
        details: { replicas, acknowledged: acked },
      });
  }

  /**
   * Claims the id with one command: the record is set only if the id has none, and the reply is the
   * record that holds it otherwise. It lives until its deadline has passed plus the result TTL, so it
   * cannot expire under a running job. In the same write the id enters the sweep's index (NX: a
   * joined request keeps its own deadline there; one that ended is dropped again by the sweep),
   * unless `indexLater`: a sync request, indexed by the API process that holds its caller if it is
   * still pending when due (see LateIndex), or by whoever joins it or reads it once due (see
   * Broker.join and status).
   */
  claim(claim: NewClaim, options: { indexLater?: boolean } = {}): Promise<ClaimOutcome> {
    const ttlSeconds = this.ttlSeconds + Math.ceil(Math.max(0, claim.deadline - claim.acceptedAt) / 1000);
    const [claimed] = inOneWrite(
      this.redis,
      () =>
        [
          this.redis.set(this.keys.request(claim.id), pendingRecordText(claim), 'EX', ttlSeconds, 'NX', 'GET'),
          options.indexLater ? undefined : this.index([claim]).catch(() => undefined),
        ] as const,
    );
    return claimed.then((held) => claimOutcome(claim, held));
  }

  /**
   * Puts requests in the sweep's index (NX: one already there keeps its deadline), in one write.
   * Rejects with the first error when any was not put there.
   */
  async index(requests: readonly Pick<PendingFields, 'id' | 'deadline'>[]): Promise<void> {
    const added = await eachInOneWrite(this.redis, requests, (r) => this.redis.zadd(this.keys.pending(r.id), 'NX', r.deadline, r.id));
    const failed = added.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Deletes a claim that will get no job (and its entry in the sweep's index), in one write. */
  async unclaim(id: string): Promise<void> {
    await inOneWrite(this.redis, () => {
      const deleted = this.redis.del(this.keys.request(id));
      this.redis.zrem(this.keys.pending(id), id).catch(() => undefined);
      return deleted;
    });
  }

  /**
   * Stores the final result and publishes it, once: false when the record had already ended (or is
   * gone). `owner`: the request's body hash and agent, as its claim wrote them. `dataJson`, when
   * given, is the result's `data` as JSON text (the backend's answer as it came): it is stored in
   * place of `data` instead of serializing `data` again. The script also takes the id out of the
   * sweep's index.
   */
  async finish(
    result: MCPResponse,
    state: FinishArgs['state'],
    owner: RecordOwner,
    options: { dataJson?: string; unindex?: boolean } = {},
  ): Promise<boolean> {
    const channel = this.shardedResults ? this.keys.resultsShardChannel(result.id) : this.keys.resultsChannel();
    const parts = resultJsonParts(result, options.dataJson);
    // With replicas to wait for, the result is published once it is on them (below), not by the script.
    const later = this.durability.replicas > 0;
    const outcome = await this.scripts.finish({
      id: result.id,
      state,
      result: parts,
      owner: ownerLines(owner),
      ttlSeconds: this.ttlSeconds,
      channel,
      publish: later ? '' : this.shardedResults ? 'SPUBLISH' : 'PUBLISH',
      unindex: options.unindex ?? true,
    });
    if (outcome !== 'stored') return false;
    if (later) {
      // Published even when the replicas lag: the caller learns the result, and a failover that lost
      // it would run an idempotent call again or end a non-idempotent one as unknown, never send it twice.
      await this.replicated([this.keys.request(result.id)], 'The result').catch(() => undefined);
      // A message lost here costs its waiters a read of the stored result (their sweep), not the result.
      await publish(this.redis, channel, `${result.id}\n${state}\n${parts.head}${parts.rest}`).catch(() => undefined);
    }
    return true;
  }

  /**
   * The requests not ended whose deadline passed more than `graceMs` ago (no worker took them, or the
   * one that did never finished), at most `limit`, and how many index entries it looked at; entries
   * whose request ended or is gone leave the index.
   */
  async overdue(now: number, graceMs: number, limit: number): Promise<{ pending: PendingRecord[]; examined: number }> {
    // The overdue entries of every part of the index, at most `limit` in all.
    const reading = await eachInOneWrite(this.redis, this.keys.pendingShards(), (key) =>
      this.redis.zrangebyscore(key, '-inf', now - graceMs, 'LIMIT', 0, limit),
    );
    const ids = reading.flatMap((r) => (r.status === 'fulfilled' ? r.value : [])).slice(0, limit);
    if (ids.length === 0) return { pending: [], examined: 0 };
    const records = await this.many(ids);
    const pending: PendingRecord[] = [];
    // Ended, gone, or unreadable (another layout's, or damaged: it would hold every batch up).
    const done: string[] = [];
    for (const [i, rec] of records.entries()) {
      if (rec?.state === PENDING_STATE) pending.push(rec);
      else done.push(ids[i]!);
    }
    if (done.length > 0) await eachInOneWrite(this.redis, done, (id) => this.redis.zrem(this.keys.pending(id), id));
    return { pending, examined: ids.length };
  }

  async get(id: string): Promise<RequestRecord | undefined> {
    try {
      const text = await this.redis.get(this.keys.request(id));
      return text === null ? undefined : parseRecordText(id, text);
    } catch (err) {
      if (!isWrongType(err)) throw err;
      return legacyRecord(id, await this.redis.hgetall(this.keys.request(id)));
    }
  }

  /** Many records' texts in one round trip: undefined for none, null for one that could not be read. */
  private async texts(ids: string[]): Promise<(string | undefined | null)[]> {
    const replies = await eachInOneWrite(this.redis, ids, (id) => this.redis.get(this.keys.request(id)));
    return replies.map((r) => (r.status === 'rejected' ? null : (r.value ?? undefined)));
  }

  /** Many records in one round trip: undefined for none, null for one that could not be read. */
  private async many(ids: string[]): Promise<(RequestRecord | undefined | null)[]> {
    return (await this.texts(ids)).map((text, i) => (typeof text === 'string' ? readable(() => parseRecordText(ids[i]!, text)) : text));
  }

  /** The results of many ids in one round trip (the waiters' fallback read), without parsing them. */
  async results(ids: string[]): Promise<Map<string, ResultMessage>> {
    const out = new Map<string, ResultMessage>();
    if (ids.length === 0) return out;
    (await this.texts(ids)).forEach((text, i) => {
      const lines = text ? readable(() => recordLines(text)) : null;
      if (lines && isEnded(lines.state)) out.set(ids[i]!, ResultMessage.fromJson(ids[i]!, lines.state, resultJsonOf(ids[i]!, lines)));
    });
    return out;
  }
}

/** The claim's answer: nothing held the id (created), or the record that holds it. */
function claimOutcome(claim: NewClaim, held: string | null): ClaimOutcome {
  if (held === null) return { kind: 'created' };
  const lines = recordLines(held);
  if (lines.hash !== claim.hash) return { kind: 'conflict' };
  if (isEnded(lines.state)) return { kind: 'joined', state: lines.state, resultJson: resultJsonOf(claim.id, lines) };
  const pending = readable(() => parseRecordText(claim.id, held));
  return { kind: 'joined', state: lines.state, ...(pending?.state === PENDING_STATE ? { deadline: pending.deadline } : {}) };
}

/** A record read in a batch, or null when it cannot be (one bad record must not fail the others). */
function readable<T>(read: () => T): T | null {
  try {
    return read();
  } catch {
    return null;
  }
}

function isWrongType(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('WRONGTYPE');
}

/**
 * A record of the layout before records were text (a hash), read so that results stored before an
 * upgrade can still be polled for their TTL; its body hash does not matter any more (it is not joined).
 */
function legacyRecord(id: string, h: Record<string, string>): RequestRecord | undefined {
  if (!h.state || !h.service) return undefined;
  const common = {
    id,
    service: h.service,
    hash: h.hash ?? '',
    correlationId: h.correlationId ?? '',
    ...(h.agentId ? { agentId: h.agentId } : {}),
  };
  const state = h.state as RequestState;
  const json = isEnded(state) ? legacyResultJson(id, state, h) : undefined;
  if (json !== undefined)
    return { ...common, state: state as 'completed' | 'failed' | 'cancelled', result: JSON.parse(json) as MCPResponse };
  return { ...common, state: PENDING_STATE, acceptedAt: Number(h.acceptedAt), deadline: Number(h.deadline) };
}

/**
 * The message is `id \n state \n result-json`: a subscriber reads the id without parsing JSON, and
 * keeps the result only when it has a waiter for that id. This is its head; the finish script appends
 * the result JSON (sent once, not twice).
 */
export function resultMessageHead(id: string, state: RequestState): string {
  return `${id}\n${state}\n`;
}

export function decodeResultMessageId(message: string): string {
  return message.slice(0, message.indexOf('\n'));
}

export function decodeResultMessage(message: string): ResultMessage {
  const a = message.indexOf('\n');
  const b = message.indexOf('\n', a + 1);
  return ResultMessage.fromJson(message.slice(0, a), message.slice(a + 1, b) as RequestState, message.slice(b + 1));
}

/** A request the API ended itself (cancelled, swept past its deadline, its service removed), as stored. */
export interface EndedRequest {
  result: MCPResponse;
  acceptedAt: number;
  agentId?: string;
  /** The request as its job held it, when the job was there to read (for its dead letter). */
  job?: GatewayJobData;
}

export function endedRequest(rec: PendingRecord, result: MCPResponse): EndedRequest {
  return { result, acceptedAt: rec.acceptedAt, ...(rec.agentId === undefined ? {} : { agentId: rec.agentId }) };
}

/** What the gateway knows of a request's job when it ends the request itself. */
export interface JobFacts {
  operation: string;
  attempts: number;
  /** When its last run started, if one did. */
  startedAt?: number;
}

/**
 * The result of a request the gateway itself ended with `error` (cancelled, swept, its service
 * removed), not its worker: times from the record and its job, `operation` and `attempts` from its job.
 */
export function endedWithError(rec: PendingRecord, error: ErrorBody, job: JobFacts, now: number): MCPResponse {
  return {
    id: rec.id,
    status: 'error',
    error,
    metadata: {
      correlationId: rec.correlationId,
      service: rec.service,
      operation: job.operation,
      attempts: job.attempts,
      queuedMs: Math.max(0, (job.startedAt ?? now) - rec.acceptedAt),
      processingTime: job.startedAt === undefined ? 0 : Math.max(0, now - job.startedAt),
      completedAt: isoTime(now),
    },
  };
}

/** `live`: where a request that has not ended is in its run (its job's state), else `queued`. */
export function toStatus(record: RequestRecord, live?: RequestState): RequestStatus {
  return record.result
    ? Object.assign({}, record.result, { id: record.id, state: record.state })
    : { id: record.id, state: live ?? record.state };
}
