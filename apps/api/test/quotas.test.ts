import type { RedisClient } from '@mcp-gateway/redis';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { agentKeys, agentServiceKeys } from '@mcp-gateway/resilience';
import { startBackend, type TestBackend, testRedis } from '@mcp-gateway/testing';
import { capturingLogger, eventually, startGateway, type Running } from './harness';

/**
 * Per-agent quotas through the real API and worker: a rate with a burst and a cap on requests in
 * flight, per agent and per agent and service, each refused 429 RATE_LIMITED with Retry-After and
 * `details.scope: "agent"`, distinct from a service's own limit; the holds end with their requests.
 */
const RATER = 'key-rater-0123456789'; // 2 requests, then 1 a second
const CAPPED = 'key-capped-0123456789'; // 1 request in flight
const SCOPED = 'key-scoped-0123456789'; // 1 request in flight to `slow` only
const FREE = 'key-free-0123456789ab'; // the defaults: no quota

let backend: TestBackend;
let gw: Running;
let redis: RedisClient;
const log = capturingLogger('warn');

beforeAll(async () => {
  backend = await startBackend((req) => ({ status: 200, body: { path: req.path }, delayMs: req.path === '/slow' ? 400 : 0 }));
  gw = await startGateway(
    {
      security: {
        apiKeys: [
          { key: RATER, agentId: 'rater' },
          { key: CAPPED, agentId: 'capped-bot' },
          { key: SCOPED, agentId: 'scoped' },
          { key: FREE, agentId: 'free' },
        ],
      },
      agents: {
        rater: { requestsPerMinute: 60, burstLimit: 2 },
        'capped-bot': { maxInFlight: 1 },
        scoped: { services: { slow: { maxInFlight: 1 } } },
      },
      services: {
        fast: { endpoint: backend.url, operations: [{ name: 'ping', method: 'GET', path: '/fast' }] },
        slow: { endpoint: backend.url, operations: [{ name: 'wait', method: 'GET', path: '/slow' }] },
      },
    },
    undefined,
    { logger: log.logger },
  );
  redis = testRedis();
});

afterAll(async () => {
  redis.disconnect();
  await gw.close();
  await backend.close();
});

/** No answer here is a 503: one fails the test with what the gateway logged about it. */
const post = async (key: string, service: string, prefer?: string) => {
  const req = gw.http.post('/mcp/request').set('Authorization', `Bearer ${key}`);
  if (prefer) req.set('Prefer', prefer);
  const res = await req.send({ service, operation: service === 'fast' ? 'ping' : 'wait' });
  if (res.status === 503) throw new Error(`503 ${JSON.stringify(res.body.error)}; the gateway's warnings: ${log.text()}`);
  return res;
};

const ended = (key: string, id: string) =>
  eventually(async () => {
    const r = await gw.http.get(`/mcp/requests/${id}`).set('Authorization', `Bearer ${key}`);
    return r.body.state === 'completed' ? true : undefined;
  });

describe('per-agent quotas', () => {
  it("holds an agent to its rate, with Retry-After, while other agents' requests go through", async () => {
    const answers = [await post(RATER, 'fast'), await post(RATER, 'fast'), await post(RATER, 'fast')];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 429]);
    const refused = answers[2]!;
    expect(refused.body.error).toMatchObject({
      code: 'RATE_LIMITED',
      details: { scope: 'agent', limit: 'rate', quota: { requestsPerMinute: 60, burstLimit: 2 } },
    });
    expect(refused.body.error.message).toMatch(/^Agent rater is over its quota of 60 requests per minute; retry in 1 s$/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // A refused request got no job: the backend saw two calls from this agent.
    expect((await post(FREE, 'fast')).status).toBe(200);
    // A token a second: back in at most a second.
    const again = await eventually(async () => {
      const r = await post(RATER, 'fast');
      return r.status === 200 ? r : undefined;
    }, 3000);
    expect(again.body.status).toBe('success');
  });

  it('caps the requests an agent has in flight (queued or running) until one ends', async () => {
    const first = await post(CAPPED, 'slow', 'respond-async');
    expect(first.status).toBe(202);
    const second = await post(CAPPED, 'fast');
    expect(second.status).toBe(429);
    expect(second.body.error).toMatchObject({
      code: 'RATE_LIMITED',
      details: { scope: 'agent', limit: 'inFlight', quota: { maxInFlight: 1 } },
    });
    expect(second.body.error.message).toMatch(/^Agent capped-bot already has 1 requests in flight, its most at once; retry in 1 s$/);
    expect(second.headers['retry-after']).toBe('1');
    // The first one ends: its hold is released, and the agent may send again.
    await ended(CAPPED, first.body.id);
    expect((await post(CAPPED, 'fast')).status).toBe(200);
    expect(await redis.zcard(agentKeys(gw.config.redis.keyPrefix, 'capped-bot').held)).toBe(0);
  });

  it('lets a request sent again with its own id join it while the agent is at its cap, holding it once', async () => {
    const send = () =>
      gw.http
        .post('/mcp/request')
        .set('Authorization', `Bearer ${CAPPED}`)
        .set('Prefer', 'respond-async')
        .send({ id: 'capped-own-id-1', service: 'slow', operation: 'wait' });
    const first = await send();
    expect(first.status).toBe(202);
    // At its cap of one: a new request is refused, the same one sent again joins it.
    expect((await post(CAPPED, 'fast')).status).toBe(429);
    const again = await send();
    expect([again.status, again.body.id]).toEqual([202, 'capped-own-id-1']);
    const held = agentKeys(gw.config.redis.keyPrefix, 'capped-bot').held;
    expect(await redis.zrange(held, 0, -1)).toEqual(['capped-own-id-1']);
    await ended(CAPPED, 'capped-own-id-1');
    expect(await redis.zcard(held)).toBe(0);
    // Ended, the id answers its stored result, over quota or not.
    const stored = await send();
    expect([stored.status, stored.body.status]).toEqual([200, 'success']);
    expect(await redis.zcard(held)).toBe(0);
  });

  it("caps an agent's requests to one service without touching its others", async () => {
    const first = await post(SCOPED, 'slow', 'respond-async');
    expect(first.status).toBe(202);
    const second = await post(SCOPED, 'slow', 'respond-async');
    expect(second.status).toBe(429);
    expect(second.body.error).toMatchObject({ details: { scope: 'agent', limit: 'inFlight', service: 'slow' } });
    expect(second.body.error.message).toMatch(/for service slow/);
    expect((await post(SCOPED, 'fast')).status).toBe(200);
    await ended(SCOPED, first.body.id);
    // Released by the worker that ended it.
    expect(await redis.zcard(agentServiceKeys(gw.config.redis.keyPrefix, 'slow', 'scoped').held)).toBe(0);
  });

  it('shows an agent its quotas as they stand in its usage: limits, requests held, tokens left', async () => {
    const busy = await post(SCOPED, 'slow', 'respond-async');
    expect(busy.status).toBe(202);
    const usage = await gw.http.get('/mcp/agents/scoped/usage').set('Authorization', `Bearer ${SCOPED}`);
    expect(usage.status).toBe(200);
    expect(usage.body.quota).toEqual({ inFlight: 0, weight: 1 });
    // Its quota for `slow`, with the request just sent held there; `fast` has no quota of its own.
    expect(usage.body.services.slow.quota).toEqual({ maxInFlight: 1, inFlight: 1 });
    await ended(SCOPED, busy.body.id);
    const after = await gw.http.get('/mcp/agents/scoped/usage').set('Authorization', `Bearer ${SCOPED}`);
    expect(after.body.services.slow.quota).toEqual({ maxInFlight: 1, inFlight: 0 });
    const rater = await gw.http.get('/mcp/agents/rater/usage').set('Authorization', `Bearer ${RATER}`);
    expect(rater.body.quota).toMatchObject({ requestsPerMinute: 60, burstLimit: 2, inFlight: 0 });
    expect(rater.body.quota.tokens).toBeGreaterThanOrEqual(0);
    expect(rater.body.quota.tokens).toBeLessThanOrEqual(2);
  });

  it('releases the hold of a request cancelled before it ended', async () => {
    const first = await post(CAPPED, 'slow', 'respond-async');
    expect(first.status).toBe(202);
    // Queued or already running: either way the cancel ends it, and its hold with it.
    expect((await gw.http.delete(`/mcp/requests/${first.body.id}`).set('Authorization', `Bearer ${CAPPED}`)).status).toBe(200);
    expect(await redis.zcard(agentKeys(gw.config.redis.keyPrefix, 'capped-bot').held)).toBe(0);
    expect((await post(CAPPED, 'fast')).status).toBe(200);
  });

  it('says the same to an MCP client, in a sentence, as an error result', async () => {
    const client = new Client({ name: 'quota', version: '1' });
    const url = new URL(`http://127.0.0.1:${gw.api.address!.port}/mcp`);
    await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${CAPPED}` } } }));
    try {
      const busy = await post(CAPPED, 'slow', 'respond-async');
      expect(busy.status).toBe(202);
      const result = (await client.callTool({ name: 'fast__ping', arguments: {} })) as { isError?: boolean; content: { text?: string }[] };
      expect(result.isError).toBe(true);
      expect(result.content[0]!.text).toMatch(/Agent capped-bot already has 1 requests in flight, its most at once.*Retry after 1 s\./s);
    } finally {
      await client.close();
    }
  });
});
