import { Queue, type Job } from 'bullmq';
import { inOneWrite, isCluster, publish, type RedisClient } from '@mcp-gateway/redis';
import { GatewayError, isGatewayError, type ErrorBody, type RequestState, type RequestStatus } from '@mcp-gateway/protocol';
import { jobOptions, laneOf, type GatewayJobData, type JobRetryOptions } from './job';
import { BrokerKeys, LANES, type Lane } from './keys';
import { indexDueAt } from './late-index';
import {
  endedRequest,
  endedWithError,
  RequestRecords,
  ResultMessage,
  toStatus,
  type ClaimOutcome,
  type Durability,
  type EndedRequest,
} from './records';
import { PENDING_STATE, type PendingRecord } from './record-text';

export type SubmitOutcome = { kind: 'created' } | { kind: 'joined'; state: RequestState; result?: ResultMessage };

/** Where a new request's job goes, as its gate decided: its fair-share tier, and the keys holding it against its agent's quotas. */
export type Placement = Pick<GatewayJobData, 'tier' | 'holds'>;

/**
 * A check that must pass before a new request with a fresh id is queued (the API's fast-fail and its
 * agent's quotas): it sends its Redis commands, if it needs any, on the broker's client when called
 * (before its first await), and rejects to refuse. It goes in one write with the claim of the id; a
 * refused claim is undone. (A caller's own id is checked before its claim instead: see gatedClaim.)
 */
export type SubmitGate = () => Promise<Placement | void>;

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  completed: number;
  failed: number;
}

export interface BrokerOptions {
  /** A fail-fast (`command`) connection: no offline queue. */
  redis: RedisClient;
  keyPrefix: string;
  resultTtlSeconds: number;
  /** Replicas that must have each accepted request and result (REDIS_WAIT_REPLICAS). */
  durability?: Durability;
  /** Told of each request this process ended itself and stored (cancelled, swept, its service removed). */
  onEnded?: (ended: EndedRequest) => void;
}

/** How many entries BullMQ's event stream of a service queue keeps (approximately). */
const EVENTS_KEPT = 500;

/** The API's side of the queue contract: submit (idempotent), read, cancel. */
export class Broker {
  readonly keys: BrokerKeys;
  readonly records: RequestRecords;
  private readonly redis: RedisClient;
  private readonly queues = new Map<string, Queue>();

  private readonly onEnded: (ended: EndedRequest) => void;

  constructor(options: BrokerOptions) {
    this.onEnded = options.onEnded ?? (() => undefined);
    this.redis = options.redis;
    this.keys = new BrokerKeys(options.keyPrefix);
    this.records = new RequestRecords(options.redis, this.keys, options.resultTtlSeconds, options.durability);
  }

  /** A lane of a service's queue (`normal` unless named). */
  queue(service: string, lane: Lane = 'normal'): Queue {
    const name = this.keys.queueName(service, lane);
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, {
        connection: this.redis,
        prefix: this.keys.prefix,
        // BullMQ's event stream: nothing of ours reads it (results go on our own channel), so it is
        // kept short instead of BullMQ's 10,000 entries (about 0.9 MB per service queue).
        streams: { events: { maxLen: EVENTS_KEPT } },
      });
      q.on('error', () => undefined);
      this.queues.set(name, q);
    }
    return q;
  }

  /** Both lanes of a service's queue. */
  lanes(service: string): Queue[] {
    return LANES.map((lane) => this.queue(service, lane));
  }

  /** A request's job, in whichever lane it is (both are asked at once, in one write). */
  async findJob(service: string, id: string): Promise<Job<GatewayJobData> | undefined> {
    const found = await Promise.all(this.lanes(service).map((q) => q.getJob(id) as Promise<Job<GatewayJobData> | undefined>));
    return found.find((job) => job !== undefined);
  }

  /**
   * Claims the id and enqueues the job, or joins the job that already holds the id. The same id with
   * another body is CONFLICT. Redis away is UNAVAILABLE, and nothing is left half-made. The job
   * carries the hash: its worker's finish writes it into the ended record.
   */
  async submit(request: GatewayJobData, hash: string, retry: JobRetryOptions, gate?: SubmitGate): Promise<SubmitOutcome> {
    let data: GatewayJobData = Object.assign({}, request, { hash });
    return this.guard(async () => {
      const { claimed, placed } = gate ? await this.gatedClaim(data, hash, gate) : { claimed: await this.claimOrRelease(data, hash) };
      if (placed) data = Object.assign({}, data, placed);
      // Holds made for a request that is not new are not its: they go (the first submission has its own).
      if (claimed.kind !== 'created') await this.release(data);
      if (claimed.kind === 'conflict') {
        throw new GatewayError(
          'CONFLICT',
          `Request id ${data.id} is already used by another request (another service, operation or parameters, or another caller's)`,
        );
      }
      if (claimed.kind === 'joined') {
        const joined = await this.join(data, claimed, retry);
        // What it joined may stand on the primary alone (its first submission was refused for that).
        if (this.records.durability.replicas > 0) await this.accepted(data);
        return joined;
      }
      try {
        await this.queue(data.service, laneOf(data)).add(data.operation, data, jobOptions(data, retry));
      } catch (err) {
        // Undo the claim so that a retry with the same id is not joined to a job that does not exist.
        await Promise.all([this.unclaim(data.id), this.release(data)]);
        throw err;
      }
      if (this.records.durability.replicas > 0) await this.accepted(data);
      return { kind: 'created' };
    });
  }

  /**
   * A fresh id's claim and its job sent together, without waiting for the claim's answer: on one
   * Redis the two run back to back, before any worker could finish the job. For a request with
   * nothing to check or hold first. A cluster serves the record and the queue from different nodes,
   * which need not run them in that order: there it is `submit`, which waits for the claim.
   */
  async submitFresh(request: GatewayJobData, hash: string, retry: JobRetryOptions): Promise<SubmitOutcome> {
    if (isCluster(this.redis)) return this.submit(request, hash, retry);
    const data: GatewayJobData = Object.assign({}, request, { hash });
    return this.guard(async () => {
      const [claimed, added] = await Promise.allSettled([
        this.claim(data, hash),
        this.queue(data.service, laneOf(data)).add(data.operation, data, jobOptions(data, retry)),
      ]);
      if (claimed.status === 'rejected' || claimed.value.kind !== 'created') {
        // Redis failed the claim (a fresh id is never held already): the job goes too, unless a worker has it.
        if (added.status === 'fulfilled') await added.value.remove().catch(() => undefined);
        throw claimed.status === 'rejected'
          ? claimed.reason
          : new GatewayError('INTERNAL_ERROR', `The fresh id ${data.id} was held already`);
      }
      if (added.status === 'rejected') {
        await this.unclaim(data.id);
        throw added.reason;
      }
      if (this.records.durability.replicas > 0) await this.accepted(data);
      return { kind: 'created' };
    });
  }

  /**
   * A submission with an id already held by the same request joins it. A claim whose job was never
   * added (Redis dropped, or the API died, between the two) is completed here: the retry with the
   * same id is what the caller does, and it must not hang.
   */
  private async join(
    data: GatewayJobData,
    claimed: Extract<ClaimOutcome, { kind: 'joined' }>,
    retry: JobRetryOptions,
  ): Promise<SubmitOutcome> {
    const { resultJson } = claimed;
    if (resultJson) return { kind: 'joined', state: claimed.state, result: ResultMessage.fromJson(data.id, claimed.state, resultJson) };
    // Indexed now if it was not yet (its first submission may have been a sync one whose API process died).
    if (claimed.deadline !== undefined) await this.records.index([{ id: data.id, deadline: claimed.deadline }]).catch(() => undefined);
    const job = await this.findJob(data.service, data.id);
    if (job) return { kind: 'joined', state: await liveState(job) };
    // No job: it ended since the claim was read (its result is stored now), or it was never added.
    const rec = await this.records.get(data.id);
    if (rec?.result) return { kind: 'joined', state: rec.state, result: ResultMessage.fromResult(data.id, rec.state, rec.result) };
    // With the record's times, not this submission's: the record's deadline is the one the sweep
    // holds it to, and a later one would let the call run past it (and its result be refused). Marked
    // re-added, its run reads the record first: the request may end (a cancel) before it runs.
    const held = { ...data, rejoined: true, ...(rec ? { acceptedAt: rec.acceptedAt, deadline: rec.deadline } : {}) };
    await this.queue(data.service, laneOf(held)).add(data.operation, held, jobOptions(held, retry));
    return { kind: 'joined', state: PENDING_STATE };
  }

  /**
   * With replicas to wait for: the claim and the job are on them before the caller is told the
   * request is accepted. When they are not in time the request stands on the primary alone: the
   * caller gets UNAVAILABLE with its id, and sending it again with that id joins it (never runs it twice).
   */
  private async accepted(data: GatewayJobData): Promise<void> {
    try {
      await this.records.replicated([this.keys.request(data.id), this.keys.queueKey(data.service, 'wait', laneOf(data))], 'The request');
    } catch (err) {
      const e = isGatewayError(err) ? err : new GatewayError('UNAVAILABLE', 'The gateway cannot reach Redis', { cause: err });
      throw new GatewayError(
        e.code,
        `${e.message}: request ${data.id} may still run; send it again with the same id to follow it (GET /mcp/requests/${data.id})`,
        { retryAfterMs: 1000, details: { id: data.id, ...(e.details as object | undefined) } },
      );
    }
  }

  private claim(data: GatewayJobData, hash: string): Promise<ClaimOutcome> {
    const { id, service, acceptedAt, deadline, correlationId, agentId } = data;
    return this.records.claim({ id, hash, service, acceptedAt, deadline, correlationId, agentId }, { indexLater: data.indexLater });
  }

  /** The claim; when it cannot be made, the holds the request came with go. */
  private claimOrRelease(data: GatewayJobData, hash: string): Promise<ClaimOutcome> {
    return this.claim(data, hash).catch(async (err: unknown) => {
      await this.release(data);
      throw err;
    });
  }

  /** Deletes a claim this call just made and that will get no job. */
  private async unclaim(id: string): Promise<void> {
    await this.records.unclaim(id).catch(() => undefined);
  }

  /**
   * The gate's check and the claim in one write; a new claim the check refuses is deleted again. For
   * an id that was not new the check's refusal does not count, and what it placed comes back to be
   * released. For fresh ids only: a caller's own id may be claimed by a concurrent submission, which
   * the deletion of a refused claim would leave without its record.
   */
  private async gatedClaim(data: GatewayJobData, hash: string, gate: SubmitGate): Promise<{ claimed: ClaimOutcome; placed?: Placement }> {
    const [check, claim] = inOneWrite(this.redis, () => [gate(), this.claim(data, hash)] as const);
    // Handled here, read below: its refusal may arrive (in its own socket read) before the claim's answer.
    check.catch(() => undefined);
    const placedAnyway = () =>
      check.then(
        (placed) => placed ?? undefined,
        () => undefined,
      );
    const claimed = await claim.catch(async (err: unknown) => {
      await this.release({ ...data, ...(await placedAnyway()) });
      throw err;
    });
    if (claimed.kind !== 'created') return { claimed, placed: await placedAnyway() };
    try {
      return { claimed, placed: (await check) ?? undefined };
    } catch (err) {
      await this.unclaim(data.id);
      throw err;
    }
  }

  /** Releases the holds of a request that ends or never started (best effort: a hold lapses by itself after its deadline). */
  private async release(data: Pick<GatewayJobData, 'id' | 'holds'>): Promise<void> {
    if (!data.holds?.length) return;
    await Promise.all(data.holds.map((key) => this.redis.zrem(key, data.id))).catch(() => undefined);
  }

  async status(id: string): Promise<RequestStatus | undefined> {
    return this.guard(async () => {
      const rec = await this.records.get(id);
      if (!rec || rec.result) return rec && toStatus(rec);
      // Anyone who can read a request can count on its end: one due in the sweep's index is put
      // there (a sync one whose API process died before indexing it).
      const indexing = Date.now() >= indexDueAt(rec) ? this.records.index([rec]).catch(() => undefined) : undefined;
      const [job] = await Promise.all([this.findJob(rec.service, id), indexing]);
      return toStatus(rec, job ? await liveState(job) : undefined);
    });
  }

  /**
   * Cancels a request that has not ended. Queued or waiting for a retry: its job is removed first (a
   * removed job is never run). Running: its result is CANCELLED at once and the workers are told, so
   * the one making the call abandons it (the backend may still have acted on it; the result says so).
   * An ended request is CONFLICT.
   */
  async cancel(id: string): Promise<RequestStatus> {
    return this.guard(async () => {
      const rec = await this.records.get(id);
      if (!rec) throw new GatewayError('NOT_FOUND', `No request with id ${id}`);
      if (rec.state !== PENDING_STATE) throw notCancellable(id, rec.state);
      const job = await this.findJob(rec.service, id);
      const { taken: running } = await takeOut(job);
      const message = running
        ? 'The request was cancelled while its call was in flight: the call was abandoned, and the backend may or may not have acted on it'
        : job?.attemptsMade
          ? 'The request was cancelled while it waited for a retry'
          : 'The request was cancelled before it started';
      const error: ErrorBody = { code: 'CANCELLED', message, retryable: false, ...(running ? { details: { state: 'active' } } : {}) };
      // The attempt in flight counts: its call was sent.
      const facts = {
        operation: job?.name ?? '',
        attempts: (job?.attemptsMade ?? 0) + (running ? 1 : 0),
        startedAt: running ? job?.processedOn : undefined,
      };
      const result = endedWithError(rec, error, facts, Date.now());
      const stored = await inOneWrite(this.redis, () => {
        const finished = this.records.finish(result, 'cancelled', rec);
        // Every worker hears it; the one whose call this is abandons it.
        if (running) publish(this.redis, this.keys.cancelsChannel(), id).catch(() => undefined);
        return finished;
      });
      if (!stored) {
        const again = await this.records.get(id);
        if (!again) throw new GatewayError('NOT_FOUND', `No request with id ${id}`);
        throw notCancellable(id, again.state);
      }
      await this.release({ id, holds: job?.data.holds });
      this.onEnded(endedRequest(rec, result));
      return { ...result, state: 'cancelled' };
    });
  }

  /**
   * Ends every job still waiting in a service's queue with `error` (a service removed at run time):
   * nobody will consume that queue any more, and an accepted request must not be left without a result.
   */
  async failWaiting(service: string, error: ErrorBody): Promise<number> {
    return this.guard(async () => {
      let ended = 0;
      for (;;) {
        const jobs = (await Promise.all(this.lanes(service).map((q) => q.getJobs(['waiting', 'prioritized', 'delayed'], 0, 499)))).flat();
        if (jobs.length === 0) return ended;
        for (const job of jobs) {
          // Removed first: a job a worker took meanwhile is its to end (its service is gone).
          if (!(await takeOut(job)).removed) continue;
          const rec = await this.records.get(job.id!);
          if (rec?.state !== PENDING_STATE) continue;
          const result = endedWithError(rec, error, { operation: job.name, attempts: job.attemptsMade }, Date.now());
          if (await this.records.finish(result, 'failed', rec)) {
            await this.release(job.data);
            ended += 1;
            this.onEnded({ ...endedRequest(rec, result), job: job.data });
          }
        }
      }
    });
  }

  /**
   * Ends, with TIMEOUT, requests still not ended `graceMs` after their deadline: no worker took them,
   * or the one that did never finished. Their jobs are removed first unless a worker holds one (its
   * run then finds the request ended). One API process sweeps per `everyMs` (a lock in Redis), `batch`
   * entries at a time for at most half that time, so a large backlog drains over a few sweeps. Safe
   * beside workers and other sweeps: a result is stored once. Answers the ids it ended.
   */
  async sweepOverdue(graceMs: number, everyMs: number, batch = 200): Promise<string[]> {
    return this.guard(async () => {
      if ((await this.redis.set(this.keys.sweepLock(), '1', 'PX', Math.max(100, everyMs - 100), 'NX')) !== 'OK') return [];
      const until = Date.now() + everyMs / 2;
      const ended: string[] = [];
      for (;;) {
        const { pending, examined } = await this.records.overdue(Date.now(), graceMs, batch);
        for (const rec of pending) {
          const e = await this.endOverdue(rec);
          if (!e) continue;
          this.onEnded(e);
          ended.push(rec.id);
        }
        if (examined < batch || Date.now() >= until) return ended;
      }
    });
  }

  private async endOverdue(rec: PendingRecord): Promise<EndedRequest | undefined> {
    const now = Date.now();
    const job = await this.findJob(rec.service, rec.id);
    const { taken: running } = await takeOut(job);
    // A request still running may have had its call made: that is not for the caller to simply repeat.
    const state: RequestState = running ? 'active' : job?.attemptsMade ? 'retrying' : 'queued';
    const late = `The request was still ${state} ${Math.round((now - rec.deadline) / 1000)} s after its deadline`;
    const error: ErrorBody = {
      code: 'TIMEOUT',
      message: running
        ? `${late}: the worker that took it never finished it, and its call may have been made`
        : `${late}: no worker took it in time`,
      retryable: !running,
      details: running ? { state, outcome: 'unknown' } : { state },
    };
    const result = endedWithError(
      rec,
      error,
      { operation: job?.name ?? '', attempts: job?.attemptsMade ?? 0, startedAt: running ? job?.processedOn : undefined },
      now,
    );
    if (!(await this.records.finish(result, 'failed', rec))) return undefined;
    await this.release({ id: rec.id, holds: job?.data.holds });
    return { ...endedRequest(rec, result), ...(job ? { job: job.data } : {}) };
  }

  async counts(service: string): Promise<QueueCounts> {
    return this.guard(async () => {
      const lanes = await Promise.all(
        this.lanes(service).map((q) => q.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed')),
      );
      const c: Record<string, number> = {};
      for (const lane of lanes) for (const [k, v] of Object.entries(lane)) c[k] = (c[k] ?? 0) + v;
      return {
        waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
        active: c.active ?? 0,
        delayed: c.delayed ?? 0,
        completed: c.completed ?? 0,
        failed: c.failed ?? 0,
      };
    });
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close().catch(() => undefined)));
    this.queues.clear();
  }

  /** Redis errors while Redis is not ready become UNAVAILABLE; our own errors pass through. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isGatewayError(err)) throw err;
      if (this.redis.status !== 'ready' || isConnectionError(err)) {
        throw new GatewayError('UNAVAILABLE', 'The gateway cannot reach Redis; try again shortly', { retryAfterMs: 1000, cause: err });
      }
      throw err;
    }
  }
}

/**
 * Takes a job out of its queue unless a worker holds it (BullMQ refuses to remove a locked job): a
 * removed job is never run. `taken`: a worker had taken it, and holds it still or died holding it
 * (active, its lock expired, and no live worker of the service has handed it back yet): its call
 * may have been made.
 */
async function takeOut(job: Job | undefined): Promise<{ removed: boolean; taken: boolean }> {
  if (!job) return { removed: false, taken: false };
  const wasActive = (await job.getState()) === 'active';
  const removed = await job.remove().then(
    () => true,
    () => false,
  );
  return { removed, taken: wasActive || !removed };
}

/** Where a request that has not ended is in its run, from its job's state. */
async function liveState(job: Job): Promise<RequestState> {
  const state = await job.getState();
  if (state === 'active') return 'active';
  return state === 'delayed' && job.attemptsMade > 0 ? 'retrying' : PENDING_STATE;
}

function notCancellable(id: string, state: RequestState): GatewayError {
  return new GatewayError('CONFLICT', `Request ${id} is ${state} and can no longer be cancelled`, { details: { state } });
}

/**
 * An ioredis error that means Redis cannot serve now: out of reach (closed connection, refused, timed
 * out…), or failing over: a cluster with a slot not served (CLUSTERDOWN, TRYAGAIN, no slot map yet,
 * redirections that did not settle), a primary not elected yet (MASTERDOWN), a demoted one still
 * written to (READONLY), a node still loading its data (LOADING), or too few replicas (NOREPLICAS).
 */
export function isConnectionError(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return (
    /Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|MaxRetriesPerRequest|ETIMEDOUT|enableOfflineQueue|Command timed out/i.test(
      msg,
    ) ||
    /^(CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|LOADING|NOREPLICAS)\b|Cluster isn't ready|Failed to refresh slots cache|Too many Cluster redirections|None of startup nodes is available/.test(
      msg,
    )
  );
}
