/** The per-service limits the scripts apply (structurally the config's rateLimit + circuitBreaker). */
export interface ResiliencePolicy {
  rateLimit: { requestsPerMinute: number; burstLimit: number };
  circuitBreaker: { failureThreshold: number; recoveryTimeout: number; halfOpenMaxCalls: number };
}

export type CircuitState = 'closed' | 'open' | 'half_open';

export type Admission =
  | { verdict: 'admitted'; state: CircuitState; tokens: number }
  | { verdict: 'circuit_open'; waitMs: number; state: CircuitState }
  | { verdict: 'rate_limited'; waitMs: number; state: CircuitState; tokens: number };

/** What a call's outcome means to the breaker. */
export type BreakerOutcome = 'success' | 'failure' | 'neutral';

export interface RecordResult {
  before: CircuitState;
  after: CircuitState;
  failures: number;
}
