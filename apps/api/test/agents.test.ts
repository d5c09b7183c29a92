import { SignJWT } from 'jose';
import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { eventually, startGateway, type Running } from './harness';

/**
 * Usage per agent through the real API and worker: requests, outcomes and backend time per service,
 * readable by the admin token or the agent itself, and the agent counter of /metrics.
 */
const ADMIN = 'admin-token-agents-0123456789';
const KEY_A = 'agent-key-planner-0123';
const KEY_B = 'agent-key-support-0123';
const JWT_SECRET = 'jwt-secret-agents-0123456789-0123456789';
let backend: TestBackend;

beforeAll(async () => {
  backend = await startBackend((req) =>
    req.path === '/boom' ? { status: 500, body: { broken: true } } : { status: 200, body: { ok: true } },
  );
});
afterAll(async () => {
  await backend.close();
});

const services = () => ({
  users: {
    endpoint: backend.url,
    operations: [
      { name: 'get', method: 'GET' as const, path: '/ok' },
      { name: 'fail', method: 'GET' as const, path: '/boom' },
    ],
  },
  billing: { endpoint: backend.url, operations: [{ name: 'charge', method: 'POST' as const, path: '/ok' }] },
});
// One attempt: a failed call ends its request at once.
const retryPolicy = { maxAttempts: 1, backoffStrategy: 'linear' as const, initialDelay: 10, maxDelay: 10, jitter: false };

const jwt = (sub: string) =>
  new SignJWT({ sub, scope: 'service:*' })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(JWT_SECRET));

describe('with inbound keys and an admin token', () => {
  let gw: Running;
  beforeAll(async () => {
    gw = await startGateway({
      retryPolicy,
      security: {
        adminToken: ADMIN,
        apiKeys: [
          { key: KEY_A, agentId: 'planner' },
          { key: KEY_B, agentId: 'support-bot' },
        ],
        jwt: { secret: JWT_SECRET },
      },
      services: services(),
    });
  });
  afterAll(async () => {
    await gw.close();
  });

  const send = async (credential: string, service: string, operation: string, status: number) => {
    const res = await gw.http.post('/mcp/request').set('Authorization', `Bearer ${credential}`).send({ service, operation });
    expect([service, operation, res.status]).toEqual([service, operation, status]);
  };
  const withoutQuotas = (services: Record<string, { quota?: unknown }>) =>
    Object.fromEntries(Object.entries(services).map(([name, { quota: _quota, ...usage }]) => [name, usage]));
  const usageOf = (id: string, credential: string) =>
    gw.http.get(`/mcp/agents/${encodeURIComponent(id)}/usage`).set('Authorization', `Bearer ${credential}`);

  it('counts each agent’s requests, outcomes and backend time per service, for the agent itself and the admin', async () => {
    for (let i = 0; i < 3; i++) await send(KEY_A, 'users', 'get', 200);
    await send(KEY_A, 'users', 'fail', 502);
    for (let i = 0; i < 2; i++) await send(KEY_A, 'billing', 'charge', 200);
    await send(KEY_B, 'users', 'get', 200);
    const other = await jwt('jwt-subject-1');
    await send(other, 'users', 'get', 200);

    // Workers write usage with their stats every 250 ms.
    const a = await eventually(async () => {
      const res = await usageOf('planner', KEY_A);
      const s = res.body.services ?? {};
      return (s.users?.requests ?? 0) + (s.billing?.requests ?? 0) === 6 ? res : undefined;
    });
    expect(a.status).toBe(200);
    // With its quotas as they stand (none configured here: only the fair-share holds, all ended).
    const quota = { inFlight: 0 };
    expect(a.body).toEqual({
      agent: 'planner',
      quota: { inFlight: 0, weight: 1 },
      services: {
        users: { requests: 4, outcomes: { success: 3, BACKEND_ERROR: 1 }, backendMs: expect.objectContaining({ calls: 4 }), quota },
        billing: { requests: 2, outcomes: { success: 2 }, backendMs: expect.objectContaining({ calls: 2 }), quota },
      },
    });
    const ms = a.body.services.users.backendMs;
    expect(ms.total).toBeGreaterThanOrEqual(0);
    expect(ms.mean).toBeCloseTo(ms.total / 4, 0);

    // The admin token, as a Bearer token or X-Admin-Token, reads any agent's.
    expect((await usageOf('planner', ADMIN)).body).toEqual(a.body);
    const viaHeader = await gw.http.get('/mcp/agents/planner/usage').set('X-Admin-Token', ADMIN);
    expect([viaHeader.status, viaHeader.body]).toEqual([200, a.body]);
    const b = await eventually(async () => {
      const res = await usageOf('support-bot', KEY_B);
      return res.body.services?.users ? res : undefined;
    });
    expect(b.body.services).toEqual({
      users: { requests: 1, outcomes: { success: 1 }, backendMs: expect.objectContaining({ calls: 1 }), quota },
    });
    // An agent by JWT reads its own, under its subject.
    const own = await eventually(async () => {
      const res = await usageOf('jwt-subject-1', other);
      return res.body.services?.users ? res : undefined;
    });
    expect(own.body.services.users.outcomes).toEqual({ success: 1 });
    // No usage is no services.
    const none = await usageOf('never-called', ADMIN);
    expect([none.status, none.body]).toEqual([200, { agent: 'never-called', quota: { inFlight: 0, weight: 1 }, services: {} }]);
  });

  it('another agent is refused with 403; no credential or a wrong one with 401', async () => {
    for (const [credential, id] of [
      [KEY_B, 'planner'],
      [KEY_A, 'support-bot'],
      [await jwt('planner-impostor'), 'planner'],
    ] as const) {
      const res = await usageOf(id, credential);
      expect([id, res.status, res.body.error?.code]).toEqual([id, 403, 'FORBIDDEN']);
    }
    expect((await gw.http.get('/mcp/agents/planner/usage')).status).toBe(401);
    expect((await usageOf('planner', 'not-a-key-0123')).status).toBe(401);
    expect((await gw.http.get('/mcp/agents/planner/usage').set('X-Admin-Token', 'wrong-admin-token')).status).toBe(401);
  });

  it('GET /mcp/agents lists every agent with usage, for the admin only', async () => {
    const listed = await eventually(async () => {
      const res = await gw.http.get('/mcp/agents').set('Authorization', `Bearer ${ADMIN}`);
      return res.body.agents?.length === 3 ? res : undefined;
    });
    expect(listed.body.truncated).toBe(false);
    const byAgent = new Map(listed.body.agents.map((x: { agent: string; services: object }) => [x.agent, x.services]));
    expect([...byAgent.keys()].sort()).toEqual(['jwt-subject-1', 'planner', 'support-bot']);
    // The list carries usage only; an agent's quotas are in its own answer.
    expect(byAgent.get('planner')).toEqual(withoutQuotas((await usageOf('planner', ADMIN)).body.services));
    for (const credential of [KEY_A, KEY_B]) {
      expect((await gw.http.get('/mcp/agents').set('Authorization', `Bearer ${credential}`)).status).toBe(401);
    }
  });

  it('the console’s status data carries the agents’ usage', async () => {
    const status = await gw.http.get('/dashboard/status').set('X-Admin-Token', ADMIN);
    expect(status.status).toBe(200);
    const planner = status.body.agents.find((x: { agent: string }) => x.agent === 'planner');
    expect(planner).toEqual({ agent: 'planner', services: withoutQuotas((await usageOf('planner', ADMIN)).body.services) });
  });

  it('/metrics counts by agent for the configured agents only: any other is _other', async () => {
    const text = (await gw.http.get('/metrics')).text;
    const count = (labels: string) => Number(text.match(new RegExp(`^mcp_gateway_agent_requests_total\\{${labels}\\} (\\d+)$`, 'm'))?.[1]);
    expect(count('agent="planner",service="users",outcome="success"')).toBe(3);
    expect(count('agent="planner",service="users",outcome="BACKEND_ERROR"')).toBe(1);
    expect(count('agent="planner",service="billing",outcome="success"')).toBe(2);
    expect(count('agent="support-bot",service="users",outcome="success"')).toBe(1);
    expect(count('agent="_other",service="users",outcome="success"')).toBe(1);
    expect(text).not.toContain('jwt-subject-1');
  });

  it('a JWT whose subject is longer than 128 characters is refused', async () => {
    const res = await gw.http
      .post('/mcp/request')
      .set('Authorization', `Bearer ${await jwt('x'.repeat(129))}`)
      .send({ service: 'users', operation: 'get' });
    expect([res.status, res.body.error.message]).toEqual([401, expect.stringMatching(/longer than 128/)]);
  });
});

describe('with inbound auth off', () => {
  it('only the admin token reads usage (that of an agent named in the request), and without one the route is off', async () => {
    const gw = await startGateway({ retryPolicy, security: { adminToken: ADMIN }, services: services() });
    try {
      const sent = await gw.http.post('/mcp/request').send({ service: 'users', operation: 'get', metadata: { agentId: 'self-named' } });
      expect(sent.status).toBe(200);
      const res = await eventually(async () => {
        const r = await gw.http.get('/mcp/agents/self-named/usage').set('X-Admin-Token', ADMIN);
        return r.body.services?.users ? r : undefined;
      });
      expect(res.body.services.users.outcomes).toEqual({ success: 1 });
      expect((await gw.http.get('/mcp/agents/self-named/usage')).status).toBe(401);
      expect((await gw.http.get('/mcp/agents/x'.padEnd(12 + 129, 'x') + '/usage').set('X-Admin-Token', ADMIN)).status).toBe(400);
    } finally {
      await gw.close();
    }
    const open = await startGateway({ services: services() }, []);
    try {
      for (const path of ['/mcp/agents/self-named/usage', '/mcp/agents']) {
        const r = await open.http.get(path);
        expect([path, r.status, r.body.error.code]).toEqual([path, 403, 'FORBIDDEN']);
      }
    } finally {
      await open.close();
    }
  });
});
