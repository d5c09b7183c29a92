import Redis from 'ioredis';
import { ResilienceStore, type Admission, type CircuitState, type ResiliencePolicy } from '@mcp-gateway/resilience';
import { testRedisUrl, uniquePrefix } from '@mcp-gateway/testing';

/**
 * A plain in-memory model of the rules in SPEC.md ("The shared state..."), written independently of
 * the Lua scripts. Random sequences of admissions, outcomes and time steps must get the same
 * answers from both.
 */
class Model {
  state: CircuitState = 'closed';
  failures = 0;
  openedAt = 0;
  trials = new Map<string, number>(); // job -> permit expiry
  tokens: number;
  ts: number | undefined;

  constructor(private readonly p: ResiliencePolicy) {
    this.tokens = p.rateLimit.burstLimit;
  }

  admit(job: string, now: number, permitTtl: number): Admission['verdict'] {
    const cb = this.p.circuitBreaker;
    if (this.state === 'open') {
      if (now < this.openedAt + cb.recoveryTimeout) return 'circuit_open';
      this.state = 'half_open';
      this.trials.clear();
    }
    if (this.state === 'half_open') {
      for (const [j, exp] of this.trials) if (exp <= now) this.trials.delete(j);
      if (!this.trials.has(job) && this.trials.size >= cb.halfOpenMaxCalls) return 'circuit_open';
    }
    const cap = this.p.rateLimit.burstLimit;
    const perMs = this.p.rateLimit.requestsPerMinute / 60 / 1000;
    if (this.ts === undefined) this.ts = now;
    if (now > this.ts) {
      this.tokens = Math.min(cap, this.tokens + (now - this.ts) * perMs);
      this.ts = now;
    }
    if (this.tokens < 1) return 'rate_limited';
    this.tokens -= 1;
    if (this.state === 'half_open') this.trials.set(job, now + permitTtl);
    return 'admitted';
  }

  record(job: string, outcome: 'success' | 'failure' | 'neutral'): CircuitState {
    const wasTrial = this.trials.delete(job);
    if (outcome === 'success') {
      if (this.state === 'half_open' && wasTrial) {
        this.state = 'closed';
        this.failures = 0;
        this.trials.clear();
      } else if (this.state === 'closed') this.failures = 0;
    } else if (outcome === 'failure') {
      if (this.state === 'half_open' && wasTrial) {
        this.state = 'open';
        this.openedAt = this.now;
        this.trials.clear();
      } else if (this.state === 'closed') {
        this.failures += 1;
        if (this.failures >= this.p.circuitBreaker.failureThreshold) {
          this.state = 'open';
          this.openedAt = this.now;
        }
      }
    }
    return this.state;
  }

  now = 0;
}

/** Small deterministic PRNG so a failing sequence can be replayed from its seed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

let redis: Redis;
beforeAll(() => {
  redis = new Redis(testRedisUrl());
});
afterAll(() => redis.disconnect());

it.each([1, 2, 3, 4, 5, 6, 7, 8])('Lua scripts and the model agree on a random sequence (seed %i)', async (seed) => {
  const random = rng(seed);
  const policy: ResiliencePolicy = {
    rateLimit: { requestsPerMinute: 60 + Math.floor(random() * 1200), burstLimit: 1 + Math.floor(random() * 6) },
    circuitBreaker: { failureThreshold: 1 + Math.floor(random() * 4), recoveryTimeout: 200 + Math.floor(random() * 800), halfOpenMaxCalls: 1 + Math.floor(random() * 3) },
  };
  const store = new ResilienceStore(redis, uniquePrefix('model'));
  const model = new Model(policy);
  let now = 10_000_000;
  const inFlight: string[] = [];
  const trace: string[] = [];
  for (let step = 0; step < 300; step++) {
    const r = random();
    if (r < 0.25) {
      now += Math.floor(random() * 400);
      continue;
    }
    model.now = now;
    if (r < 0.65 || inFlight.length === 0) {
      const job = `j${step}`;
      const permitTtl = 100 + Math.floor(random() * 900);
      const expected = model.admit(job, now, permitTtl);
      const got = await store.admit('svc', job, policy, permitTtl, now);
      trace.push(`${now} admit ${job} -> ${got.verdict}/${expected}`);
      if (got.verdict !== expected) throw new Error(`seed ${seed} diverged:\n${trace.slice(-15).join('\n')}`);
      if (got.verdict === 'admitted') inFlight.push(job);
    } else {
      const job = inFlight.splice(Math.floor(random() * inFlight.length), 1)[0]!;
      const outcome = random() < 0.5 ? 'failure' : random() < 0.8 ? 'success' : 'neutral';
      const expected = model.record(job, outcome);
      const got = await store.record('svc', job, outcome, policy, now);
      trace.push(`${now} record ${job} ${outcome} -> ${got.after}/${expected}`);
      if (got.after !== expected) throw new Error(`seed ${seed} diverged:\n${trace.slice(-15).join('\n')}`);
    }
  }
  expect(trace.length).toBeGreaterThan(150);
});
