import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { startGateway, type Running } from './harness';

/**
 * Who may open the operators' console (/dashboard, /admin/queues), and what the queue UI may do.
 * No worker runs here: a job stays queued for the UI to look at.
 */
const ADMIN = 'admin-token-console-0123456789';
const JWT_SECRET = 'jwt-secret-console-0123456789-0123456789';
let backend: TestBackend;

beforeAll(async () => {
  backend = await startBackend();
});
afterAll(async () => {
  await backend.close();
});

async function withGateway(security: object, run: (gw: Running) => Promise<void>): Promise<void> {
  const gw = await startGateway({ security, services: { parked: { endpoint: backend.url } } }, []);
  try {
    await run(gw);
  } finally {
    await gw.close();
  }
}

const CONSOLE_PATHS = ['/dashboard', '/dashboard/status', '/admin/queues/api/queues'];

it('without an admin token, the console is open in development only when no inbound credential is configured either', async () => {
  await withGateway({}, async (gw) => {
    for (const path of CONSOLE_PATHS) expect([path, (await gw.http.get(path)).status]).toEqual([path, 200]);
  });
  for (const security of [{ apiKeys: [{ key: 'agent-key-console-0123', agentId: 'planner' }] }, { jwt: { secret: JWT_SECRET } }]) {
    await withGateway(security, async (gw) => {
      expect(gw.config.environment).not.toBe('production');
      for (const path of CONSOLE_PATHS) {
        const res = await gw.http.get(path);
        expect([path, res.status]).toEqual([path, 403]);
        expect(res.body.error.code).toBe('FORBIDDEN');
        expect(res.body.error.message).toMatch(/MCP_ADMIN_TOKEN/);
      }
      // An agent's own credential does not open it.
      const agent = await gw.http.get('/dashboard/status').set('Authorization', 'Bearer agent-key-console-0123');
      expect(agent.status).toBe(403);
    });
  }
});

it('with an admin token, the console needs it whatever else is configured', async () => {
  await withGateway({ adminToken: ADMIN, apiKeys: [{ key: 'agent-key-console-0123', agentId: 'planner' }] }, async (gw) => {
    for (const path of CONSOLE_PATHS) {
      expect([path, (await gw.http.get(path)).status]).toEqual([path, 401]);
      expect([path, (await gw.http.get(path).set('X-Admin-Token', ADMIN)).status]).toEqual([path, 200]);
    }
  });
});

it('the queue UI is read-only: a job cannot be removed, retried or promoted there, so its request still ends in a result', async () => {
  await withGateway({ adminToken: ADMIN }, async (gw) => {
    const accepted = await gw.http.post('/mcp/request').set('Prefer', 'respond-async').send({ service: 'parked', operation: 'op' });
    expect(accepted.status).toBe(202);
    const id = accepted.body.id as string;
    const queue = encodeURIComponent('{parked}');
    const listed = await gw.http.get('/admin/queues/api/queues').set('X-Admin-Token', ADMIN);
    expect(listed.status).toBe(200);
    expect(listed.body.queues.map((q: { name: string; readOnlyMode: boolean }) => [q.name, q.readOnlyMode])).toEqual([
      ['{parked}', true],
      ['{parked}urgent', true],
    ]);
    const attempts = [
      gw.http.put(`/admin/queues/api/queues/${queue}/${id}/clean`),
      gw.http.put(`/admin/queues/api/queues/${queue}/clean/waiting`),
      gw.http.put(`/admin/queues/api/queues/${queue}/empty`),
      gw.http.put(`/admin/queues/api/queues/${queue}/obliterate`),
      gw.http.put(`/admin/queues/api/queues/${queue}/pause`),
      gw.http.put('/admin/queues/api/queues/pause'),
      gw.http.post(`/admin/queues/api/queues/${queue}/add`).send({ name: 'x', data: {} }),
    ];
    for (const attempt of attempts) {
      const res = await attempt.set('X-Admin-Token', ADMIN);
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
    }
    const q = gw.api.deps.broker.queue('parked');
    expect(await q.getJob(id)).toBeDefined();
    expect(await q.isPaused()).toBe(false);
    expect(await q.count()).toBe(1);
    expect((await gw.http.get(`/mcp/requests/${id}`)).body.state).toBe('queued');
  });
});

it("the queue UI keeps its own Content-Security-Policy (it runs inline scripts); the rest of the console gets the gateway's", async () => {
  await withGateway({ adminToken: ADMIN }, async (gw) => {
    const board = await gw.http.get('/admin/queues').set('X-Admin-Token', ADMIN);
    expect(board.status).toBe(200);
    expect(board.headers['content-security-policy']).toMatch(/script-src 'self' 'unsafe-inline'/);
    expect(board.headers['x-content-type-options']).toBe('nosniff');
    // Written by bull-board's own express app, whose answers do not pass the gateway's writeHead.
    expect(board.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
    const dashboard = await gw.http.get('/dashboard').set('X-Admin-Token', ADMIN);
    expect(dashboard.status).toBe(200);
    expect(dashboard.headers['content-security-policy']).toContain("script-src 'self';");
    expect(dashboard.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
