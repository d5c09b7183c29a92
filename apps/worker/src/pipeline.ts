import { DelayedError, type Job } from 'bullmq';
import {
  GatewayError,
  isGatewayError,
  isIdempotent,
  isoTime,
  type ErrorBody,
  type MCPResponse,
  type OperationDefinition,
} from '@mcp-gateway/protocol';
import type { GatewayConfig, ServiceConfig } from '@mcp-gateway/config';
import { classifyOutcome, type BackendCaller, type BackendOutcome, type CallAbandon } from '@mcp-gateway/backends';
import {
  deadLetterOf,
  isDeadLetter,
  mayBeIndexed,
  PENDING_STATE,
  type DeadLetters,
  type GatewayJobData,
  type RequestRecords,
} from '@mcp-gateway/broker';
import type { ServiceRegistry } from '@mcp-gateway/registry';
import {
  breakerMustRecord,
  nextRetryDelay,
  retryDelay,
  type BreakerOutcome,
  type RetrySchedulePolicy,
  type ResiliencePolicy,
  type ResilienceStore,
} from '@mcp-gateway/resilience';
import { inOneWrite, isCluster, type RedisClient } from '@mcp-gateway/redis';
import { lazyChild, logScalars, type GatewaySpan, type LazyLogger, type Logger, type Tracing } from '@mcp-gateway/observability';
import { agentLabel, type GatewayMetrics, type ServiceStats } from '@mcp-gateway/metrics';
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
  redis: RedisClient;
  registry: ServiceRegistry;
  records: RequestRecords;
  caller: BackendCaller;
  resilience: ResilienceStore;
  logger: Logger;
  metrics: GatewayMetrics;
  stats: ServiceStats;
  /** The configured agents (configuredAgentIds): the ones `/metrics` counts by id. */
  agents: ReadonlySet<string>;
  /** Where a request that failed for a reason that may pass later is kept for replay. */
  deadLetters: DeadLetters;
  tracing: Tracing;
  /** The jobs running here: a cancellation of one abandons its backend call. */
  inFlight: InFlightCalls;
  workerId: string;
  now?: () => number;
}

/**
 * One job, in the named steps of the pipeline:
 *   resolve → start and admit → decide (end now, wait for admission, or call) → call → settle
 *   (retry or publish).
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
      await runJob({ deps, now, job, token, span, abandon, log: jobLogger(deps.logger, job.data) });
      span.end();
    } catch (err) {
      span.end({ error: (err as Error).name });
      throw err;
    } finally {
      deps.inFlight.end(job.data.id, abandon);
    }
  };
}

/** What every step of one run reads. */
interface Run {
  deps: PipelineDeps;
  now: () => number;
  job: Job<GatewayJobData>;
  token: string | undefined;
  span: GatewaySpan;
  abandon: CallAbandon;
  log: LazyLogger;
}

/** Every line about a job carries its ids and the caller's trace; the child logger is made on first use. */
function jobLogger(logger: Logger, d: GatewayJobData): LazyLogger {
  return lazyChild(logger, {
    id: d.id,
    correlationId: d.correlationId,
    traceparent: d.traceparent,
    service: d.service,
    operation: d.operation,
  });
}

async function runJob(run: Run): Promise<void> {
  const { job } = run;
  if (cancelledBeforeItBegan(run) || (isRerun(job) && (await requestEnded(run)))) return;
  const resolving = resolveTarget(run.deps, job.data);
  const target = resolving instanceof Promise ? await resolving : resolving;
  const { admitting, policy, once, timeLeft } = admit(run, target);
  // Read once the decision needs it (and only then).
  admitting?.catch(() => undefined);
  const startedAt = firstStart(run);
  observeQueueWait(run, startedAt);
  const meta: RunMeta = { startedAt, operationLabel: target.kind === 'resolved' ? target.label : '_unknown' };
  const decision = await decide(run, { target, admitting, policy, once, timeLeft });
  if (decision.kind === 'end') return finish(run, meta, decision);
  if (decision.kind === 'wait') return waitForAdmission(run, decision, startedAt);
  if (once && run.deps.records.durability.replicas > 0 && !(await takenDurably(run)))
    return finish(run, meta, notSentUnreplicated(run, decision));
  // The call gets what is left of the deadline.
  const timeoutMs = Math.max(1, job.data.deadline - run.now());
  const outcome = await callBackend(run, decision, timeoutMs);
  meta.backendMs = outcome.durationMs;
  if (outcome.kind !== 'not_sent')
    run.deps.metrics.backendSeconds.observe({ service: job.data.service, operation: meta.operationLabel }, outcome.durationMs / 1000);
  const settled = settle(run, decision, outcome, timeoutMs);
  if (settled.kind === 'retry') return retryLater(run, settled, startedAt);
  return finish(run, meta, settled);
}

/**
 * With replicas to wait for, a call that must not be repeated is sent only once its job's taking is
 * on them: a failover then finds it taken (and stalled), and it is not sent again (see decide).
 */
async function takenDurably(run: Run): Promise<boolean> {
  const { deps, job } = run;
  return deps.records.replicated([`${job.queueQualifiedName}:${job.id}`], 'The job about to be sent').then(
    () => true,
    (err: unknown) => {
      run.log.warn({ err: String(err) }, 'a non-idempotent call was not sent: its job did not reach the Redis replicas in time');
      return false;
    },
  );
}

/** The end of a request whose call was not sent because its taking could not be made durable. */
function notSentUnreplicated(run: Run, call: Extract<Decision, { kind: 'call' }>): Extract<Decision, { kind: 'end' }> {
  const { replicas, timeoutMs } = run.deps.records.durability;
  const message = `The call was not sent: Redis could not copy its job to ${replicas} replica(s) within ${timeoutMs} ms, and a non-idempotent call is sent only once that is done`;
  const error = errorBody('UNAVAILABLE', message, { retryAfterMs: 1000, details: { sent: false } });
  return end(error, run.job.attemptsMade, { outcome: 'neutral', policy: call.policy, log: run.log }) as Extract<Decision, { kind: 'end' }>;
}

/** A cancellation of this job, heard as it was fetched: its request has ended, and nothing is sent. */
function cancelledBeforeItBegan(run: Run): boolean {
  if (!run.abandon.abandoned) return false;
  run.log.debug('job skipped: its request was cancelled as it was fetched');
  return true;
}

/**
 * A run that is not its job's first (an earlier one handed the job back, to wait for admission or a
 * retry, or stalled), or the run of a job added again by a joining submission. Only such a run can
 * find its request ended before it starts: a job that was never run is removed before its request
 * is cancelled or swept, and cannot be taken after that.
 */
function isRerun(job: Job<GatewayJobData>): boolean {
  return job.attemptsMade > 0 || job.stalledCounter > 0 || job.data.startedAt !== undefined || job.data.rejoined === true;
}

/** Whether the request already ended (cancelled while its job waited, or a stalled run stored its result): nothing to run. */
async function requestEnded(run: Run): Promise<boolean> {
  const rec = await run.deps.records.get(run.job.data.id);
  if (!rec) {
    // The record outlives the deadline by design; missing means it was deleted or lost with Redis data.
    run.log.error('job has no request record (deleted, or Redis lost data): it is not run');
    return true;
  }
  if (rec.state === PENDING_STATE) return false;
  run.log.debug({ state: rec.state }, 'job skipped: request already ended');
  return true;
}

/**
 * When the request's first run started (the end of its queue wait): BullMQ's fetch stamps each run's
 * start on the job, and a run that hands the job back (to wait for admission or a retry) keeps the
 * first one in its data.
 */
function firstStart(run: Run): number {
  return run.job.data.startedAt ?? run.job.processedOn ?? run.now();
}

/** The service and operation as defined now (definitions can change between enqueue and now), from memory. */
type Target =
  { kind: 'resolved'; service: ServiceConfig; op: OperationDefinition; label: string } | { kind: 'unresolved'; error: GatewayError };

/** From the definition in memory when it is there (every job but a service's first): no promise. */
function resolveTarget(deps: PipelineDeps, d: GatewayJobData): Target | Promise<Target> {
  try {
    const service = deps.registry.require(d.service);
    const known = deps.registry.operationNow(d.service, d.operation);
    return known ? { kind: 'resolved', service, op: known.op, label: known.label } : loadTarget(deps, d, service);
  } catch (err) {
    return unresolved(err);
  }
}

async function loadTarget(deps: PipelineDeps, d: GatewayJobData, service: ServiceConfig): Promise<Target> {
  try {
    const op = await deps.registry.operation(d.service, d.operation);
    return { kind: 'resolved', service, op, label: await deps.registry.operationLabel(d.service, op.name) };
  } catch (err) {
    return unresolved(err);
  }
}

function unresolved(err: unknown): Target {
  return { kind: 'unresolved', error: isGatewayError(err) ? err : new GatewayError('INTERNAL_ERROR') };
}

/**
 * When there is a call to make, admits it: breaker, then rate limit, in one atomic step shared by
 * every worker. A job the bucket cannot serve now reserves its own future token (when that comes
 * before its deadline) and sleeps in the delayed set until then: no worker spins, and no herd of
 * waiting jobs re-checks the bucket each time a token appears. An open circuit delays it the same way.
 */
function admit(run: Run, target: Target) {
  const { deps, job } = run;
  const d = job.data;
  const timeLeft = d.deadline - run.now();
  const policy: ResiliencePolicy | undefined =
    target.kind === 'resolved' ? { rateLimit: target.service.rateLimit, circuitBreaker: target.service.circuitBreaker } : undefined;
  // A token that comes so late that no call could finish in time is not worth reserving.
  const callBudget = Math.min(1000, Math.floor(timeLeft / 4));
  // A call that must not be repeated is not sent again after a run that may have sent it (see decide).
  const once = target.kind === 'resolved' && !isIdempotent(target.op);
  const admitting =
    policy && timeLeft > 0
      ? deps.resilience.admit(d.service, d.id, policy, Math.max(0, timeLeft) + 5000, {
          // A trial permit outlives the call by a margin; if this worker dies, the permit frees itself.
          maxWaitMs: Math.max(0, timeLeft - callBudget),
          ...(d.reservedAttempt === job.attemptsMade && d.reservedAt !== undefined ? { reservedAt: d.reservedAt } : {}),
        })
      : undefined;
  return { admitting, policy, once, timeLeft };
}

type Admitting = ReturnType<typeof admit>['admitting'];
type Admission = NonNullable<Awaited<Admitting>>;
type Admitted = Extract<Admission, { verdict: 'admitted' }>;

/** The first run of a job that did not wait for a token: its queue wait, as a metric and a span. */
function observeQueueWait(run: Run, startedAt: number): void {
  const { deps, job } = run;
  const d = job.data;
  if (job.attemptsMade !== 0 || d.reservedAttempt !== undefined || d.startedAt !== undefined) return;
  deps.metrics.queueWaitSeconds.observe({ service: d.service }, Math.max(0, startedAt - d.acceptedAt) / 1000);
  if (deps.tracing.enabled)
    deps.tracing.startSpan(`queue ${d.service}`, { parent: d.traceparent, startTime: d.acceptedAt }).end({ endTime: startedAt });
}

/** What a started run does: end the request now, wait in the delayed set for admission, or call. */
type Decision =
  | ({ kind: 'end' } & Ending)
  | { kind: 'wait'; verdict: 'reserved' | 'circuit_open'; waitMs: number; slotAt?: number }
  | { kind: 'call'; service: ServiceConfig; op: OperationDefinition; policy: ResiliencePolicy; admitted: Admitted };

/** A request's end: its result, the attempts made, and the breaker record to write with it. */
interface Ending {
  result: Omit<MCPResponse, 'metadata' | 'id'> & { dataJson?: string };
  attempts: number;
  backendStatus?: number;
  breaker?: BreakerRecord;
}

interface DecideInput {
  target: Target;
  admitting: Admitting;
  policy: ResiliencePolicy | undefined;
  once: boolean;
  timeLeft: number;
}

/** A call an earlier run may have sent, the deadline, then what resolving and admission found. */
async function decide(run: Run, { target, admitting, policy, once, timeLeft }: DecideInput): Promise<Decision> {
  const { job } = run;
  if (once && job.stalledCounter > 0 && policy) return unknownOutcome(job, admitting, policy, run.log);
  if (timeLeft <= 0) {
    return end(errorBody('TIMEOUT', 'The deadline passed before the backend could be called'), job.attemptsMade);
  }
  if (target.kind === 'unresolved' || !admitting || !policy) {
    return end((target.kind === 'unresolved' ? target.error : new GatewayError('INTERNAL_ERROR')).toBody(), job.attemptsMade);
  }
  return admissionDecision(run, await admitting, target, policy);
}

const end = (error: ErrorBody, attempts: number, breaker?: BreakerRecord): Decision => ({
  kind: 'end',
  result: { status: 'error', error },
  attempts,
  ...(breaker ? { breaker } : {}),
});

/**
 * A run before this one took the job, may have sent the call, and never ended (its worker died or
 * lost the job's lock: BullMQ counted the job stalled). Sending it again could do twice what must be
 * done once: the caller is told the outcome is unknown instead (not a retryable TIMEOUT, even past
 * the deadline). A trial permit this run was admitted with is given back.
 */
async function unknownOutcome(
  job: Job<GatewayJobData>,
  admitting: Admitting,
  policy: ResiliencePolicy,
  log: LazyLogger,
): Promise<Decision> {
  const admitted = (await admitting?.catch(() => undefined))?.verdict === 'admitted';
  const message =
    'A worker stopped while this call may have been in flight; the operation is not idempotent, so it was not sent again: the backend may or may not have acted on it';
  const error = errorBody('BACKEND_ERROR', message, { details: { outcome: 'unknown', stalledRuns: job.stalledCounter } });
  // The run that may have sent it counts as an attempt.
  return end(error, job.attemptsMade + 1, admitted ? { outcome: 'neutral', policy, log } : undefined);
}

function admissionDecision(
  run: Run,
  admission: Admission,
  target: Extract<Target, { kind: 'resolved' }>,
  policy: ResiliencePolicy,
): Decision {
  const { job } = run;
  const d = job.data;
  if (admission.verdict === 'rate_limited') {
    const message = `The service's rate limit had no room before the deadline (next token in ${admission.waitMs} ms)`;
    return end(errorBody('RATE_LIMITED', message, { retryAfterMs: admission.waitMs }), job.attemptsMade);
  }
  if (admission.verdict === 'circuit_open' && run.now() + admission.waitMs >= d.deadline) {
    const message = `The circuit of ${d.service} is ${admission.state === 'open' ? 'open' : 'half-open with its trial calls taken'}; no call could be made before the deadline`;
    return end(
      errorBody('CIRCUIT_OPEN', message, { retryAfterMs: admission.waitMs, details: { circuit: admission.state } }),
      job.attemptsMade,
    );
  }
  if (admission.verdict === 'reserved') return { kind: 'wait', verdict: 'reserved', waitMs: admission.waitMs, slotAt: admission.slotAt };
  if (admission.verdict === 'circuit_open') return { kind: 'wait', verdict: 'circuit_open', waitMs: admission.waitMs };
  return { kind: 'call', service: target.service, op: target.op, policy, admitted: admission };
}

/** The job sleeps in the delayed set until its reserved token (or the breaker's next look) is due. */
async function waitForAdmission(run: Run, wait: Extract<Decision, { kind: 'wait' }>, startedAt: number): Promise<never> {
  const { job } = run;
  const d = job.data;
  const reserving = wait.verdict === 'reserved' && d.reservedAt !== wait.slotAt;
  if (reserving || d.startedAt === undefined) {
    await job.updateData({ ...d, startedAt, ...(reserving ? { reservedAttempt: job.attemptsMade, reservedAt: wait.slotAt } : {}) });
  }
  run.log.debug({ verdict: wait.verdict, waitMs: wait.waitMs }, 'job waits for admission');
  await job.moveToDelayed(run.now() + wait.waitMs, run.token);
  throw new DelayedError();
}

/** The backend call, with the time left as its timeout, in a client span. */
async function callBackend(run: Run, call: Extract<Decision, { kind: 'call' }>, timeoutMs: number): Promise<BackendOutcome> {
  const { deps, job, span } = run;
  const d = job.data;
  const client = deps.tracing.startSpan(`${call.op.method} ${d.service}`, {
    kind: 'client',
    parent: span.traceparent,
    attributes: { 'http.request.method': call.op.method, 'mcp.service': d.service, 'mcp.operation': call.op.name },
  });
  const outcome = await deps.caller.call({
    service: d.service,
    config: call.service,
    operation: call.op,
    parameters: d.parameters,
    timeoutMs,
    abandon: run.abandon,
    headers: {
      'X-Correlation-ID': d.correlationId,
      traceparent: client.traceparent,
      'Idempotency-Key': d.id,
      'X-Gateway-Worker': deps.workerId,
    },
  });
  client.setAttributes({
    'http.response.status_code': outcome.kind === 'response' ? outcome.status : undefined,
    'mcp.outcome': outcome.kind,
  });
  const failed = outcome.kind === 'response' ? (outcome.status < 500 ? undefined : `HTTP ${outcome.status}`) : outcome.kind;
  client.end(failed ? { error: failed } : {});
  return outcome;
}

type Settled =
  ({ kind: 'end' } & Ending) | { kind: 'retry'; delayMs: number; error: ErrorBody; backendStatus?: number; breaker?: BreakerRecord };

/**
 * What the outcome means: 5xx, timeouts and connection errors count against the breaker, 4xx do not;
 * a retryable failure with attempts and time left is retried when repeating it is safe.
 */
function settle(run: Run, call: Extract<Decision, { kind: 'call' }>, outcome: BackendOutcome, timeoutMs: number): Settled {
  const { deps, job } = run;
  const d = job.data;
  const attempt = job.attemptsMade + 1;
  const c = classifyOutcome(outcome);
  // A timeout counts against the service only when the request had the service's own deadline (or a
  // longer one) and the call at least half of it left: a caller that chose a shorter deadline, or a
  // call that started late in its deadline (a backlog, a Redis stall), cannot open the circuit for everyone.
  const own = call.service.timeout ?? deps.config.defaultTimeout;
  const shortened = outcome.kind === 'timeout' && (d.deadline - d.acceptedAt < own || timeoutMs < own / 2);
  const breakerOutcome: BreakerOutcome = c.ok ? 'success' : c.countsAsFailure && !shortened ? 'failure' : 'neutral';
  const breaker = breakerMustRecord(breakerOutcome, call.admitted)
    ? { outcome: breakerOutcome, policy: call.policy, log: run.log }
    : undefined;
  const backendStatus = outcome.kind === 'response' ? outcome.status : undefined;
  if (c.ok) {
    // The answer's JSON goes into the result as the backend sent it (numbers beyond a double's
    // precision included), not serialized again from its parse.
    const answer =
      outcome.kind === 'response' ? { data: outcome.data, ...(outcome.json === undefined ? {} : { dataJson: outcome.json }) } : {};
    return { kind: 'end', result: { status: 'success', ...answer }, attempts: attempt, backendStatus, breaker };
  }
  const retryPolicy = deps.registry.retryPolicy(d.service);
  const error = outcomeError(outcome, c, attempt, retryPolicy);
  const safeToRepeat = isIdempotent(call.op) || c.neverSent;
  if (c.retryable && safeToRepeat) {
    const delayMs = nextRetryDelay({
      policy: retryPolicy,
      attemptsMade: attempt,
      retryAfterMs: c.retryAfterMs,
      now: run.now(),
      deadline: d.deadline,
    });
    if (delayMs !== undefined) return { kind: 'retry', delayMs, error, backendStatus, breaker };
  }
  return {
    kind: 'end',
    result: { status: 'error', error: safeToRepeat ? error : mayHaveActed(error, outcome) },
    attempts: attempt,
    backendStatus,
    breaker,
  };
}

/** Records the outcome for the breaker, keeps the first run's start, and hands the job back to BullMQ. */
async function retryLater(run: Run, retry: Extract<Settled, { kind: 'retry' }>, startedAt: number): Promise<never> {
  const { deps, job } = run;
  const d = job.data;
  // Best effort: a breaker that cannot be updated must not turn a backend's answer into an error.
  if (retry.breaker)
    await deps.resilience
      .record(d.service, d.id, retry.breaker.outcome, retry.breaker.policy)
      .catch((err: unknown) => breakerNotRecorded(run.log, err));
  if (d.startedAt === undefined) await job.updateData({ ...d, startedAt });
  deps.metrics.retries.inc({ service: d.service });
  run.log.info(
    { attempt: job.attemptsMade + 1, delayMs: retry.delayMs, reason: retry.error.message, backendStatus: retry.backendStatus },
    'retry scheduled',
  );
  throw new RetryLater(retry.delayMs, retry.error, retry.backendStatus);
}

/** When the run started and what it called, for the result's metadata and the metrics. */
interface RunMeta {
  startedAt: number;
  operationLabel: string;
  /** The last backend call's duration. */
  backendMs?: number;
}

/** Publishes the request's result (in one write after its breaker record, when there is one). */
function finish(run: Run, meta: RunMeta, ending: Ending): Promise<void> {
  const input = {
    attempts: ending.attempts,
    backendStatus: ending.backendStatus,
    startedAt: meta.startedAt,
    now: run.now(),
    operationLabel: meta.operationLabel,
    backendMs: meta.backendMs,
  };
  // Not `{ ...result, attempts, … }`: a literal that starts with a spread is slow on Node 20 (bench/object-literals.js).
  return publish(run.deps, run.job.data, Object.assign(input, ending.result), ending.breaker);
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
      completedAt: isoTime(r.now),
      ...(d.replayOf ? { replayOf: d.replayOf } : {}),
    },
  };
  // Kept for replay: a failure that may pass later (for a success this is one comparison).
  const letter = isDeadLetter(result) ? deadLetterOf(d, result, r.now) : undefined;
  // One write: the breaker record (when a call was made) and the dead letter, then the result stored
  // and published, then the agent's holds released. Redis runs them in that order, so a caller told of
  // a failure finds the breaker already counting it and its dead letter kept. On a cluster the record
  // may be on another node than the service: there the result waits for the two before it.
  const [recorded, kept] = inOneWrite(
    deps.redis,
    () =>
      [
        breaker && deps.resilience.record(d.service, d.id, breaker.outcome, breaker.policy),
        letter && deps.deadLetters.add(letter, true),
      ] as const,
  );
  // A failure's breaker news (published once its record answers) also goes out before the result: a
  // caller told its call failed has its next request checked afresh by every API process.
  if ((recorded || kept) && (isCluster(deps.redis) || breaker?.outcome === 'failure')) await Promise.allSettled([recorded, kept]);
  const [finished, released] = inOneWrite(
    deps.redis,
    () =>
      [
        deps.records.finish(
          result,
          r.status === 'success' ? 'completed' : 'failed',
          { hash: d.hash ?? '', agentId: d.agentId },
          { dataJson: r.dataJson, unindex: mayBeIndexed(d, r.now) },
        ),
        d.holds && Promise.all(d.holds.map((key) => deps.redis.zrem(key, d.id))),
      ] as const,
  );
  const [, keptOk, stored] = await Promise.all([
    // Best effort: a breaker that cannot be updated must not turn a backend's answer into an error.
    breaker && recorded?.catch((err: unknown) => breakerNotRecorded(breaker.log, err)),
    kept?.catch((err: unknown) => {
      deps.logger.warn({ id: d.id, service: d.service, err: String(err) }, 'the dead letter was not kept');
      return false;
    }),
    finished,
    // A hold not released lapses by itself after the request's deadline.
    released?.catch((err: unknown) => deps.logger.warn({ id: d.id, err: String(err) }, "the agent's hold was not released")),
  ]);
  const outcome = r.status === 'success' ? 'success' : (r.error?.code ?? 'INTERNAL_ERROR');
  const totalMs = Math.max(0, r.now - d.acceptedAt);
  if (stored) {
    deps.metrics.requests.inc({ service: d.service, operation: r.operationLabel, outcome });
    deps.metrics.totalSeconds.observe({ service: d.service, outcome }, totalMs / 1000);
    if (d.agentId) deps.metrics.agentRequests.inc({ agent: agentLabel(d.agentId, deps.agents), service: d.service, outcome });
    // The agent's usage goes out with the service's stats, in their batched flush.
    await deps.stats
      .record(d.service, outcome, totalMs, d.agentId ? { agentId: d.agentId, backendMs: r.backendMs } : undefined)
      .catch((err: unknown) => deps.logger.warn({ service: d.service, err: String(err) }, 'request stats not recorded'));
  } else if (letter && keptOk) {
    // The request ended elsewhere meanwhile (cancelled, swept): this failure is not its outcome.
    await deps.deadLetters
      .withdraw(letter)
      .catch((err: unknown) => deps.logger.warn({ id: d.id, service: d.service, err: String(err) }, 'a stale dead letter was not removed'));
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
