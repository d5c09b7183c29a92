/** The per-service limits the scripts apply (structurally the config's rateLimit + circuitBreaker). */
export interface ResiliencePolicy {
  rateLimit: { requestsPerMinute: number; burstLimit: number };
  circuitBreaker: { failureThreshold: number; recoveryTimeout: number; halfOpenMaxCalls: number };
}

export type CircuitState = 'closed' | 'open' | 'half_open';

export type Admission =
  /**
   * `tokens` left in the bucket (absent when the caller used a reserved token); `failures`: the
   * consecutive failures the breaker counted when the call was admitted.
   */
  | { verdict: 'admitted'; state: CircuitState; failures: number; tokens?: number }
  | { verdict: 'circuit_open'; waitMs: number; state: CircuitState }
  /** No token within the caller's wait: nothing was taken; the next token is waitMs away. */
  | { verdict: 'rate_limited'; waitMs: number; state: CircuitState; tokens: number }
  /** A future token is the caller's, due at slotAt (Redis clock): call again in waitMs with `reservedAt: slotAt`. */
  | { verdict: 'reserved'; waitMs: number; state: CircuitState; slotAt: number; tokens?: number };

export interface AdmitOptions {
  /** Longest the caller can wait for a token (ms, e.g. the time to its deadline); omit to never reserve. */
  maxWaitMs?: number;
  /** The slot of a token the caller reserved earlier: from then on only the breaker is checked. */
  reservedAt?: number;
  /** Test clock (ms); default Redis TIME. */
  now?: number;
}

/** What a call's outcome means to the breaker. */
export type BreakerOutcome = 'success' | 'failure' | 'neutral';

/**
 * Whether the breaker must hear of this outcome. On a circuit that was closed when the call was
 * admitted, a neutral outcome changes nothing (it only frees trial permits, which a closed circuit
 * has none of), nor does a success when no failures were counted: neither is written. A failure
 * recorded by another call meanwhile is then not reset by such a success: only successes admitted
 * after that failure reset the count.
 */
export function breakerMustRecord(outcome: BreakerOutcome, admitted: Extract<Admission, { verdict: 'admitted' }>): boolean {
  if (admitted.state !== 'closed' || outcome === 'failure') return true;
  return outcome === 'success' && admitted.failures > 0;
}

/** The API's fast-fail read of a service. */
export interface PeekResult {
  /** > 0 while the circuit is open: how long until it lets a trial through. */
  openWaitMs: number;
  /** > 0 when a new job would wait for a token: the jobs already queued take theirs first. */
  tokenWaitMs: number;
  /** Jobs waiting in the service queue. */
  queueDepth: number;
  /** Whole tokens left once the queued jobs and a new one have theirs (0 when none are). */
  spareTokens: number;
}

export interface RecordResult {
  before: CircuitState;
  after: CircuitState;
  failures: number;
}

/** What the fast-fail read found: the breaker's and the bucket's fields, the queue's depth, the time. */
export interface PeekReading {
  /** Redis time (ms). */
  now: number;
  breaker: { state: string | null; openedAt: string | null };
  bucket: { tokens: string | null; ts: string | null };
  queueDepth: number;
}

/**
 * The fast-fail answer from a reading: how long an open circuit stays open, and how long until a
 * token is due for a new job (the jobs already waiting take theirs first).
 */
export function peekOf(r: PeekReading, policy: ResiliencePolicy): PeekResult {
  const refillPerMs = policy.rateLimit.requestsPerMinute / 60 / 1000;
  const openWaitMs =
    r.breaker.state === 'open' ? Math.max(0, Number(r.breaker.openedAt ?? 0) + policy.circuitBreaker.recoveryTimeout - r.now) : 0;
  let tokens = policy.rateLimit.burstLimit;
  if (r.bucket.tokens !== null && r.bucket.ts !== null)
    tokens = Math.min(tokens, Number(r.bucket.tokens) + Math.max(0, r.now - Number(r.bucket.ts)) * refillPerMs);
  const needed = r.queueDepth + 1;
  const tokenWaitMs = tokens < needed ? Math.ceil((needed - tokens) / refillPerMs) : 0;
  return { openWaitMs, tokenWaitMs, queueDepth: r.queueDepth, spareTokens: Math.max(0, Math.floor(tokens - needed)) };
}
