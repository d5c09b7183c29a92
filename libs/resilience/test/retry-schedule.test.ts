import { nextRetryDelay, retryDelay, type RetrySchedulePolicy } from '@mcp-gateway/resilience';

const exp: RetrySchedulePolicy = { maxAttempts: 5, backoffStrategy: 'exponential', initialDelay: 100, maxDelay: 1000, jitter: false };

describe('retryDelay', () => {
  it('doubles from initialDelay and stops at maxDelay (exponential)', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelay(exp, n))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('grows by initialDelay each retry (linear), capped', () => {
    const lin = { ...exp, backoffStrategy: 'linear' as const, initialDelay: 300 };
    expect([1, 2, 3, 4].map((n) => retryDelay(lin, n))).toEqual([300, 600, 900, 1000]);
  });

  it('with full jitter draws uniformly between 0 and the computed delay', () => {
    const jit = { ...exp, jitter: true };
    expect(retryDelay(jit, 3, () => 0)).toBe(0);
    expect(retryDelay(jit, 3, () => 0.5)).toBe(200);
    expect(retryDelay(jit, 3, () => 0.999999)).toBe(399);
  });
});

describe('nextRetryDelay', () => {
  const base = { policy: exp, now: 10_000, deadline: 20_000 };

  it('gives the schedule while attempts are left', () => {
    expect(nextRetryDelay({ ...base, attemptsMade: 1 })).toBe(100);
    expect(nextRetryDelay({ ...base, attemptsMade: 4 })).toBe(800);
  });

  it('stops when maxAttempts are used', () => {
    expect(nextRetryDelay({ ...base, attemptsMade: 5 })).toBeUndefined();
  });

  it('honours a longer Retry-After but not a shorter one', () => {
    expect(nextRetryDelay({ ...base, attemptsMade: 1, retryAfterMs: 1500 })).toBe(1500);
    expect(nextRetryDelay({ ...base, attemptsMade: 3, retryAfterMs: 10 })).toBe(400);
  });

  it('never schedules past the deadline', () => {
    expect(nextRetryDelay({ ...base, attemptsMade: 4, deadline: 10_800 })).toBeUndefined();
    expect(nextRetryDelay({ ...base, attemptsMade: 4, deadline: 10_801 })).toBe(800);
    expect(nextRetryDelay({ ...base, attemptsMade: 1, retryAfterMs: 60_000 })).toBeUndefined();
  });
});
