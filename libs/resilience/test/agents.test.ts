import type { RedisClient } from '@mcp-gateway/redis';
import { AgentQuotas, agentKeys, agentServiceKeys, type AgentHoldRequest } from '@mcp-gateway/resilience';
import { testRedis, uniquePrefix } from '@mcp-gateway/testing';

let redis: RedisClient;
let prefix: string;
let quotas: AgentQuotas;
const t0 = 5_000_000;

beforeEach(() => {
  redis = testRedis();
  prefix = uniquePrefix('agents');
  quotas = new AgentQuotas(redis, prefix);
});
afterEach(() => redis.disconnect());

const request = (id: string, over: Partial<AgentHoldRequest> = {}): AgentHoldRequest => ({
  id,
  agentId: 'planner',
  service: 'users',
  rank: 2,
  lapseAt: t0 + 60_000,
  longestHoldMs: 120_000,
  fair: false,
  weight: 1,
  now: t0,
  bucketNow: t0,
  ...over,
});

describe('agent quotas', () => {
  it('holds nothing, and sends nothing, for an agent with no quota when fair queues are off', () => {
    expect(quotas.hold(request('a'))).toBeUndefined();
  });

  it("lets an agent's burst through, then refuses with the wait until its next token", async () => {
    const own = { requestsPerMinute: 60, burstLimit: 3 }; // one token a second
    const verdicts = [];
    for (let i = 0; i < 4; i++) verdicts.push(await quotas.hold(request(`r${i}`, { own })));
    expect(verdicts.slice(0, 3).map((v) => v?.held)).toEqual([true, true, true]);
    expect(verdicts[3]).toEqual({ held: false, scope: 'agent', limit: 'rate', waitMs: 1000, quota: own });
    expect(await quotas.hold(request('r4', { own, bucketNow: t0 + 999 }))).toMatchObject({ held: false, waitMs: 1 });
    expect(await quotas.hold(request('r4', { own, bucketNow: t0 + 1000 }))).toMatchObject({ held: true });
    // Another agent has its own bucket.
    expect(await quotas.hold(request('x', { own, agentId: 'other' }))).toMatchObject({ held: true });
  });

  it('caps requests in flight until one is released, or its hold lapses', async () => {
    const own = { maxInFlight: 2 };
    const a = await quotas.hold(request('a', { own }));
    const b = await quotas.hold(request('b', { own, lapseAt: t0 + 1000 }));
    expect(a).toEqual({ held: true, tier: 0, holds: [agentKeys(prefix, 'planner').held] });
    expect(b).toMatchObject({ held: true });
    expect(await quotas.hold(request('c', { own }))).toEqual({ held: false, scope: 'agent', limit: 'inFlight', waitMs: 1000, quota: own });
    await quotas.release(a?.held ? a.holds : [], 'a');
    expect(await quotas.hold(request('c', { own }))).toMatchObject({ held: true });
    expect(await quotas.hold(request('d', { own }))).toMatchObject({ held: false, limit: 'inFlight' });
    // b's hold lapses: a release that never came frees its slot then.
    expect(await quotas.hold(request('d', { own, now: t0 + 1001 }))).toMatchObject({ held: true });
  });

  it("holds a request in both the agent's own quota and its quota for the service, and releases one refused by either", async () => {
    const own = { maxInFlight: 10 };
    const perService = { maxInFlight: 1 };
    const first = await quotas.hold(request('a', { own, perService }));
    expect(first).toEqual({
      held: true,
      tier: 0,
      holds: [agentKeys(prefix, 'planner').held, agentServiceKeys(prefix, 'users', 'planner').held],
    });
    expect(await quotas.hold(request('b', { own, perService }))).toMatchObject({ held: false, scope: 'service', limit: 'inFlight' });
    // b was held in the agent's own set, then let go: only a is held there.
    expect(await redis.zrange(agentKeys(prefix, 'planner').held, 0, -1)).toEqual(['a']);
    // Another service is not capped.
    expect(await quotas.hold(request('c', { own, perService: undefined, service: 'billing', fair: true }))).toMatchObject({ held: true });
  });

  it("gives each request its fair-share tier: the agent's requests held before it in its class or a higher one, over its weight", async () => {
    const tiers = async (agentId: string, ranks: (1 | 2 | 3)[], weight = 1) => {
      const out: number[] = [];
      for (const [i, rank] of ranks.entries()) {
        const h = await quotas.hold(request(`${agentId}-${i}-${rank}`, { agentId, rank, fair: true, weight }));
        out.push(h?.held ? h.tier : -1);
      }
      return out;
    };
    expect(await tiers('flood', [2, 2, 2, 2])).toEqual([0, 1, 2, 3]);
    // A high request of the same agent comes after its high ones only; a low one after all of them.
    expect(await tiers('flood', [1, 3])).toEqual([0, 5]);
    // Another agent starts at tier 0; a weight of 2 puts two requests in each tier.
    expect(await tiers('steady', [2, 2, 2])).toEqual([0, 1, 2]);
    expect(await tiers('heavy', [2, 2, 2, 2, 2], 2)).toEqual([0, 0, 1, 1, 2]);
  });

  it("does not hold a caller's own id twice: the same request sent again takes no token and no slot, and releases nothing", async () => {
    const own = { requestsPerMinute: 60, burstLimit: 5, maxInFlight: 2 };
    const first = await quotas.hold(request('mine', { own, mayBeHeld: true }));
    expect(first).toMatchObject({ held: true, holds: [agentKeys(prefix, 'planner').held] });
    // Sent again: held already, so nothing is added (and nothing for its caller to release).
    expect(await quotas.hold(request('mine', { own, mayBeHeld: true }))).toEqual({ held: true, tier: 0, holds: [] });
    expect(await redis.zcard(agentKeys(prefix, 'planner').held)).toBe(1);
    expect(await redis.hget(agentKeys(prefix, 'planner').bucket, 'tokens')).toBe('4');
    // One slot left of two.
    expect(await quotas.hold(request('other', { own }))).toMatchObject({ held: true });
    expect(await quotas.hold(request('third', { own }))).toMatchObject({ held: false, limit: 'inFlight' });
  });

  it("does not count lapsed holds of a higher class in a request's tier", async () => {
    await quotas.hold(request('lost-high', { rank: 1, fair: true, lapseAt: t0 + 10 }));
    await quotas.hold(request('live-high', { rank: 1, fair: true }));
    const later = await quotas.hold(request('normal', { rank: 2, fair: true, now: t0 + 11 }));
    expect(later).toMatchObject({ held: true, tier: 1 });
  });

  it('keeps its keys for as long as a hold can last, and a bucket until it would be full again', async () => {
    await quotas.hold(request('a', { own: { requestsPerMinute: 600, burstLimit: 10, maxInFlight: 5 }, bucketNow: undefined }));
    const k = agentKeys(prefix, 'planner');
    const setTtl = await redis.pttl(k.held);
    expect(setTtl).toBeGreaterThan(120_000);
    expect(setTtl).toBeLessThanOrEqual(121_000);
    // One token short, refilled at 10 a second: 100 ms, plus a second.
    const bucketTtl = await redis.pttl(k.bucket);
    expect(bucketTtl).toBeGreaterThan(1000);
    expect(bucketTtl).toBeLessThanOrEqual(1100);
    // Released, the set is gone (Redis drops an empty sorted set).
    await quotas.release([k.held], 'a');
    expect(await redis.exists(k.held)).toBe(0);
  });

  it("reads an agent's quotas as they stand: its limits, requests held (lapsed ones not counted) and tokens left", async () => {
    const now = Date.now();
    const own = { requestsPerMinute: 60, burstLimit: 5, maxInFlight: 10 };
    const perService = { maxInFlight: 3 };
    const live = { now, bucketNow: undefined, lapseAt: now + 60_000, own, perService, fair: true };
    await quotas.hold(request('a', live));
    await quotas.hold(request('b', { ...live, rank: 1 }));
    await quotas.hold(request('gone', { ...live, lapseAt: now - 1 }));
    const quotasOf = (service?: string) => (service ? perService : own);
    const state = await quotas.state('planner', ['users', 'billing'], quotasOf);
    expect(state.own).toMatchObject({ ...own, inFlight: 2 });
    // Three tokens taken a moment ago, refilling at one a second.
    expect(state.own.tokens).toBeGreaterThanOrEqual(2);
    expect(state.own.tokens).toBeLessThan(2.5);
    expect(state.services).toEqual({ users: { maxInFlight: 3, inFlight: 2 }, billing: { maxInFlight: 3, inFlight: 0 } });
    expect((await quotas.state('nobody', [], () => undefined)).own).toEqual({ inFlight: 0 });
  });
});
