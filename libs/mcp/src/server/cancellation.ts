import type { RedisClient } from '@mcp-gateway/redis';
import type { Broker } from '@mcp-gateway/broker';

/** How long a call's entries are kept: longer than a call waits for its job. */
const ENTRY_TTL_S = 3600;
/** The entry of a request id a session used twice: it names no job. */
const AMBIGUOUS = '(ambiguous)';

/** The 2025 session a call came in, and its JSON-RPC id there. */
export interface SessionCall {
  session: string;
  requestId: string | number;
}

/**
 * Which MCP call may cancel which queue job. A cancellation reaches the sender's own call, or nothing:
 * - a 2025 session's `notifications/cancelled` names a request id that is unique within the session:
 *   the session's call → job map, in Redis so that any replica takes the notification, finds the job;
 * - without a session (2026-07-28, or a 2025 client that never initialized) request ids are unique
 *   only per client, and nothing on the wire says which client sent a notification: it cancels
 *   nothing. A 2026-07-28 client cancels by closing its request's response stream, the spec's signal
 *   on Streamable HTTP, which names the call beyond doubt (see `cancelOnClose`);
 * - only the call that created a job cancels it, and only while no other call has joined it (a
 *   re-issued call, the same read-only call from another client): a shared job is left to run. So
 *   does tasks/cancel, whose task id is the job's and therefore the same for every call that joined.
 *   A join is marked one round trip after its claim: a cancellation that comes in between still
 *   ends the job (the joined call then ends CANCELLED, as if it had joined a cancelled job).
 */
export function callCancellation(redis: RedisClient, prefix: string, broker: Broker) {
  const callKey = (c: SessionCall) => `${prefix}:call:${c.session}:${String(c.requestId)}`;
  const joinedKey = (jobId: string) => `${prefix}:joined:${jobId}`;

  /** Whether another call joined the job. Unknown (Redis away) counts as joined: not cancelling is the safe side. */
  async function shared(jobId: string): Promise<boolean> {
    return (await redis.exists(joinedKey(jobId)).catch(() => 1)) > 0;
  }

  /** Cancels a job no other call has joined (a running one's backend call is abandoned by its worker). */
  async function cancelOwn(jobId: string): Promise<void> {
    if (!(await shared(jobId))) await broker.cancel(jobId).catch(() => undefined);
  }

  return {
    shared,
    cancelOwn,

    /** A call's job is in the queue: `created` by this call, or joined. `call`: where a 2025 session will name it. */
    async accepted(jobId: string, created: boolean, call: SessionCall | undefined): Promise<void> {
      try {
        if (!created) {
          await redis.set(joinedKey(jobId), '1', 'EX', ENTRY_TTL_S);
        } else if (call) {
          const key = callKey(call);
          const set = await redis.set(key, jobId, 'EX', ENTRY_TTL_S, 'NX');
          if (set !== 'OK' && (await redis.get(key)) !== jobId) await redis.set(key, AMBIGUOUS, 'EX', ENTRY_TTL_S);
        }
      } catch {
        // Without the entry the call cannot be cancelled by notification; it still runs and ends.
      }
    },

    /** A 2025 session's `notifications/cancelled`. */
    async notified(call: SessionCall): Promise<void> {
      const jobId = await redis.get(callKey(call)).catch(() => null);
      if (jobId && jobId !== AMBIGUOUS) await cancelOwn(jobId);
    },

    /**
     * Until the returned function is called, the end of `signal` (the call's request closed by its
     * client) cancels the job the call created. `ours`: the close is this process's (it is stopping),
     * not the client's.
     */
    cancelOnClose(jobId: string, signal: AbortSignal, ours: () => boolean): () => void {
      const onClose = () => {
        if (!ours()) void cancelOwn(jobId);
      };
      if (signal.aborted) {
        onClose();
        return () => undefined;
      }
      signal.addEventListener('abort', onClose, { once: true });
      return () => signal.removeEventListener('abort', onClose);
    },
  };
}

export type CallCancellation = ReturnType<typeof callCancellation>;
