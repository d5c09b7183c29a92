import type Redis from 'ioredis';
import { isEnded, type ErrorBody, type MCPResponse, type RequestState, type RequestStatus } from '@mcp-gateway/protocol';
import { inOneWrite } from '@mcp-gateway/redis';
import type { BrokerKeys } from './keys';
import { RESULT_FIELDS, storedResult, storedResultJson } from './stored-result';
import { BrokerScripts, type ClaimArgs, type ClaimOutcome, type FinishArgs, type StartArgs, type Started } from './scripts';

/** A new request's claim of its id (the record's lifetime follows from its deadline). */
export type NewClaim = Omit<ClaimArgs, 'ttlSeconds'>;

export interface RequestRecord {
  id: string;
  service: string;
  state: RequestState;
  acceptedAt: number;
  deadline: number;
  startedAt?: number;
  correlationId: string;
  agentId?: string;
  result?: MCPResponse;
}

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

/** Request records in Redis: claim (idempotency), start, finish (store + publish), read. */
export class RequestRecords {
  private readonly scripts: BrokerScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: BrokerKeys,
    private readonly ttlSeconds: number,
  ) {
    this.scripts = new BrokerScripts(redis, keys);
  }

  /**
   * The record lives until its deadline has passed plus the result TTL, so it cannot expire under a
   * running job. A new record enters the sweep's index in the same script.
   */
  claim(claim: NewClaim): Promise<ClaimOutcome> {
    const ttlSeconds = this.ttlSeconds + Math.ceil(Math.max(0, claim.deadline - claim.acceptedAt) / 1000);
    return this.scripts.claim({ ...claim, ttlSeconds });
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
   * Marks the record active (or `state`); answers the state it had when it already ended (then: do
   * not run). `mayCall`: this run may send a call that must not be repeated (a non-idempotent
   * operation); the record keeps that mark until the request ends or a run clears it (`setState`)
   * without calling. `markedBefore` is the mark a previous run left: that run may have sent its call
   * and never ended.
   */
  async start(id: string, now: number, options: { state?: StartArgs['state']; mayCall?: boolean } = {}): Promise<Started> {
    return this.scripts.start({ id, now, state: options.state ?? 'active', mayCall: options.mayCall ?? false });
  }

  /** Sets the state of a request that has not ended, and clears a run's mark: this run did not call. */
  async setState(id: string, state: StartArgs['state']): Promise<void> {
    await this.scripts.start({ id, now: Date.now(), state, mayCall: false });
  }

  /**
   * Stores the final result and publishes it; false when the record had already ended (or is gone).
   * `onlyIfQueued`: store it only while the request is not running (a cancel). `dataJson`, when given,
   * is the result's `data` as JSON text (the backend's answer as it came): it is stored in place of
   * `data` instead of serializing `data` again.
   */
  async finish(
    result: MCPResponse,
    state: FinishArgs['state'],
    options: { onlyIfQueued?: boolean; dataJson?: string } = {},
  ): Promise<boolean> {
    // The script also takes the id out of the sweep's index: after this the record has ended (or had
    // before), unless the finish was only for a request not yet running and found it running.
    const outcome = await this.scripts.finish({
      id: result.id,
      state,
      result: storedResult(result, options.dataJson),
      ttlSeconds: this.ttlSeconds,
      channel: this.keys.resultsChannel(),
      messageHead: resultMessageHead(result.id, state),
      onlyIfQueued: options.onlyIfQueued ?? false,
    });
    return outcome === 'stored';
  }

  /**
   * Ends, with TIMEOUT, requests whose deadline passed more than `graceMs` ago and that have not
   * ended (no worker took them, or the one that did never finished), at most `limit` per call; drops
   * index entries whose request ended or is gone. Answers the ids it ended (their jobs are left to
   * the caller) and how many entries it looked at. Safe beside workers and other sweeps: a result is
   * stored once.
   */
  async sweep(
    now: number,
    graceMs: number,
    limit: number,
    operationOf: (id: string, service: string) => Promise<string>,
  ): Promise<{ ended: EndedRequest[]; examined: number }> {
    // The overdue entries of every part of the index, at most `limit` in all.
    const reading = this.redis.pipeline();
    for (const key of this.keys.pendingShards()) reading.zrangebyscore(key, '-inf', now - graceMs, 'LIMIT', 0, limit);
    const ids = ((await reading.exec()) ?? []).flatMap(([err, value]) => (err ? [] : (value as string[]))).slice(0, limit);
    if (ids.length === 0) return { ended: [], examined: 0 };
    // A record not ended holds no result yet: reading it whole is a few short fields.
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.request(id));
    const replies = (await pipeline.exec()) ?? [];
    const ended: EndedRequest[] = [];
    const done: string[] = [];
    for (const [i, [err, value]] of replies.entries()) {
      const id = ids[i]!;
      if (err) continue;
      const rec = parseRecord(id, value as Record<string, string>);
      if (!rec || isEnded(rec.state)) {
        done.push(id);
        continue;
      }
      // A request still active may have had its call made: that is not for the caller to simply repeat.
      const active = rec.state === 'active';
      const late = `The request was still ${rec.state} ${Math.round((now - rec.deadline) / 1000)} s after its deadline`;
      const error: ErrorBody = {
        code: 'TIMEOUT',
        message: active
          ? `${late}: the worker that took it never finished it, and its call may have been made`
          : `${late}: no worker took it in time`,
        retryable: !active,
        details: active ? { state: rec.state, outcome: 'unknown' } : { state: rec.state },
      };
      const result = endedWithError(rec, error, await operationOf(id, rec.service), 0, now);
      if (await this.finish(result, 'failed')) ended.push(endedRequest(rec, result));
    }
    if (done.length > 0) {
      const dropping = this.redis.pipeline();
      for (const id of done) dropping.zrem(this.keys.pending(id), id);
      await dropping.exec();
    }
    return { ended, examined: ids.length };
  }

  async get(id: string): Promise<RequestRecord | undefined> {
    const h = await this.redis.hgetall(this.keys.request(id));
    return parseRecord(id, h);
  }

  /** The results of many ids in one round trip (the waiters' fallback read). */
  async results(ids: string[]): Promise<Map<string, ResultMessage>> {
    const out = new Map<string, ResultMessage>();
    if (ids.length === 0) return out;
    const pipeline = this.redis.pipeline();
    const fields = ['state', 'correlationId', 'service', ...RESULT_FIELDS];
    for (const id of ids) pipeline.hmget(this.keys.request(id), ...fields);
    const replies = (await pipeline.exec()) ?? [];
    replies.forEach(([err, value], i) => {
      const values = (value ?? []) as (string | null)[];
      const state = values[0] as RequestState | null;
      if (err || !state || !isEnded(state)) return;
      const json = storedResultJson(ids[i]!, state, Object.fromEntries(fields.map((f, j) => [f, values[j]])));
      if (json) out.set(ids[i]!, ResultMessage.fromJson(ids[i]!, state, json));
    });
    return out;
  }
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

function resultOf(id: string, h: Record<string, string>): MCPResponse | undefined {
  const json = isEnded(h.state as RequestState) ? storedResultJson(id, h.state as RequestState, h) : undefined;
  return json === undefined ? undefined : (JSON.parse(json) as MCPResponse);
}

export function parseRecord(id: string, h: Record<string, string>): RequestRecord | undefined {
  if (!h.state || !h.service) return undefined;
  return {
    id,
    service: h.service,
    state: h.state as RequestState,
    acceptedAt: Number(h.acceptedAt),
    deadline: Number(h.deadline),
    startedAt: h.startedAt ? Number(h.startedAt) : undefined,
    correlationId: h.correlationId ?? '',
    ...(h.agentId ? { agentId: h.agentId } : {}),
    result: resultOf(id, h),
  };
}

/** A request the API ended itself (cancelled, swept past its deadline, its service removed), as stored. */
export interface EndedRequest {
  result: MCPResponse;
  acceptedAt: number;
  agentId?: string;
}

export function endedRequest(rec: RequestRecord, result: MCPResponse): EndedRequest {
  return { result, acceptedAt: rec.acceptedAt, ...(rec.agentId === undefined ? {} : { agentId: rec.agentId }) };
}

/**
 * The result of a request the gateway itself ended with `error` (cancelled, swept, its service
 * removed), not its worker: times from the record, `operation` and `attempts` from its job.
 */
export function endedWithError(rec: RequestRecord, error: ErrorBody, operation: string, attempts: number, now: number): MCPResponse {
  return {
    id: rec.id,
    status: 'error',
    error,
    metadata: {
      correlationId: rec.correlationId,
      service: rec.service,
      operation,
      attempts,
      queuedMs: Math.max(0, (rec.startedAt ?? now) - rec.acceptedAt),
      processingTime: rec.startedAt === undefined ? 0 : Math.max(0, now - rec.startedAt),
      completedAt: new Date(now).toISOString(),
    },
  };
}

export function toStatus(record: RequestRecord): RequestStatus {
  return record.result ? { ...record.result, id: record.id, state: record.state } : { id: record.id, state: record.state };
}
