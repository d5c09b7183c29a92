import { hash } from 'node:crypto';
import type { JobsOptions } from 'bullmq';
import type { Priority } from '@mcp-gateway/protocol';
import type { Lane } from './keys';

/** What the API puts in a job: everything a worker needs, nothing secret. */
export interface GatewayJobData {
  id: string;
  service: string;
  operation: string;
  parameters: Record<string, unknown>;
  correlationId: string;
  traceparent: string;
  agentId?: string;
  /** The body's hash (the broker sets it): the worker's finish keeps it in the ended record, for later claims of the id. */
  hash?: string;
  /** Epoch ms when the API accepted the request. */
  acceptedAt: number;
  /** Epoch ms after which the backend must not be called. */
  deadline: number;
  priority: Priority;
  /** The agent's fair-share tier in the service when it was queued (see jobOptions). */
  tier?: number;
  /** Keys of the sorted sets that hold the request against its agent's quotas: it leaves them when it ends. */
  holds?: string[];
  /** A dead letter's replay: the id of the request it sends again. */
  replayOf?: string;
  /** Added again by a submission that joined a request whose job was gone (see Broker.join): its run reads the record first. */
  rejoined?: boolean;
  /**
   * A sync request, not put in the sweep's index at its claim: its API process indexes it if it is
   * still pending when it is due (see LateIndex); a finish leaves the index alone until shortly
   * before that (see mayBeIndexed).
   */
  indexLater?: boolean;
  /** Set by a run that handed the job back (to wait for admission or a retry): when the first run started. */
  startedAt?: number;
  /** Set by a worker when the job reserved a rate-limit token for this attempt (attemptsMade)... */
  reservedAttempt?: number;
  /** ...due at this time (ms, Redis clock). */
  reservedAt?: number;
}

/**
 * A priority's class within a fair-share tier: lower numbers first. BullMQ runs a lane's jobs with no
 * priority before its prioritized ones.
 */
export const PRIORITY_RANK: Record<Priority, 1 | 2 | 3> = { critical: 1, high: 1, normal: 2, low: 3 };

/** BullMQ's highest priority number. */
const MAX_PRIORITY = 2_097_152;

/** The highest tier whose priorities (tier × 3 + 1…3) BullMQ takes: later tiers share it. */
const MAX_TIER = Math.floor((MAX_PRIORITY - 3) / 3);

/**
 * Fair queues: a job's tier is how many of its agent's requests it comes after in the service (the
 * ones held in its priority class or a higher one) ÷ the agent's weight. The agents' first requests
 * go before their second ones, and so on: round-robin across agents. Within a tier, priority classes
 * keep their order. `critical` and `high` in their agent's first tier go to the urgent lane, ahead of
 * all normal work; after that they are `high`'s class in the normal lane (an agent cannot jump its
 * flood ahead of the others by calling it critical).
 */
export function laneOf(data: Pick<GatewayJobData, 'priority' | 'tier'>): Lane {
  return (data.tier ?? 0) === 0 && PRIORITY_RANK[data.priority] === 1 ? 'urgent' : 'normal';
}

/**
 * A job's place in its lane. Urgent: `critical` unprioritized, then `high`. Normal: a `normal` job in
 * the first tier unprioritized (a standard job: three Redis commands fewer than a prioritized one),
 * then every other job by tier and class.
 */
function placement(data: GatewayJobData): { priority: number } | undefined {
  const tier = Math.min(MAX_TIER, data.tier ?? 0);
  if (tier === 0 && (data.priority === 'critical' || data.priority === 'normal')) return undefined;
  return { priority: tier * 3 + PRIORITY_RANK[data.priority] };
}

export interface JobRetryOptions {
  maxAttempts: number;
}

export function jobOptions(data: GatewayJobData, retry: JobRetryOptions): JobsOptions {
  return {
    jobId: data.id,
    attempts: Math.max(1, retry.maxAttempts),
    // Our schedule (capped, jittered, Retry-After aware) lives in the worker's backoffStrategy.
    backoff: { type: 'gateway' },
    // The result lives in our own record; the BullMQ job is only the unit of work.
    removeOnComplete: true,
    removeOnFail: true,
    ...placement(data),
  };
}

/**
 * What makes two submissions "the same request" for the idempotency check. The agent is part of it,
 * so one agent can never join (and read) another agent's job by guessing its id.
 */
export function requestHash(service: string, operation: string, parameters: Record<string, unknown>, agentId = ''): string {
  // One-shot hash: no Hash object per request (a measurable part of the API's CPU per request).
  return hash('sha256', stableStringify({ service, operation, parameters, agentId }), 'base64url');
}

function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as Record<string, unknown>)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
