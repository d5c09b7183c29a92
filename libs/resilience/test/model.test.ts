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

  admit(job: string, now: number, permitTtl: number, maxWait?: number, reservedAt?: number): Admission['verdict'] {
    const cb = this.p.circuitBreaker;
    // A reserved token is not spent before its time, whatever the caller's clock said.
    if (reservedAt !== undefined && now < reservedAt) return 'reserved';
    const perMs = this.p.rateLimit.requestsPerMinute / 60 / 1000;
    // ... nor long after it: one refill interval (at least a second) late, it goes through the bucket.
    const holdsToken = reservedAt !== undefined && now <= reservedAt + Math.max(1000, Math.ceil(1 / perMs));
    if (this.state === 'open') {
      if (now < this.openedAt + cb.recoveryTimeout) return 'circuit_open';
      this.state = 'half_open';
      this.trials.clear();
    }
    if (this.state === 'half_open') {
      for (const [j, exp] of this.trials) if (exp <= now) this.trials.delete(j);
      if (!this.trials.has(job) && this.trials.size >= cb.halfOpenMaxCalls) return 'circuit_open';
    }
    if (holdsToken) {
      if (this.state === 'half_open') this.trials.set(job, now + permitTtl);
      return 'admitted';
    }
    const cap = this.p.rateLimit.burstLimit;
    if (this.ts === undefined) this.ts = now;
    if (now > this.ts) {
      this.tokens = Math.min(cap, this.tokens + (now - this.ts) * perMs);
      this.ts = now;
    }
    if (this.tokens < 1) {
      // A caller that can wait long enough takes a future token now (the bucket goes into debt).
      const wait = Math.ceil((1 - this.tokens) / perMs);
      if (maxWait !== undefined && wait <= maxWait) {
        this.tokens -= 1;
        return 'reserved';
      }
      return 'rate_limited';
    }
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
const seen = new Set<string>();
beforeAll(() => {
  redis = new Redis(testRedisUrl());
});
afterAll(() => redis.disconnect());

it.each([1, 2, 3, 4, 5, 6, 7, 8])('Lua scripts and the model agree on a random sequence (seed %i)', async (seed) => {
  const random = rng(seed);
  const policy: ResiliencePolicy = {
    rateLimit: { requestsPerMinute: 60 + Math.floor(random() * 1200), burstLimit: 1 + Math.floor(random() * 6) },
    circuitBreaker: {
      failureThreshold: 1 + Math.floor(random() * 4),
      recoveryTimeout: 200 + Math.floor(random() * 800),
      halfOpenMaxCalls: 1 + Math.floor(random() * 3),
    },
  };
  const store = new ResilienceStore(redis, uniquePrefix('model'));
  const model = new Model(policy);
  let now = 10_000_000;
  const inFlight: string[] = [];
  const reserved: { job: string; at: number }[] = [];
  const trace: string[] = [];
  const start = now;
  let tokensTaken = 0;
  const check = (what: string, got: string, expected: string) => {
    trace.push(`${now} ${what} -> ${got}/${expected}`);
    if (got !== expected) throw new Error(`seed ${seed} diverged:\n${trace.slice(-15).join('\n')}`);
  };
  for (let step = 0; step < 400; step++) {
    const r = random();
    if (r < 0.25) {
      now += Math.floor(random() * 400);
      continue;
    }
    model.now = now;
    // A job with a reservation comes back, sometimes early (a worker clock running ahead).
    const due = reserved.findIndex((x) => x.at <= now + 300);
    if (r < 0.4 && due >= 0) {
      const { job, at } = reserved[due]!;
      const permitTtl = 100 + Math.floor(random() * 900);
      const expected = model.admit(job, now, permitTtl, undefined, at);
      const got = await store.admit('svc', job, policy, permitTtl, { now, reservedAt: at });
      check(`admit ${job} (holds token)`, got.verdict, expected);
      if (got.verdict === 'admitted') {
        reserved.splice(due, 1);
        inFlight.push(job);
      }
    } else if (r < 0.7 || inFlight.length === 0) {
      const job = `j${step}`;
      const permitTtl = 100 + Math.floor(random() * 900);
      const maxWait = random() < 0.5 ? undefined : Math.floor(random() * 1500);
      const expected = model.admit(job, now, permitTtl, maxWait);
      const got = await store.admit('svc', job, policy, permitTtl, { now, ...(maxWait === undefined ? {} : { maxWaitMs: maxWait }) });
      check(`admit ${job} maxWait ${maxWait}`, got.verdict, expected);
      if (got.verdict === 'admitted') inFlight.push(job);
      if (got.verdict === 'reserved') {
        expect(got.waitMs).toBeLessThanOrEqual(maxWait!);
        expect(got.slotAt).toBe(now + got.waitMs);
        reserved.push({ job, at: got.slotAt });
      }
      if (got.verdict === 'admitted' || got.verdict === 'reserved') tokensTaken += 1;
      // Tokens taken (now or reserved) never exceed burst + rate × elapsed, reservations included.
      const rate = policy.rateLimit.requestsPerMinute / 60_000;
      expect(tokensTaken).toBeLessThanOrEqual(policy.rateLimit.burstLimit + Math.max(0, now - start + 1500) * rate + 1);
    } else {
      const job = inFlight.splice(Math.floor(random() * inFlight.length), 1)[0]!;
      const outcome = random() < 0.5 ? 'failure' : random() < 0.8 ? 'success' : 'neutral';
      const expected = model.record(job, outcome);
      const got = await store.record('svc', job, outcome, policy, now);
      check(`record ${job} ${outcome}`, got.after, expected);
    }
  }
  expect(trace.length).toBeGreaterThan(150);
  for (const t of trace) seen.add(t.replace(/^\d+ \S+ j\d+/, '').replace(/maxWait \S+ /, ''));
});

it('the sequences together exercised every kind of answer, reservations and their use included', () => {
  const kinds = [...seen].join('\n');
  for (const v of [
    '-> admitted',
    '-> rate_limited',
    '-> reserved',
    '(holds token) -> admitted',
    '(holds token) -> reserved',
    '(holds token) -> circuit_open',
    '-> circuit_open',
    'failure -> open',
    'success -> closed',
  ]) {
    expect([v, kinds.includes(v)]).toEqual([v, true]);
  }
});
