import { DelayedError, type Job } from 'bullmq';
import type Redis from 'ioredis';
import {
  GatewayError,
  isGatewayError,
  isIdempotent,
  type ErrorBody,
  type MCPResponse,
  type OperationDefinition,
} from '@mcp-gateway/protocol';
import type { GatewayConfig, ServiceConfig } from '@mcp-gateway/config';
import { classifyOutcome, type BackendCaller, type BackendOutcome, type CallAbandon } from '@mcp-gateway/backends';
import type { GatewayJobData, RequestRecords } from '@mcp-gateway/broker';
import type { ServiceRegistry } from '@mcp-gateway/registry';
import {
  nextRetryDelay,
  retryDelay,
  type BreakerOutcome,
  type RetrySchedulePolicy,
  type ResiliencePolicy,
  type ResilienceStore,
} from '@mcp-gateway/resilience';
import { inOneWrite } from '@mcp-gateway/redis';
import { lazyChild, logScalars, type GatewaySpan, type LazyLogger, type Logger, type Tracing } from '@mcp-gateway/observability';
import type { GatewayMetrics, ServiceStats } from '@mcp-gateway/metrics';
import type { InFlightCalls } from './in-flight';

/** Thrown to make BullMQ run the job again after `delayMs` (read by the worker's backoffStrategy). */
export class RetryLater extends Error {
  override readonly name = 'RetryLater';
  constructor(
    readonly delayMs: number,
    readonly lastError: ErrorBody,
    readonly backendStatus?: number,
  ) {
    super(`retry in ${delayMs} ms: ${lastError.message}`);
  }
}

export interface PipelineDeps {
  config: GatewayConfig;
  /** The client `records` and `resilience` were made with: commands of both go out in one write on it. */
  redis: Redis;
  registry: ServiceRegistry;
  records: RequestRecords;
  caller: BackendCaller;
  resilience: ResilienceStore;
  logger: Logger;
  metrics: GatewayMetrics;
  stats: ServiceStats;
  tracing: Tracing;
  /** The jobs running here: a cancellation of one abandons its backend call. */
  inFlight: InFlightCalls;
  workerId: string;
  now?: () => number;
}

/**
 * One job, in the named steps of the pipeline:
 *   start → deadline → resolve operation → admit → call → record → retry or publish.
 * The processor never lets a request end without a stored result: every exit publishes one,
 * except a RetryLater, after which BullMQ runs the job again.
 */
export function createProcessor(deps: PipelineDeps) {
  const now = deps.now ?? Date.now;

  /** The job's span around every step; DelayedError and RetryLater end it too (the next run starts another). */
  return async function processJob(job: Job<GatewayJobData>, token?: string): Promise<void> {
    const span = deps.tracing.startSpan(`job ${job.data.service}.${job.data.operation}`, {
      kind: 'consumer',
      parent: job.data.traceparent,
      attributes: {
        'mcp.request_id': job.data.id,
        'mcp.service': job.data.service,
        'mcp.operation': job.data.operation,
        'mcp.attempt': job.attemptsMade + 1,
      },
    });
    const abandon = deps.inFlight.begin(job.data.id);
    try {
      await runJob(job, token, span, abandon);
      span.end();
    } catch (err) {
      span.end({ error: (err as Error).name });
      throw err;
    } finally {
      deps.inFlight.end(job.data.id, abandon);
    }
  };

  async function runJob(job: Job<GatewayJobData>, token: string | undefined, span: GatewaySpan, abandon: CallAbandon): Promise<void> {
    const d = job.data;
    const attempt = job.attemptsMade + 1;
    // Every line about this job carries its ids and the caller's trace. Made on first use: most jobs
    // log only their end (with the same fields), and a child logger per job is measurable CPU.
    const log = lazyChild(deps.logger, {
      id: d.id,
      correlationId: d.correlationId,
      traceparent: d.traceparent,
      service: d.service,
      operation: d.operation,
    });
    // When the worker took the job: the request's start (and the end of its queue wait).
    const takenAt = now();
    // 1. resolve the service and operation (definitions can change between enqueue and now), from memory
    let resolved: { service: ServiceConfig; op: OperationDefinition; label: string } | GatewayError;
    try {
      const service = deps.registry.require(d.service);
      const op = await deps.registry.operation(d.service, d.operation);
      resolved = { service, op, label: await deps.registry.operationLabel(d.service, op.name) };
    } catch (err) {
      resolved = isGatewayError(err) ? err : new GatewayError('INTERNAL_ERROR');
    }

    // 2. start (mark the request active, unless it ended while it waited) and, when there is a call to
    //    make, admit it: breaker, then rate limit, in one atomic step shared by every worker. Both go
    //    in one write. A job the bucket cannot serve now reserves its own future token (when that
    //    comes before its deadline) and sleeps in the delayed set until then: no worker spins, and no
    //    herd of waiting jobs re-checks the bucket each time a token appears. An open circuit delays
    //    it the same way.
    const timeLeft = d.deadline - now();
    const policy =
      resolved instanceof GatewayError
        ? undefined
        : { rateLimit: resolved.service.rateLimit, circuitBreaker: resolved.service.circuitBreaker };
    // A token that comes so late that no call could finish in time is not worth reserving.
    const callBudget = Math.min(1000, Math.floor(timeLeft / 4));
    // A call that must not be repeated is marked first (see 3.): the mark outlives this worker.
    const once = !(resolved instanceof GatewayError) && !isIdempotent(resolved.op);
    const [starting, admitting] = inOneWrite(
      deps.redis,
      () =>
        [
          deps.records.start(d.id, takenAt, 'active', once),
          policy && timeLeft > 0
            ? deps.resilience.admit(d.service, d.id, policy, Math.max(0, timeLeft) + 5000, {
                // A trial permit outlives the call by a margin; if this worker dies, the permit frees itself.
                maxWaitMs: Math.max(0, timeLeft - callBudget),
                ...(d.reservedAttempt === job.attemptsMade && d.reservedAt !== undefined ? { reservedAt: d.reservedAt } : {}),
              })
            : undefined,
        ] as const,
    );
    // Read once the start is known (and only then).
    admitting?.catch(() => undefined);
    const started = await starting;
    if (started.state !== 'active') {
      // A trial permit taken for a job that will not run is given back (a token is not: a rare loss).
      const admitted = await admitting?.catch(() => undefined);
      if (admitted?.verdict === 'admitted' && policy)
        await deps.resilience.record(d.service, d.id, 'neutral', policy).catch(() => undefined);
      if (started.state === 'missing') {
        // The record outlives the deadline by design; missing means it was deleted or lost with Redis data.
        log.error('job has no request record (deleted, or Redis lost data): it is not run');
      } else {
        // Cancelled (or otherwise ended) while it waited: nothing to do, the result is already stored.
        log.debug({ state: started.state }, 'job skipped: request already ended');
      }
      return;
    }
    const meta = {
      startedAt: started.startedAt,
      operationLabel: resolved instanceof GatewayError ? '_unknown' : resolved.label,
      backendMs: undefined as number | undefined,
    };
    if (job.attemptsMade === 0 && d.reservedAttempt === undefined) {
      deps.metrics.queueWaitSeconds.observe({ service: d.service }, Math.max(0, started.startedAt - d.acceptedAt) / 1000);
      if (deps.tracing.enabled)
        deps.tracing
          .startSpan(`queue ${d.service}`, { parent: d.traceparent, startTime: d.acceptedAt })
          .end({ endTime: started.startedAt });
    }
    const finish = (
      result: Omit<MCPResponse, 'metadata' | 'id'> & { dataJson?: string },
      attempts: number,
      backendStatus?: number,
      breaker?: BreakerRecord,
    ) =>
      publish(
        deps,
        d,
        {
          ...result,
          attempts,
          backendStatus,
          startedAt: meta.startedAt,
          now: now(),
          operationLabel: meta.operationLabel,
          backendMs: meta.backendMs,
        },
        breaker,
      );

    // 3. a call an earlier run may have sent, the deadline, then what resolving found (there is an
    //    admission exactly when the last two are fine)
    if (once && started.markedBefore !== undefined && policy) {
      // A run before this one took the job, may have sent the call, and never ended (its worker died or
      // lost the job's lock). Sending it again could do twice what must be done once: the caller is
      // told the outcome is unknown instead (not a retryable TIMEOUT, even past the deadline). A trial
      // permit this run was admitted with is given back.
      const admitted = (await admitting?.catch(() => undefined))?.verdict === 'admitted';
      const message =
        'A worker stopped while this call may have been in flight; the operation is not idempotent, so it was not sent again: the backend may or may not have acted on it';
      return finish(
        {
          status: 'error',
          error: errorBody('BACKEND_ERROR', message, {
            details: { outcome: 'unknown', markedAt: new Date(started.markedBefore).toISOString() },
          }),
        },
        // The run that may have sent it counts as an attempt.
        job.attemptsMade + 1,
        undefined,
        admitted ? { outcome: 'neutral', policy, log } : undefined,
      );
    }
    if (timeLeft <= 0) {
      return finish(
        { status: 'error', error: errorBody('TIMEOUT', 'The deadline passed before the backend could be called') },
        job.attemptsMade,
      );
    }
    if (resolved instanceof GatewayError || !admitting || !policy) {
      return finish(
        { status: 'error', error: (resolved instanceof GatewayError ? resolved : new GatewayError('INTERNAL_ERROR')).toBody() },
        job.attemptsMade,
      );
    }
    const { service, op } = resolved;
    const admission = await admitting;
    if (admission.verdict === 'rate_limited') {
      const message = `The service's rate limit had no room before the deadline (next token in ${admission.waitMs} ms)`;
      return finish({ status: 'error', error: errorBody('RATE_LIMITED', message, { retryAfterMs: admission.waitMs }) }, job.attemptsMade);
    }
    if (admission.verdict === 'circuit_open' && now() + admission.waitMs >= d.deadline) {
      const message = `The circuit of ${d.service} is ${admission.state === 'open' ? 'open' : 'half-open with its trial calls taken'}; no call could be made before the deadline`;
      return finish(
        {
          status: 'error',
          error: errorBody('CIRCUIT_OPEN', message, { retryAfterMs: admission.waitMs, details: { circuit: admission.state } }),
        },
        job.attemptsMade,
      );
    }
    if (admission.verdict === 'reserved' || admission.verdict === 'circuit_open') {
      if (admission.verdict === 'reserved' && d.reservedAt !== admission.slotAt) {
        await job.updateData({ ...d, reservedAttempt: job.attemptsMade, reservedAt: admission.slotAt });
      }
      await deps.records.setState(d.id, 'queued');
      log.debug({ verdict: admission.verdict, waitMs: admission.waitMs }, 'job waits for admission');
      await job.moveToDelayed(now() + admission.waitMs, token);
      throw new DelayedError();
    }

    // 4. call, with the time left as the timeout
    const call = deps.tracing.startSpan(`${op.method} ${d.service}`, {
      kind: 'client',
      parent: span.traceparent,
      attributes: { 'http.request.method': op.method, 'mcp.service': d.service, 'mcp.operation': op.name },
    });
    const outcome = await deps.caller.call({
      service: d.service,
      config: service,
      operation: op,
      parameters: d.parameters,
      timeoutMs: Math.max(1, d.deadline - now()),
      abandon,
      headers: {
        'X-Correlation-ID': d.correlationId,
        traceparent: call.traceparent,
        'Idempotency-Key': d.id,
        'X-Gateway-Worker': deps.workerId,
      },
    });

    call.setAttributes({
      'http.response.status_code': outcome.kind === 'response' ? outcome.status : undefined,
      'mcp.outcome': outcome.kind,
    });
    call.end(
      outcome.kind === 'response' && outcome.status < 500
        ? {}
        : outcome.kind === 'response'
          ? { error: `HTTP ${outcome.status}` }
          : { error: outcome.kind },
    );

    // 5. record: 5xx, timeouts and connection errors count against the breaker; 4xx do not.
    meta.backendMs = outcome.durationMs;
    if (outcome.kind !== 'not_sent')
      deps.metrics.backendSeconds.observe({ service: d.service, operation: meta.operationLabel }, outcome.durationMs / 1000);
    const c = classifyOutcome(outcome);
    // A timeout counts against the service only when the request had the service's own deadline (or a
    // longer one): a caller that chose a shorter one cannot open the circuit for everyone.
    const shortened = outcome.kind === 'timeout' && d.deadline - d.acceptedAt < (service.timeout ?? deps.config.defaultTimeout);
    const breaker: BreakerRecord = { outcome: c.ok ? 'success' : c.countsAsFailure && !shortened ? 'failure' : 'neutral', policy, log };

    // 6. retry or publish (a published result goes in one write after its breaker record)
    const status = outcome.kind === 'response' ? outcome.status : undefined;
    if (c.ok) {
      // The answer's JSON goes into the result as the backend sent it (numbers beyond a double's
      // precision included), not serialized again from its parse.
      const answer =
        outcome.kind === 'response' ? { data: outcome.data, ...(outcome.json === undefined ? {} : { dataJson: outcome.json }) } : {};
      return finish({ status: 'success', ...answer }, attempt, status, breaker);
    }
    const retryPolicy = deps.registry.retryPolicy(d.service);
    const error = outcomeError(outcome, c, attempt, retryPolicy);
    const safeToRepeat = isIdempotent(op) || c.neverSent;
    if (c.retryable && safeToRepeat) {
      const delay = nextRetryDelay({
        policy: retryPolicy,
        attemptsMade: attempt,
        retryAfterMs: c.retryAfterMs,
        now: now(),
        deadline: d.deadline,
      });
      if (delay !== undefined) {
        // Best effort: a breaker that cannot be updated must not turn a backend's answer into an error.
        await deps.resilience.record(d.service, d.id, breaker.outcome, policy).catch((err: unknown) => breakerNotRecorded(log, err));
        await deps.records.setState(d.id, 'retrying');
        deps.metrics.retries.inc({ service: d.service });
        log.info({ attempt, delayMs: delay, reason: error.message, backendStatus: status }, 'retry scheduled');
        throw new RetryLater(delay, error, status);
      }
    }
    return finish({ status: 'error', error: safeToRepeat ? error : mayHaveActed(error, outcome) }, attempt, status, breaker);
  }
}

/**
 * A write whose call may have reached the backend and got no answer (a timeout, a connection lost
 * after sending) is not the caller's to repeat either: the backend may have done it. Such an error
 * says so, and is not retryable.
 */
function mayHaveActed(error: ErrorBody, outcome: BackendOutcome): ErrorBody {
  if ((outcome.kind !== 'timeout' && outcome.kind !== 'network') || !error.retryable) return error;
  return {
    ...error,
    message: `${error.message}; the operation is not idempotent and the backend may have carried it out, so calling it again could do it twice`,
    retryable: false,
    details: { outcome: 'unknown' },
  };
}

/** A backend call's outcome for the breaker: 5xx, timeouts and connection errors fail; 4xx are neutral. */
interface BreakerRecord {
  outcome: BreakerOutcome;
  policy: ResiliencePolicy;
  log: LazyLogger;
}

function breakerNotRecorded(log: LazyLogger, err: unknown): void {
  log.warn({ err: String(err) }, 'the outcome could not be recorded for the breaker');
}

type Classified = ReturnType<typeof classifyOutcome>;

function outcomeError(outcome: BackendOutcome, c: Classified, attempts: number, retryPolicy: RetrySchedulePolicy): ErrorBody {
  const after = attempts > 1 ? ` after ${attempts} attempts` : '';
  switch (outcome.kind) {
    case 'timeout':
      return errorBody('TIMEOUT', `The backend did not answer in time${after}`);
    case 'aborted':
      return errorBody('CANCELLED', 'The call was cancelled');
    case 'not_sent':
      return { ...outcome.error.toBody(), retryable: c.retryable };
    case 'network':
      return errorBody('BACKEND_ERROR', `The backend could not be reached (${outcome.code})${after}`, { retryable: c.retryable });
    case 'response':
      if (outcome.status === 429) {
        // A 429 always tells the caller when to come back: the backend's Retry-After, else the delay our
        // schedule gives the next retry (without jitter, which could make it 0).
        return errorBody('RATE_LIMITED', `The backend is rate limiting the gateway (429)${after}`, {
          retryAfterMs: c.retryAfterMs ?? retryDelay({ ...retryPolicy, jitter: false }, attempts),
          details: { backendStatus: 429 },
        });
      }
      return errorBody('BACKEND_ERROR', `The backend answered ${outcome.status}${after}`, {
        retryable: c.retryable,
        retryAfterMs: c.retryAfterMs,
        details: outcome.data,
      });
  }
}

function errorBody(code: ErrorBody['code'], message: string, extra: Partial<ErrorBody> = {}): ErrorBody {
  const body = new GatewayError(code, message).toBody();
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) (body as unknown as Record<string, unknown>)[k] = v;
  return body;
}

interface PublishInput extends Omit<MCPResponse, 'metadata' | 'id'> {
  attempts: number;
  backendStatus?: number;
  startedAt: number;
  now: number;
  operationLabel: string;
  /** The last backend call's duration. */
  backendMs?: number;
  /** `data` as the backend's JSON text, stored in its place. */
  dataJson?: string;
}

async function publish(deps: PipelineDeps, d: GatewayJobData, r: PublishInput, breaker?: BreakerRecord): Promise<void> {
  const result: MCPResponse = {
    id: d.id,
    status: r.status,
    ...(r.status === 'success' ? { data: r.data } : { error: r.error }),
    metadata: {
      correlationId: d.correlationId,
      service: d.service,
      operation: d.operation,
      attempts: r.attempts,
      queuedMs: Math.max(0, r.startedAt - d.acceptedAt),
      processingTime: Math.max(0, r.now - r.startedAt),
      ...(r.backendStatus === undefined ? {} : { backendStatus: r.backendStatus }),
      completedAt: new Date(r.now).toISOString(),
    },
  };
  // One write: the breaker record (when a call was made), then the result stored and published. Redis
  // runs them in that order, so a caller told of a failure finds the breaker already counting it.
  const [recorded, finished] = inOneWrite(
    deps.redis,
    () =>
      [
        breaker && deps.resilience.record(d.service, d.id, breaker.outcome, breaker.policy),
        deps.records.finish(result, r.status === 'success' ? 'completed' : 'failed', false, r.dataJson),
      ] as const,
  );
  const [, stored] = await Promise.all([
    // Best effort: a breaker that cannot be updated must not turn a backend's answer into an error.
    breaker && recorded?.catch((err: unknown) => breakerNotRecorded(breaker.log, err)),
    finished,
  ]);
  const outcome = r.status === 'success' ? 'success' : (r.error?.code ?? 'INTERNAL_ERROR');
  const totalMs = Math.max(0, r.now - d.acceptedAt);
  if (stored) {
    deps.metrics.requests.inc({ service: d.service, operation: r.operationLabel, outcome });
    deps.metrics.totalSeconds.observe({ service: d.service, outcome }, totalMs / 1000);
    await deps.stats
      .record(d.service, outcome, totalMs)
      .catch((err: unknown) => deps.logger.warn({ service: d.service, err: String(err) }, 'request stats not recorded'));
  }
  logScalars(
    deps.logger,
    'info',
    {
      id: d.id,
      correlationId: d.correlationId,
      traceparent: d.traceparent,
      agentId: d.agentId,
      service: d.service,
      operation: d.operation,
      outcome,
      attempts: r.attempts,
      queuedMs: result.metadata.queuedMs,
      processingTime: result.metadata.processingTime,
      totalMs,
      backendMs: r.backendMs,
      backendStatus: r.backendStatus,
      stored,
    },
    // One `request finished` line per request: one ended elsewhere meanwhile (cancelled) has had its own.
    stored ? 'request finished' : 'call ended after its request had ended: this result was not stored',
  );
}

/**
 * A job BullMQ gave up on (a RetryLater past its attempts, a processor bug, a stall past its limit)
 * still gets a result, so nothing accepted is ever left without one.
 */
export async function publishAbandoned(deps: PipelineDeps, job: Job<GatewayJobData>, err: Error): Promise<void> {
  const d = job.data;
  const error = err instanceof RetryLater ? err.lastError : errorBody('INTERNAL_ERROR', 'The gateway could not process the request');
  const now = (deps.now ?? Date.now)();
  await publish(deps, d, {
    status: 'error',
    error,
    attempts: job.attemptsMade,
    backendStatus: err instanceof RetryLater ? err.backendStatus : undefined,
    startedAt: job.processedOn ?? now,
    now,
    operationLabel: '_unknown',
  });
}
