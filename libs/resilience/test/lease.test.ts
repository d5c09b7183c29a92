import { subscribe, type RedisClient } from '@mcp-gateway/redis';
import {
  AdmissionLeases,
  breakerMustRecord,
  resilienceEventsChannel,
  ResilienceStore,
  type Admission,
  type ResiliencePolicy,
} from '@mcp-gateway/resilience';
import { testRedis, uniquePrefix } from '@mcp-gateway/testing';

// 1,000 tokens a second, a bucket of 1,000: plenty to lease from.
const busy: ResiliencePolicy = {
  rateLimit: { requestsPerMinute: 60_000, burstLimit: 1000 },
  circuitBreaker: { failureThreshold: 3, recoveryTimeout: 1000, halfOpenMaxCalls: 1 },
};
const t0 = 5_000_000;

let redis: RedisClient;
let prefix: string;
let localMs: number;
let leases: AdmissionLeases;
let store: ResilienceStore;
/** Every command this process's client sends (a counter, not MONITOR: other tests share the server). */
let sent: jest.SpyInstance;

beforeEach(async () => {
  redis = testRedis();
  // Connected (and the scripts loaded) before counting: only admissions' commands are counted.
  await redis.ping();
  await new ResilienceStore(redis, uniquePrefix('warm')).admit('svc', 'w', busy, 5000, t0);
  prefix = uniquePrefix('lease');
  localMs = 0;
  leases = new AdmissionLeases({ maxTokens: 16, lifeMs: 500, clock: () => localMs });
  store = new ResilienceStore(redis, prefix, {}, leases);
  sent = jest.spyOn(redis, 'sendCommand');
});
afterEach(() => redis.disconnect());

/** `n` admissions one after another on the Redis test clock `now`. */
async function admitMany(s: ResilienceStore, n: number, policy = busy, now = t0): Promise<Admission[]> {
  const out: Admission[] = [];
  for (let i = 0; i < n; i++) out.push(await s.admit('svc', `j${i}`, policy, 5000, now));
  return out;
}

describe('admission from a lease', () => {
  it('serves admissions from leased real tokens with no Redis command, and the bucket paid for them', async () => {
    const verdicts = await admitMany(store, 60);
    expect(verdicts.every((a) => a.verdict === 'admitted')).toBe(true);
    // The lease grows with the demand up to maxTokens: most of the 60 took no script call.
    const scriptCalls = sent.mock.calls.length;
    expect(scriptCalls).toBeLessThanOrEqual(8);
    const held = leases.held('svc');
    expect(held).toBeGreaterThan(0);
    // Leased tokens are taken from the bucket: admitted + still held = what the bucket lost.
    expect((await store.limiter('svc', busy, t0)).tokens).toBe(1000 - 60 - held);
    sent.mockClear();
    await admitMany(store, held);
    expect(sent).not.toHaveBeenCalled();
    expect(leases.held('svc')).toBe(0);
  });

  it('a lease expires after its life: the next admission runs the script', async () => {
    await admitMany(store, 10);
    expect(leases.held('svc')).toBeGreaterThan(0);
    localMs += 499;
    sent.mockClear();
    await admitMany(store, 1);
    expect(sent).not.toHaveBeenCalled();
    localMs += 1;
    expect(leases.held('svc')).toBe(0);
    await admitMany(store, 1);
    expect(sent).toHaveBeenCalledTimes(1);
  });

  it('takes at most 1/8 of the tokens left, never into debt, and none from a near-empty bucket', async () => {
    const small: ResiliencePolicy = { ...busy, rateLimit: { requestsPerMinute: 60_000, burstLimit: 40 } };
    const admitted = (await admitMany(store, 60, small)).filter((a) => a.verdict === 'admitted').length;
    // At a fixed Redis time nothing refills: every admission, leased or not, is one of the 40 tokens.
    expect(admitted).toBe(40);
    expect((await store.limiter('svc', small, t0)).tokens).toBe(0);
    expect(leases.held('svc')).toBe(0);
  });

  it('a small bucket (60 rpm, burst 5) is admitted exactly as without leases: every admission is a script call', async () => {
    const tiny: ResiliencePolicy = { ...busy, rateLimit: { requestsPerMinute: 60, burstLimit: 5 } };
    const plain = new ResilienceStore(redis, uniquePrefix('plain'));
    const withLeases = await admitMany(store, 8, tiny);
    const calls = sent.mock.calls.length;
    const without = await admitMany(plain, 8, tiny);
    expect(withLeases).toEqual(without);
    expect(withLeases.map((a) => a.verdict)).toEqual([...Array(5).fill('admitted'), ...Array(3).fill('rate_limited')]);
    expect(calls).toBe(8);
    expect(leases.held('svc')).toBe(0);
  });

  it('a reserved token is checked by the script, not spent from the lease', async () => {
    await admitMany(store, 10);
    expect(leases.held('svc')).toBeGreaterThan(0);
    sent.mockClear();
    const held = leases.held('svc');
    expect(await store.admit('svc', 'r', busy, 5000, { now: t0, reservedAt: t0 + 50 })).toMatchObject({ verdict: 'reserved', waitMs: 50 });
    expect(sent).toHaveBeenCalledTimes(1);
    expect(leases.held('svc')).toBe(held);
  });
});

describe('a lease follows the breaker', () => {
  let sub: RedisClient;
  beforeEach(async () => {
    sub = testRedis('subscriber');
    await subscribe(sub, [resilienceEventsChannel(prefix)], (_channel, message) => leases.heard(message));
  });
  afterEach(() => {
    sub.disconnect();
    theirs?.disconnect();
  });

  /** Another worker process: its own client, no leases. */
  let theirs: RedisClient | undefined;
  const other = () => new ResilienceStore((theirs = testRedis()), prefix);
  const heard = async () => {
    for (let i = 0; i < 100 && leases.held('svc') > 0; i++) await new Promise((r) => setTimeout(r, 10));
  };

  it('is dropped when another process opens the circuit, so no call is admitted from it', async () => {
    await admitMany(store, 10);
    expect(leases.held('svc')).toBeGreaterThan(0);
    const them = other();
    for (let i = 0; i < 3; i++) await them.record('svc', `f${i}`, 'failure', busy, t0);
    await heard();
    expect(leases.held('svc')).toBe(0);
    expect(await store.admit('svc', 'x', busy, 5000, t0 + 10)).toMatchObject({ verdict: 'circuit_open', state: 'open' });
  });

  it('is dropped on one failure elsewhere, so this process learns the count and records its next success', async () => {
    await admitMany(store, 10);
    const them = other();
    await them.record('svc', 'f', 'failure', busy, t0);
    await heard();
    expect(leases.held('svc')).toBe(0);
    const admitted = await store.admit('svc', 'x', busy, 5000, t0);
    expect(admitted).toMatchObject({ verdict: 'admitted', state: 'closed', failures: 1 });
    expect(breakerMustRecord('success', admitted as Extract<Admission, { verdict: 'admitted' }>)).toBe(true);
    // No lease while failures are counted; a recorded success resets them and leasing resumes.
    expect(leases.held('svc')).toBe(0);
    await store.record('svc', 'x', 'success', busy, t0);
    await admitMany(store, 3);
    expect(leases.held('svc')).toBeGreaterThan(0);
  });

  it("is dropped by this process's own failure, before any event comes back", async () => {
    await admitMany(store, 10);
    await store.record('svc', 'j0', 'failure', busy, t0);
    expect(leases.held('svc')).toBe(0);
  });

  it('a lease asked for before a drop is not installed after it', () => {
    const ticket = leases.ask('svc', 1000);
    leases.drop('svc');
    leases.granted('svc', ticket, 5, 'closed', 0);
    expect(leases.held('svc')).toBe(0);
  });
});
