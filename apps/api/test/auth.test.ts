import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { startGateway, type Running } from './harness';

let backend: TestBackend;
let gw: Running;

const PLANNER = 'key-planner-0123456789';
const BILLING = 'key-billing-0123456789';

beforeAll(async () => {
  backend = await startBackend();
  gw = await startGateway({
    security: {
      apiKeys: [
        { key: PLANNER, agentId: 'planner' },
        { key: BILLING, agentId: 'billing-bot', services: ['billing'] },
      ],
    },
    services: { users: { endpoint: backend.url }, billing: { endpoint: backend.url } },
  });
});

afterAll(async () => {
  await gw.close();
  await backend.close();
});

const call = (service: string) => ({ service, operation: 'op', parameters: {} });

describe('inbound API keys', () => {
  it('401 without a key or with a wrong one; /mcp/health stays open', async () => {
    const none = await gw.http.post('/mcp/request').send(call('users'));
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('UNAUTHORIZED');
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    const wrong = await gw.http.post('/mcp/request').set('Authorization', 'Bearer nope-nope-nope').send(call('users'));
    expect(wrong.status).toBe(401);
    expect((await gw.http.get('/mcp/services')).status).toBe(401);
    expect((await gw.http.get('/mcp/health')).status).toBe(200);
    expect(backend.requests).toHaveLength(0);
  });

  it("accepts Bearer and X-API-Key, and records the key's agent whatever the body claims", async () => {
    const a = await gw.http
      .post('/mcp/request')
      .set('Authorization', `Bearer ${PLANNER}`)
      .send({ ...call('users'), metadata: { agentId: 'someone-else' } });
    expect(a.status).toBe(200);
    const b = await gw.http.post('/mcp/request').set('X-API-Key', BILLING).send(call('billing'));
    expect(b.status).toBe(200);
    const rec = await gw.api.deps.broker.records.get(a.body.id);
    expect(rec?.agentId).toBe('planner');
  });

  it('403 when the key may not use the service; its service list hides the others', async () => {
    const res = await gw.http.post('/mcp/request').set('X-API-Key', BILLING).send(call('users'));
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('FORBIDDEN');
    // A limited key cannot tell a service that exists from one that does not.
    expect((await gw.http.post('/mcp/request').set('X-API-Key', BILLING).send(call('no-such-service'))).status).toBe(403);
    // An unlimited key's UNKNOWN_SERVICE lists the services; nobody learns of services they may not use.
    const unknown = await gw.http.post('/mcp/request').set('X-API-Key', PLANNER).send(call('no-such-service'));
    expect(unknown.body.error).toMatchObject({ code: 'UNKNOWN_SERVICE', details: { known: ['users', 'billing'] } });
    const list = await gw.http.get('/mcp/services').set('X-API-Key', BILLING);
    expect(list.body.services.map((s: { name: string }) => s.name)).toEqual(['billing']);
  });

  it("an agent cannot read, cancel or join another agent's request", async () => {
    const mine = await gw.http
      .post('/mcp/request')
      .set('X-API-Key', PLANNER)
      .send({ id: 'private-req-1', ...call('billing') });
    expect(mine.status).toBe(200);
    expect((await gw.http.get('/mcp/requests/private-req-1').set('X-API-Key', PLANNER)).status).toBe(200);
    expect((await gw.http.get('/mcp/requests/private-req-1').set('X-API-Key', BILLING)).status).toBe(404);
    expect((await gw.http.delete('/mcp/requests/private-req-1').set('X-API-Key', BILLING)).status).toBe(404);
    const join = await gw.http
      .post('/mcp/request')
      .set('X-API-Key', BILLING)
      .send({ id: 'private-req-1', ...call('billing') });
    expect(join.status).toBe(409);
    // The body is the same: the message does not say it differs.
    expect(join.body.error.message).toBe(
      "Request id private-req-1 is already used by another request (another service, operation or parameters, or another caller's)",
    );
  });
});
