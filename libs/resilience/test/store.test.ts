import { subscribe, type RedisClient } from '@mcp-gateway/redis';
import { resilienceEventsChannel, resilienceKeys, ResilienceStore, type ResiliencePolicy } from '@mcp-gateway/resilience';
import { testRedis, uniquePrefix } from '@mcp-gateway/testing';

const policy: ResiliencePolicy = {
  rateLimit: { requestsPerMinute: 600, burstLimit: 5 }, // 10 tokens/s
  circuitBreaker: { failureThreshold: 3, recoveryTimeout: 1000, halfOpenMaxCalls: 2 },
};

let redis: RedisClient;
let store: ResilienceStore;
const changes: string[] = [];

beforeEach(() => {
  redis = testRedis();
  changes.length = 0;
  store = new ResilienceStore(redis, uniquePrefix('res'), { onStateChange: (s, from, to) => changes.push(`${s}:${from}->${to}`) });
});
afterEach(() => redis.disconnect());

describe('token bucket', () => {
  it('lets burstLimit through at once, then one per refill interval', async () => {
    const t0 = 1_000_000;
    const verdicts = [];
    for (let i = 0; i < 6; i++) verdicts.push((await store.admit('svc', `j${i}`, policy, 5000, t0)).verdict);
    expect(verdicts).toEqual(['admitted', 'admitted', 'admitted', 'admitted', 'admitted', 'rate_limited']);
    const limited = await store.admit('svc', 'j6', policy, 5000, t0);
    expect(limited).toMatchObject({ verdict: 'rate_limited', waitMs: 100 });
    expect((await store.admit('svc', 'j6', policy, 5000, t0 + 99)).verdict).toBe('rate_limited');
    expect((await store.admit('svc', 'j6', policy, 5000, t0 + 100)).verdict).toBe('admitted');
    // Refill never exceeds capacity.
    const later = await store.limiter('svc', policy, t0 + 60_000);
    expect(later).toEqual({ tokens: 5, capacity: 5, refillPerSecond: 10 });
  });

  it('reserves a future token for a caller that can wait, each for its own slot, and never more', async () => {
    const t0 = 3_000_000;
    for (let i = 0; i < 5; i++) await store.admit('svc', `n${i}`, policy, 5000, t0);
    expect(await store.admit('svc', 'r1', policy, 5000, { now: t0, maxWaitMs: 1000 })).toMatchObject({ verdict: 'reserved', waitMs: 100 });
    expect(await store.admit('svc', 'r2', policy, 5000, { now: t0, maxWaitMs: 1000 })).toMatchObject({ verdict: 'reserved', waitMs: 200 });
    // Too short a wait: refused, and nothing is taken (the next slot is still 300 ms away).
    expect(await store.admit('svc', 'r3', policy, 5000, { now: t0, maxWaitMs: 250 })).toMatchObject({
      verdict: 'rate_limited',
      waitMs: 300,
    });
    expect(await store.admit('svc', 'r3', policy, 5000, { now: t0, maxWaitMs: 300 })).toMatchObject({ verdict: 'reserved', waitMs: 300 });
    // A holder of a reserved token is let through by the bucket even while it is in debt, but not before its slot.
    expect(await store.admit('svc', 'r1', policy, 5000, { now: t0 + 40, reservedAt: t0 + 100 })).toMatchObject({
      verdict: 'reserved',
      waitMs: 60,
      slotAt: t0 + 100,
    });
    expect((await store.admit('svc', 'r1', policy, 5000, { now: t0 + 100, reservedAt: t0 + 100 })).verdict).toBe('admitted');
    // The debt is paid back by the refill before anyone else gets a token.
    expect(await store.admit('svc', 'late', policy, 5000, { now: t0 + 100 })).toMatchObject({ verdict: 'rate_limited', waitMs: 300 });
    expect((await store.admit('svc', 'late', policy, 5000, { now: t0 + 400 })).verdict).toBe('admitted');
  });

  it('a reserved token is good around its slot, not long after: holders back late cannot add to a full bucket', async () => {
    const t0 = 4_000_000;
    for (let i = 0; i < 5; i++) expect((await store.admit('svc', `n${i}`, policy, 5000, t0)).verdict).toBe('admitted');
    const slots: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await store.admit('svc', `r${i}`, policy, 5000, { now: t0, maxWaitMs: 2000 });
      expect(r.verdict).toBe('reserved');
      slots.push((r as { slotAt: number }).slotAt);
    }
    expect(slots).toEqual(Array.from({ length: 10 }, (_, i) => t0 + 100 * (i + 1)));
    // Back within a second of its slot: let through without a token (the bucket is not consulted).
    expect(await store.admit('svc', 'r9', policy, 5000, { now: slots[9]! + 900, reservedAt: slots[9]! })).toEqual({
      verdict: 'admitted',
      state: 'closed',
      failures: 0,
    });
    // Three seconds late, the other nine meet a bucket the refill has filled again: with five fresh
    // callers at the same instant, no more than burstLimit (5) calls go out, not 14.
    const at = t0 + 4000;
    const verdicts = [];
    for (let i = 0; i < 9; i++)
      verdicts.push((await store.admit('svc', `r${i}`, policy, 5000, { now: at, reservedAt: slots[i]!, maxWaitMs: 0 })).verdict);
    for (let i = 0; i < 5; i++) verdicts.push((await store.admit('svc', `f${i}`, policy, 5000, { now: at, maxWaitMs: 0 })).verdict);
    expect(verdicts.filter((v) => v === 'admitted')).toHaveLength(5);
  });

  it('uses Redis TIME when no clock is given', async () => {
    const serverNow = await store.now();
    expect(Math.abs(serverNow - Date.now())).toBeLessThan(5000);
    expect((await store.admit('svc', 'a', policy, 5000)).verdict).toBe('admitted');
  });
});

describe('circuit breaker', () => {
  const t0 = 5_000_000;

  it('opens after failureThreshold consecutive failures; a success resets the count', async () => {
    await store.record('svc', 'x', 'failure', policy, t0);
    await store.record('svc', 'x', 'failure', policy, t0);
    await store.record('svc', 'x', 'success', policy, t0);
    await store.record('svc', 'x', 'failure', policy, t0);
    await store.record('svc', 'x', 'failure', policy, t0);
    expect(await store.breaker('svc', policy)).toEqual({ state: 'closed', failures: 2, openedAt: null, nextAttemptAt: null });
    const r = await store.record('svc', 'x', 'failure', policy, t0 + 1);
    expect(r).toEqual({ before: 'closed', after: 'open', failures: 3 });
    expect(changes).toEqual(['svc:closed->open']);
    const snap = await store.breaker('svc', policy);
    expect(snap).toMatchObject({ state: 'open', openedAt: t0 + 1, nextAttemptAt: t0 + 1001 });
  });

  it('refuses while open, then lets at most halfOpenMaxCalls trials through, and a trial success closes it', async () => {
    for (let i = 0; i < 3; i++) await store.record('svc', 'x', 'failure', policy, t0);
    expect(await store.admit('svc', 'a', policy, 5000, t0 + 500)).toEqual({ verdict: 'circuit_open', waitMs: 500, state: 'open' });
    expect((await store.admit('svc', 'a', policy, 5000, t0 + 1000)).verdict).toBe('admitted');
    expect((await store.admit('svc', 'b', policy, 5000, t0 + 1000)).verdict).toBe('admitted');
    const third = await store.admit('svc', 'c', policy, 5000, t0 + 1000);
    expect(third).toMatchObject({ verdict: 'circuit_open', state: 'half_open' });
    const r = await store.record('svc', 'a', 'success', policy, t0 + 1100);
    expect(r.after).toBe('closed');
    expect((await store.admit('svc', 'c', policy, 5000, t0 + 1100)).verdict).toBe('admitted');
    expect(changes).toEqual(['svc:closed->open', 'svc:open->half_open', 'svc:half_open->closed']);
  });

  it('publishes every transition on the events channel for other processes', async () => {
    const prefix = uniquePrefix('ev');
    const sub = testRedis('subscriber');
    const events: unknown[] = [];
    await subscribe(sub, [resilienceEventsChannel(prefix)], (_c, m) => events.push(JSON.parse(m)));
    const s = new ResilienceStore(redis, prefix);
    for (let i = 0; i < 3; i++) await s.record('svc', 'x', 'failure', policy, t0);
    await s.admit('svc', 'a', policy, 5000, t0 + 1000);
    await s.record('svc', 'a', 'failure', policy, t0 + 1001);
    await new Promise((r) => setTimeout(r, 100));
    sub.disconnect();
    // Failures counted on a closed circuit are news too: other processes drop their leases.
    const heard = events.map((e) => {
      const { type, service, from, to, failures } = e as Record<string, string>;
      return type === 'failures' ? `${type} ${service} ${failures}` : `${type} ${service} ${from}->${to}`;
    });
    const sent = [
      'failures svc 1',
      'failures svc 2',
      'circuit svc closed->open',
      'circuit svc open->half_open',
      'circuit svc half_open->open',
    ];
    // On one Redis in the order sent. On a cluster the first messages through a client's new
    // connection to a node can arrive after later ones (ioredis), so only what was heard is asserted.
    if (process.env.TEST_REDIS_CLUSTER_NODES) expect([...heard].sort()).toEqual([...sent].sort());
    else expect(heard).toEqual(sent);
  });

  it('keeps an open or half-open state until a trial closes it (no expiry); closed, the hash expires when idle', async () => {
    const prefix = uniquePrefix('keep');
    const s = new ResilienceStore(redis, prefix);
    const key = resilienceKeys(prefix, 'svc').breaker;
    // A success on a closed breaker with nothing counted writes nothing: there is no hash to keep.
    await s.record('svc', 'ok', 'success', policy, t0);
    expect(await redis.exists(key)).toBe(0);
    await s.record('svc', 'x', 'failure', policy, t0);
    expect(await redis.pttl(key)).toBeGreaterThan(0);
    await s.record('svc', 'ok', 'success', policy, t0);
    expect(await redis.hget(key, 'failures')).toBe('0');
    expect(await redis.pttl(key)).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) await s.record('svc', 'x', 'failure', policy, t0);
    // Forgotten, an open breaker would read as closed and let every call through.
    expect(await redis.pttl(key)).toBe(-1);
    expect((await s.admit('svc', 'trial', policy, 5000, t0 + 1000)).state).toBe('half_open');
    expect(await redis.pttl(key)).toBe(-1);
    expect((await s.record('svc', 'trial', 'success', policy, t0 + 1100)).after).toBe('closed');
    expect(await redis.pttl(key)).toBeGreaterThan(0);
  });

  it('a failed trial opens it again', async () => {
    for (let i = 0; i < 3; i++) await store.record('svc', 'x', 'failure', policy, t0);
    expect((await store.admit('svc', 'a', policy, 5000, t0 + 1000)).verdict).toBe('admitted');
    expect((await store.record('svc', 'a', 'failure', policy, t0 + 1200)).after).toBe('open');
    expect((await store.admit('svc', 'b', policy, 5000, t0 + 1300)).verdict).toBe('circuit_open');
    expect((await store.breaker('svc', policy)).openedAt).toBe(t0 + 1200);
  });

  it('frees the permit of a trial whose worker died (permit expiry)', async () => {
    const one = { ...policy, circuitBreaker: { ...policy.circuitBreaker, halfOpenMaxCalls: 1 } };
    for (let i = 0; i < 3; i++) await store.record('svc', 'x', 'failure', one, t0);
    expect((await store.admit('svc', 'dies', one, 300, t0 + 1000)).verdict).toBe('admitted');
    expect((await store.admit('svc', 'next', one, 300, t0 + 1200)).verdict).toBe('circuit_open');
    expect((await store.admit('svc', 'next', one, 300, t0 + 1301)).verdict).toBe('admitted');
  });

  it('neutral outcomes (4xx) neither count nor reset', async () => {
    await store.record('svc', 'x', 'failure', policy, t0);
    await store.record('svc', 'x', 'failure', policy, t0);
    await store.record('svc', 'x', 'neutral', policy, t0);
    expect((await store.record('svc', 'x', 'failure', policy, t0)).after).toBe('open');
  });

  it('keeps services apart', async () => {
    for (let i = 0; i < 3; i++) await store.record('a', 'x', 'failure', policy, t0);
    expect((await store.admit('b', 'j', policy, 5000, t0)).verdict).toBe('admitted');
    expect((await store.admit('a', 'j', policy, 5000, t0)).verdict).toBe('circuit_open');
  });
});

describe('peek (the API fast-fail read)', () => {
  const keys = (prefix: string) => ({
    waitLists: [`${prefix}:{svc}:wait`, `${prefix}:{svc}urgent:wait`],
    prioritizedSets: [`${prefix}:{svc}:prioritized`, `${prefix}:{svc}urgent:prioritized`],
  });

  it('reports an open circuit with the time left, a token wait that counts the queued jobs, and the depth of both lanes', async () => {
    const prefix = uniquePrefix('peek');
    const s = new ResilienceStore(redis, prefix);
    const t0 = 2_000_000;
    expect(await s.peek('svc', policy, keys(prefix), t0)).toEqual({ openWaitMs: 0, tokenWaitMs: 0, queueDepth: 0, spareTokens: 4 });
    for (let i = 0; i < 5; i++) await s.admit('svc', `a${i}`, policy, 5000, t0);
    // Bucket empty at 10 tokens/s: the next token is 100 ms away.
    expect((await s.peek('svc', policy, keys(prefix), t0)).tokenWaitMs).toBe(100);
    // Three jobs already waiting take the next three tokens: a new one waits for the fourth.
    await redis.rpush(`${prefix}:{svc}:wait`, '1');
    await redis.rpush(`${prefix}:{svc}urgent:wait`, '2');
    await redis.zadd(`${prefix}:{svc}:prioritized`, 1, '3');
    expect(await s.peek('svc', policy, keys(prefix), t0)).toEqual({ openWaitMs: 0, tokenWaitMs: 400, queueDepth: 3, spareTokens: 0 });
    for (let i = 0; i < 3; i++) await s.record('svc', `f${i}`, 'failure', policy, t0 + 10);
    expect((await s.peek('svc', policy, keys(prefix), t0 + 310)).openWaitMs).toBe(700);
    expect((await s.peek('svc', policy, keys(prefix), t0 + 1010)).openWaitMs).toBe(0);
  });
});
