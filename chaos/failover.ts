import path from 'node:path';
import {
  API,
  WORKER,
  freePort,
  startBackend,
  startNodeProcess,
  uniquePrefix,
  type RunningProcess,
  type TestBackend,
} from '@mcp-gateway/testing';
import { CHAOS_PROCESS_ENV, report, type Tally } from './harness';

/**
 * The Redis failover scenarios' side of the gateway: API and worker processes on a given Redis
 * topology (cluster or sentinel environment), a backend counting its calls per request id, and a
 * load of callers that behave as the gateway tells them to (503 with the id: send it again with the
 * same id; 202: poll to the end).
 */
export const SERVICE = 'pay';

const ENDED = new Set(['completed', 'failed', 'cancelled']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Gateway {
  prefix: string;
  base: string;
  backend: TestBackend;
  /** How long the backend takes to answer each call. */
  backendDelayMs: number;
  /** Backend calls per request id (the gateway sends the id as Idempotency-Key). */
  calls: Map<string, number>;
  processes: RunningProcess[];
  /** Every warn/error log line of the processes so far (evidence for a failure). */
  problems(): string[];
  stop(): Promise<void>;
}

/** API + `workers` worker processes from dist/, on the Redis that `redisEnv` names. */
export async function startGateway(
  redisEnv: Record<string, string>,
  options: { workers?: number; backendDelayMs?: number; env?: Record<string, string> } = {},
): Promise<Gateway> {
  const calls = new Map<string, number>();
  const backendDelayMs = options.backendDelayMs ?? 300;
  const backend = await startBackend((req) => {
    const id = String(req.headers['idempotency-key'] ?? '');
    calls.set(id, (calls.get(id) ?? 0) + 1);
    return { status: 200, body: { ok: true, method: req.method, id }, delayMs: backendDelayMs };
  });
  const prefix = uniquePrefix('fo');
  const env: Record<string, string> = {
    ...redisEnv,
    MCP_REDIS_KEY_PREFIX: prefix,
    MCP_SERVICES: SERVICE,
    MCP_SERVICE_PAY_ENDPOINT: backend.url,
    MCP_SERVICE_PAY_DEFINITION: path.join(__dirname, 'failover-service.yaml'),
    MCP_SERVICE_PAY_CONCURRENCY: '8',
    // The load is the point, not the limiter.
    MCP_SERVICE_PAY_RATE_LIMIT_RPM: '600000',
    MCP_SERVICE_PAY_BURST_LIMIT: '10000',
    MCP_DEFAULT_TIMEOUT: '10000',
    ...CHAOS_PROCESS_ENV,
    ...options.env,
  };
  const processes: RunningProcess[] = [];
  const roles = new Map<RunningProcess, string>();
  const stop = async () => {
    await Promise.allSettled(processes.map((p) => p.stop('SIGKILL', 1000)));
    await backend.close();
  };
  const port = await freePort();
  try {
    const ready: Promise<unknown>[] = [];
    for (let i = 0; i < (options.workers ?? 2); i++) {
      const w = startNodeProcess(WORKER, env);
      processes.push(w);
      roles.set(w, `worker${i + 1}`);
      ready.push(w.waitForLog((l) => l.msg === 'worker ready', 30_000));
    }
    const api = startNodeProcess(API, { ...env, PORT: String(port) });
    processes.push(api);
    roles.set(api, 'api');
    ready.push(api.waitForLog((l) => l.msg === 'api ready', 30_000));
    await Promise.all(ready);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    prefix,
    base: `http://127.0.0.1:${port}`,
    backend,
    backendDelayMs,
    calls,
    processes,
    problems: () =>
      processes.flatMap((p) =>
        p
          .logLines()
          .filter((l) => Number(l.level) >= 40)
          .map((l) => `${roles.get(p)} ${JSON.stringify(l)}`),
      ),
    stop,
  };
}

export interface Attempt {
  sentAt: number;
  answeredAt: number;
  /** 0: no answer (the connection failed or the client gave up). */
  status: number;
  code?: string;
  /** The flow's first POST (not a resend). */
  first: boolean;
}

/** One caller's request, from its first POST to its end as the gateway reports it. */
export interface Flow {
  id: string;
  op: 'read' | 'charge';
  sync: boolean;
  attempts: Attempt[];
  /** An answer said the gateway holds it: 200/202, or an answer of the request itself. */
  accepted: boolean;
  /** An answer left it open whether the gateway holds it: 503 with error.details.id, another 5xx, no answer. */
  maybe: boolean;
  end?: { state: string; code?: string; outcome?: string };
  /** A poll after acceptance found no such request. */
  notFound?: boolean;
  /** The last refusal, for a flow that never got in. */
  refused?: string;
}

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  retryAfter?: number;
}

/**
 * A steady stream of requests, a quarter each of: read sync, charge async, charge sync, read async.
 * Each flow is followed to its end (or `giveUpAt`): a 503 or no answer is sent again with the same
 * id after its Retry-After (capped), a 202 or a TIMEOUT answer is polled (Prefer: wait=2).
 */
export class Load {
  readonly flows: Flow[] = [];
  /** Every HTTP answer (POST and GET) by status; 0 is no answer. */
  readonly statuses: Record<number, number> = {};
  /** Answers with status 500, as received. */
  readonly fiveHundreds: string[] = [];
  giveUpAt = Infinity;

  constructor(
    private readonly base: string,
    private readonly label: string,
  ) {}

  /** Every flow gives up now (a scenario that failed half-way leaves no callers behind). */
  stop(): void {
    this.giveUpAt = 0;
  }

  /** Sends `count` requests at `perSecond`; `sent` resolves after the last is sent, `done` once every flow has ended. */
  drive(count: number, perSecond: number): { sent: Promise<void>; done: Promise<void> } {
    const running: Promise<void>[] = [];
    const sent = this.send(count, perSecond, running);
    return { sent, done: sent.then(() => Promise.all(running)).then(() => undefined) };
  }

  private async send(count: number, perSecond: number, running: Promise<void>[]): Promise<void> {
    const t0 = Date.now();
    for (let i = 0; i < count; i++) {
      if (Date.now() >= this.giveUpAt) return;
      const due = t0 + (i * 1000) / perSecond - Date.now();
      if (due > 0) await sleep(due);
      const kind = i % 4;
      const flow: Flow = {
        id: `${this.label}-${i}`,
        op: kind === 0 || kind === 3 ? 'read' : 'charge',
        sync: kind === 0 || kind === 2,
        attempts: [],
        accepted: false,
        maybe: false,
      };
      this.flows.push(flow);
      running.push(this.run(flow, i));
    }
  }

  private async http(
    method: 'GET' | 'POST',
    url: string,
    body: unknown,
    headers: Record<string, string>,
    timeoutMs: number,
  ): Promise<Answer> {
    let answer: Answer;
    try {
      const res = await fetch(`${this.base}${url}`, {
        method,
        headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
      const retryAfter = Number(res.headers.get('retry-after'));
      answer = { status: res.status, body: parsed, ...(retryAfter > 0 ? { retryAfter } : {}) };
      if (res.status === 500) this.fiveHundreds.push(`${method} ${url}: ${text.slice(0, 500)}`);
    } catch {
      answer = { status: 0, body: undefined };
    }
    this.statuses[answer.status] = (this.statuses[answer.status] ?? 0) + 1;
    return answer;
  }

  private async run(flow: Flow, i: number): Promise<void> {
    const body = {
      id: flow.id,
      service: SERVICE,
      operation: flow.op,
      parameters: flow.op === 'read' ? { key: flow.id } : { amount: i },
    };
    for (let first = true; Date.now() < this.giveUpAt; first = false) {
      const sentAt = Date.now();
      const res = await this.http('POST', '/mcp/request', body, flow.sync ? {} : { Prefer: 'respond-async' }, 20_000);
      const code: string | undefined = res.body?.error?.code;
      flow.attempts.push({ sentAt, answeredAt: Date.now(), status: res.status, ...(code ? { code } : {}), first });
      if (res.status === 200 && res.body?.status === 'success') {
        flow.accepted = true;
        flow.end = { state: 'completed' };
        return;
      }
      // 202, or the request's own answer (its result, or TIMEOUT waiting for it): follow it to its end.
      if (res.status === 202 || (res.status > 0 && res.body?.id === flow.id)) {
        flow.accepted = true;
        return this.follow(flow);
      }
      if (res.status === 0 || res.status >= 500) {
        // 503 with the id: taken or not, send it again with the same id. Without it: refused before
        // acceptance, and a caller tries again (the same id). Another 5xx or no answer: unknown.
        if (res.status !== 503 || res.body?.error?.details?.id === flow.id) flow.maybe = true;
        flow.refused = code ?? `HTTP ${res.status}`;
        await sleep(Math.min(Math.max((res.retryAfter ?? 1) * 1000, 250), 1000) / 2);
        continue;
      }
      flow.refused = code ?? `HTTP ${res.status}`;
      return;
    }
  }

  private async follow(flow: Flow): Promise<void> {
    while (Date.now() < this.giveUpAt) {
      const res = await this.http('GET', `/mcp/requests/${flow.id}`, undefined, { Prefer: 'wait=2' }, 10_000);
      if (res.status === 200 && ENDED.has(res.body?.state)) {
        const error = res.body.error;
        flow.end = {
          state: res.body.state,
          ...(error?.code ? { code: error.code } : {}),
          ...(error?.details?.outcome ? { outcome: error.details.outcome } : {}),
        };
        return;
      }
      if (res.status === 404) {
        flow.notFound = true;
        return;
      }
      if (res.status !== 200) await sleep(250);
    }
  }
}

export interface FailoverTally extends Tally {
  /** Flows never accepted (refused every time until the end), by their last refusal. */
  refused: Record<string, number>;
  /** Non-idempotent (POST) calls made more than once, summed over ids. */
  duplicates: number;
  /** Idempotent (GET) calls made more than once: allowed, reported. */
  getRepeats: number;
  outcomeUnknown: number;
  /** Backend calls in flight when the fault came (received less than the backend's delay before it). */
  inFlightAtFault: number;
  /** POSTs sent again with the same id (after a 503 or no answer). */
  resends: number;
  status503: number;
  status500: number;
  statuses: Record<number, number>;
  /** Seconds from the fault to the first 200 to a new sync request sent after it. */
  recoverySeconds: number | null;
  /** Seconds from the fault to when the topology had failed over (a replica promoted, every node agreeing). */
  failoverSeconds: number;
  /** Seconds from the fault to when the failed node was back as a replica (restarted or thawed), if it was. */
  rejoinedSeconds: number | null;
  /** Longest time a successful sync request waited for its answer, seconds. */
  slowestSyncSeconds: number;
}

/** The scenario's numbers, reported as the other fault rows are (jsonl + a printed line). */
export function tallyFailover(
  fault: string,
  load: Load,
  gw: Pick<Gateway, 'calls' | 'backend' | 'backendDelayMs'>,
  times: { faultAt: number; failedOverAt: number; rejoinedAt?: number },
): FailoverTally {
  const { calls } = gw;
  const failed: Record<string, number> = {};
  const refused: Record<string, number> = {};
  let completed = 0;
  let lost = 0;
  let outcomeUnknown = 0;
  let accepted = 0;
  for (const f of load.flows) {
    const taken = f.accepted || f.maybe;
    if (taken) accepted += 1;
    if (f.end?.state === 'completed') completed += 1;
    else if (f.end) {
      const code = f.end.code ?? f.end.state;
      failed[code] = (failed[code] ?? 0) + 1;
      if (f.end.outcome === 'unknown') outcomeUnknown += 1;
    } else if (taken) lost += 1;
    else refused[f.refused ?? 'NO_ANSWER'] = (refused[f.refused ?? 'NO_ANSWER'] ?? 0) + 1;
  }
  const repeats = (op: Flow['op']) =>
    load.flows.filter((f) => f.op === op).reduce((n, f) => n + Math.max(0, (calls.get(f.id) ?? 0) - 1), 0);
  const firstOk = load.flows
    .filter((f) => f.sync)
    .flatMap((f) => f.attempts.filter((a) => a.first && a.sentAt > times.faultAt && a.status === 200))
    .reduce((min, a) => Math.min(min, a.answeredAt), Infinity);
  const syncOk = load.flows.filter((f) => f.sync && f.attempts.at(-1)?.status === 200).map((f) => f.attempts.at(-1)!);
  const t: FailoverTally = {
    fault,
    sent: load.flows.length,
    accepted,
    completed,
    failed,
    lost,
    duplicates: repeats('charge'),
    refused,
    getRepeats: repeats('read'),
    outcomeUnknown,
    inFlightAtFault: gw.backend.requests.filter((r) => r.receivedAt <= times.faultAt && r.receivedAt > times.faultAt - gw.backendDelayMs)
      .length,
    resends: load.flows.reduce((n, f) => n + f.attempts.length - 1, 0),
    status503: load.statuses[503] ?? 0,
    status500: load.statuses[500] ?? 0,
    statuses: load.statuses,
    recoverySeconds: firstOk === Infinity ? null : round((firstOk - times.faultAt) / 1000),
    failoverSeconds: round((times.failedOverAt - times.faultAt) / 1000),
    rejoinedSeconds: times.rejoinedAt === undefined ? null : round((times.rejoinedAt - times.faultAt) / 1000),
    slowestSyncSeconds: round(Math.max(0, ...syncOk.map((a) => a.answeredAt - a.sentAt)) / 1000),
  };
  report(t);
  const byCode = (r: Record<string, number>) =>
    Object.entries(r)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || '-';
  console.log(
    `[failover] ${fault}: sent ${t.sent}, accepted ${t.accepted}, completed ${t.completed}, failed ${byCode(t.failed)}, refused ${byCode(t.refused)}, lost ${t.lost}, duplicate non-idempotent calls ${t.duplicates} (GET repeats ${t.getRepeats}), calls in flight at the fault ${t.inFlightAtFault}, outcome unknown ${t.outcomeUnknown}, resent ${t.resends}, 503s ${t.status503}, 500s ${t.status500}, statuses ${JSON.stringify(t.statuses)}, failed over after ${t.failoverSeconds} s, node back after ${t.rejoinedSeconds ?? '-'} s, first 200 after ${t.recoverySeconds} s, slowest sync 200 ${t.slowestSyncSeconds} s`,
  );
  return t;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
