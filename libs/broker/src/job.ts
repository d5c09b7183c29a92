import { hash } from 'node:crypto';
import type { JobsOptions } from 'bullmq';
import type { Priority } from '@mcp-gateway/protocol';

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
  /** Added again by a submission that joined a request whose job was gone (see Broker.join): its run reads the record first. */
  rejoined?: boolean;
  /** Set by a run that handed the job back (to wait for admission or a retry): when the first run started. */
  startedAt?: number;
  /** Set by a worker when the job reserved a rate-limit token for this attempt (attemptsMade)... */
  reservedAttempt?: number;
  /** ...due at this time (ms, Redis clock). */
  reservedAt?: number;
}

/**
 * BullMQ runs jobs with no priority before prioritized ones, and lower numbers first: so `critical`
 * goes unprioritized and the rest follow in order. (A standard `normal` job would send three Redis
 * commands fewer, but measured slower: docs/research/bench-costs.md.)
 */
const PLACEMENT: Record<Priority, { priority: number } | undefined> = {
  critical: undefined,
  high: { priority: 1 },
  normal: { priority: 2 },
  low: { priority: 3 },
};

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
    ...PLACEMENT[data.priority],
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
