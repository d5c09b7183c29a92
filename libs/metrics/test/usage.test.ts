import Redis from 'ioredis';
import { AgentUsage, agentIndexKey, agentLabel, agentUsageKey, GatewayMetrics, OTHER_AGENT, ServiceStats } from '@mcp-gateway/metrics';
import { testRedisUrl, uniquePrefix } from '@mcp-gateway/testing';

let redis: Redis;
beforeAll(() => {
  redis = new Redis(testRedisUrl());
});
afterAll(() => redis.disconnect());

it('adds agents’ usage up in memory and writes it with the service stats’ flush, per agent and service', async () => {
  const prefix = uniquePrefix('usage');
  const writer = new ServiceStats(redis, prefix, 10, 60_000);
  const usage = new AgentUsage(redis, prefix);
  await writer.record('users', 'success', 30, { agentId: 'planner', backendMs: 10 });
  await writer.record('users', 'success', 30, { agentId: 'planner', backendMs: 20.4 });
  await writer.record('users', 'TIMEOUT', 30, { agentId: 'planner', backendMs: 5 });
  // Ended before any call: counted, no backend time.
  await writer.record('users', 'CIRCUIT_OPEN', 1, { agentId: 'planner' });
  await writer.record('billing', 'BACKEND_ERROR', 9, { agentId: 'planner', backendMs: 7 });
  await writer.record('users', 'success', 5, { agentId: 'support-bot', backendMs: 3 });
  // No agent: the service's numbers only.
  await writer.record('users', 'success', 5);
  expect(await usage.read('planner')).toEqual({ services: {} });
  expect(await redis.exists(agentUsageKey(prefix, 'planner'), agentIndexKey(prefix))).toBe(0);

  await writer.flush();
  expect(await usage.read('planner')).toEqual({
    services: {
      users: { requests: 4, outcomes: { success: 2, TIMEOUT: 1, CIRCUIT_OPEN: 1 }, backendMs: { total: 35, mean: 11.7, calls: 3 } },
      billing: { requests: 1, outcomes: { BACKEND_ERROR: 1 }, backendMs: { total: 7, mean: 7, calls: 1 } },
    },
  });
  expect((await usage.read('support-bot')).services.users!.requests).toBe(1);
  expect((await writer.snapshot('users')).counts).toEqual({ success: 4, TIMEOUT: 1, CIRCUIT_OPEN: 1 });

  // A second flush adds to the first.
  await writer.record('users', 'success', 5, { agentId: 'planner', backendMs: 5 });
  await writer.close();
  expect((await usage.read('planner')).services.users).toEqual({
    requests: 5,
    outcomes: { success: 3, TIMEOUT: 1, CIRCUIT_OPEN: 1 },
    backendMs: { total: 40, mean: 10, calls: 4 },
  });

  // Each agent's hash has its own hash tag and expires when idle, as the index does.
  const key = agentUsageKey(prefix, 'planner');
  expect(key).toBe(`${prefix}:agent:{a:planner}:usage`);
  for (const k of [key, agentIndexKey(prefix)]) expect(await redis.pttl(k)).toBeGreaterThan(6 * 24 * 3600 * 1000);
});

it('writes at once without a flush period (the API, for the requests it ends itself)', async () => {
  const prefix = uniquePrefix('usage-now');
  await new ServiceStats(redis, prefix).record('users', 'CANCELLED', 3, { agentId: 'planner' });
  expect(await new AgentUsage(redis, prefix).read('planner')).toEqual({
    services: { users: { requests: 1, outcomes: { CANCELLED: 1 }, backendMs: { total: 0, mean: null, calls: 0 } } },
  });
});

it('an id with the characters of a key or a tag in it stays its own agent', async () => {
  const prefix = uniquePrefix('usage-ids');
  const writer = new ServiceStats(redis, prefix, 10, 60_000);
  const odd = ['a}b', 'a', 'a}', 'x:y:{z}', 'sp ace\nline', '*'];
  for (const [i, id] of odd.entries()) for (let n = 0; n <= i; n++) await writer.record('svc', 'success', 1, { agentId: id });
  await writer.close();
  const usage = new AgentUsage(redis, prefix);
  for (const [i, id] of odd.entries()) expect([id, (await usage.read(id)).services.svc?.requests]).toEqual([id, i + 1]);
  const listed = await usage.list(100);
  expect(new Map(listed.agents.map((a) => [a.agent, a.services.svc!.requests]))).toEqual(new Map(odd.map((id, i) => [id, i + 1])));
});

it('lists the agents with usage, bounded, and says when there were more', async () => {
  const prefix = uniquePrefix('usage-list');
  const writer = new ServiceStats(redis, prefix, 10, 60_000);
  for (const id of ['a1', 'a2', 'a3']) await writer.record('svc', 'success', 1, { agentId: id });
  await writer.close();
  const usage = new AgentUsage(redis, prefix);
  const all = await usage.list(10);
  expect(all.truncated).toBe(false);
  expect(all.agents.map((a) => a.agent).sort()).toEqual(['a1', 'a2', 'a3']);
  const two = await usage.list(2);
  expect([two.agents.length, two.truncated]).toEqual([2, true]);
  // One whose hash is gone (expired before the index noticed) is not shown.
  await redis.del(agentUsageKey(prefix, 'a1'));
  expect((await usage.list(10)).agents.map((a) => a.agent).sort()).toEqual(['a2', 'a3']);
  expect(await new AgentUsage(redis, uniquePrefix('usage-none')).list(10)).toEqual({ agents: [], truncated: false });
});

it('keeps an agent’s usage whose write failed and writes it with the next flush', async () => {
  const prefix = uniquePrefix('usage-retry');
  const broken = new Redis(testRedisUrl());
  const writer = new ServiceStats(broken, prefix, 10, 60_000);
  await broken.ping();
  broken.disconnect();
  await writer.record('svc', 'success', 1, { agentId: 'planner', backendMs: 4 });
  await expect(writer.flush()).rejects.toThrow();
  await writer.record('svc', 'TIMEOUT', 1, { agentId: 'planner', backendMs: 6 });
  await broken.connect();
  await writer.close();
  expect(await new AgentUsage(redis, prefix).read('planner')).toEqual({
    services: { svc: { requests: 2, outcomes: { success: 1, TIMEOUT: 1 }, backendMs: { total: 10, mean: 5, calls: 2 } } },
  });
  broken.disconnect();
});

it('labels configured agents by id and every other one as _other', async () => {
  const configured = new Set(['planner']);
  expect([agentLabel('planner', configured), agentLabel('jwt-subject-42', configured)]).toEqual(['planner', OTHER_AGENT]);
  const m = new GatewayMetrics({ defaultMetrics: false });
  for (const id of ['planner', 'jwt-1', 'jwt-2'])
    m.agentRequests.inc({ agent: agentLabel(id, configured), service: 'svc', outcome: 'success' });
  const text = await m.text();
  expect(text).toContain('mcp_gateway_agent_requests_total{agent="planner",service="svc",outcome="success"} 1');
  expect(text).toContain('mcp_gateway_agent_requests_total{agent="_other",service="svc",outcome="success"} 2');
  expect(text).not.toContain('jwt-1');
  await m.forgetService('svc');
  expect(await m.text()).not.toContain('service="svc"');
});
