/** The retry policy fields the schedule needs (structurally the config's RetryPolicy). */
export interface RetrySchedulePolicy {
  maxAttempts: number;
  backoffStrategy: 'linear' | 'exponential';
  initialDelay: number;
  maxDelay: number;
  jitter: boolean;
}

/**
 * Delay before retry number `retry` (1 = the first retry, after the first attempt failed):
 * exponential `initialDelay·2^(retry-1)` or linear `initialDelay·retry`, capped at `maxDelay`;
 * with jitter, "full jitter": uniform in [0, delay]. `random` is injectable for tests.
 */
export function retryDelay(policy: RetrySchedulePolicy, retry: number, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(retry));
  const base = policy.backoffStrategy === 'exponential' ? policy.initialDelay * 2 ** (n - 1) : policy.initialDelay * n;
  const capped = Math.min(base, policy.maxDelay);
  return policy.jitter ? Math.floor(random() * capped) : capped;
}

export interface RetryDecisionInput {
  policy: RetrySchedulePolicy;
  /** Attempts made so far, the failed one included. */
  attemptsMade: number;
  /** The backend asked for at least this long (Retry-After). */
  retryAfterMs?: number;
  now: number;
  deadline: number;
  random?: () => number;
}

/**
 * When to try again, or undefined when no attempt is left or the next one could not start
 * before the deadline. Retry-After wins over a shorter computed delay.
 */
export function nextRetryDelay(input: RetryDecisionInput): number | undefined {
  if (input.attemptsMade >= input.policy.maxAttempts) return undefined;
  const computed = retryDelay(input.policy, input.attemptsMade, input.random);
  const delay = Math.max(computed, input.retryAfterMs ?? 0);
  return input.now + delay < input.deadline ? delay : undefined;
}
