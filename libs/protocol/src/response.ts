import type { ErrorBody } from './errors';

export const REQUEST_STATES = ['queued', 'active', 'retrying', 'completed', 'failed', 'cancelled'] as const;
export type RequestState = (typeof REQUEST_STATES)[number];
export const ENDED_STATES: readonly RequestState[] = ['completed', 'failed', 'cancelled'];

export function isEnded(state: RequestState): boolean {
  return ENDED_STATES.includes(state);
}

export interface ResultMetadata {
  correlationId: string;
  service: string;
  operation: string;
  /** Backend calls made for this request (0 when it never reached the backend). */
  attempts: number;
  /** Time between acceptance and the first time a worker took the job. */
  queuedMs: number;
  /** Time the worker spent on the job, retries and their waits included. */
  processingTime: number;
  backendStatus?: number;
  completedAt: string;
  /** A dead letter's replay: the id of the request it sent again. */
  replayOf?: string;
}

export interface MCPResponse {
  id: string;
  status: 'success' | 'error';
  data?: unknown;
  error?: ErrorBody;
  metadata: ResultMetadata;
}

/** What `GET /mcp/requests/:id` answers. */
export type RequestStatus = { id: string; state: RequestState } & Partial<MCPResponse>;
