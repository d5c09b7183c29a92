import { SignJWT } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { agentScope, agentMayCall, agentScopeKey } from '@mcp-gateway/protocol';
import { GatewayConfigManager } from '@mcp-gateway/config';
import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { startGateway, type Running } from './harness';

/**
 * Credentials limited to operations, not only services: API key grants (`svc.<glob>`, `svc.readOnly`)
 * and JWT scopes (`tool:<svc>.<op>`). The REST API answers 403 outside them; the MCP tool list shows
 * exactly what may be called, and a call outside it is an unknown tool.
 */
const SECRET = 'scopes-test-secret-0123456789abcdef';
const ONE_OP = 'key-one-op-0123456789'; // users.getUser and all of billing
const READER = 'key-reader-0123456789'; // users.readOnly
const LISTER = 'key-lister-0123456789'; // users.list*
const SUPPORT = 'key-support-0123456789'; // @support: the toolset's operations
const ALL = 'key-all-0123456789abcd'; // everything

let backend: TestBackend;
let gw: Running;

beforeAll(async () => {
  backend = await startBackend((req) => ({ status: 200, body: { method: req.method, path: req.path } }));
  gw = await startGateway({
    security: {
      apiKeys: [
        { key: ONE_OP, agentId: 'one-op', services: ['users.getUser', 'billing'] },
        { key: READER, agentId: 'reader', services: ['users.readOnly'] },
        { key: LISTER, agentId: 'lister', services: ['users.list*'] },
        { key: SUPPORT, agentId: 'support-bot', services: ['@support'] },
        { key: ALL, agentId: 'all' },
      ],
      jwt: { secret: SECRET },
    },
    toolsets: { support: ['users.readOnly', 'billing'] },
    services: {
      users: {
        endpoint: backend.url,
        operations: [
          { name: 'getUser', method: 'GET', path: '/users/{id}' },
          { name: 'listUsers', method: 'GET', path: '/users' },
          { name: 'deleteUser', method: 'DELETE', path: '/users/{id}' },
        ],
      },
      billing: { endpoint: backend.url, operations: [{ name: 'charge', method: 'POST', path: '/charge' }] },
    },
  });
});

afterAll(async () => {
  await gw.close();
  await backend.close();
});

const post = (credential: string, service: string, operation: string) =>
  gw.http
    .post('/mcp/request')
    .set('Authorization', `Bearer ${credential}`)
    .send({ service, operation, parameters: operation === 'getUser' || operation === 'deleteUser' ? { id: '7' } : {} });

const token = (scope: string) =>
  new SignJWT({ sub: 'jwt-agent', scope })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET));

async function toolNames(credential: string | undefined, path = '/mcp', on: Running = gw): Promise<{ client: Client; names: string[] }> {
  const client = new Client({ name: 'scoped', version: '1' });
  const url = new URL(`http://127.0.0.1:${on.api.address!.port}${path}`);
  const headers: Record<string, string> = credential ? { Authorization: `Bearer ${credential}` } : {};
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
  return { client, names: (await client.listTools()).tools.map((t) => t.name) };
}

describe('an agent scope from grants', () => {
  it('reads whole services, operation globs and readOnly; a whole service wins over its operation grants', () => {
    const scope = { id: 'a', via: 'api-key' as const, ...agentScope(['users.get*', 'users.readOnly', 'billing', 'billing.charge']) };
    expect([...scope.services!].sort()).toEqual(['billing', 'users']);
    expect(scope.operations?.has('billing')).toBe(false);
    expect(agentMayCall(scope, 'users', { name: 'getUser', method: 'POST' })).toBe(true);
    expect(agentMayCall(scope, 'users', { name: 'listUsers', method: 'GET' })).toBe(true);
    expect(agentMayCall(scope, 'users', { name: 'deleteUser', method: 'DELETE' })).toBe(false);
    expect(agentMayCall(scope, 'billing', { name: 'refund', method: 'POST' })).toBe(true);
    expect(agentMayCall(scope, 'orders', { name: 'list', method: 'GET' })).toBe(false);
    expect(agentScope(['*', 'users.getUser'])).toEqual({});
    // A grant that names no valid service grants nothing (and cannot pose as another scope's key).
    expect([...agentScope(['users,billing', 'users(x).y']).services!]).toEqual([]);
    // Equal scopes share a key; another scope has another.
    expect(agentScopeKey({ ...scope })).toBe(
      agentScopeKey({ id: 'b', via: 'jwt', ...agentScope(['billing', 'users.readOnly', 'users.get*']) }),
    );
    expect(agentScopeKey(scope)).not.toBe(agentScopeKey({ id: 'c', via: 'jwt', ...agentScope(['billing', 'users.get*']) }));
  });

  it('comes from MCP_GATEWAY_API_KEYS grants as written', () => {
    const cfg = GatewayConfigManager.fromEnv({ MCP_GATEWAY_API_KEYS: 'long-key-cccc:planner:users.getUser|github.repos/*|orders' });
    expect(cfg.security.apiKeys).toEqual([
      { key: 'long-key-cccc', agentId: 'planner', services: ['users.getUser', 'github.repos/*', 'orders'] },
    ]);
  });
});

describe('POST /mcp/request with a credential limited to operations', () => {
  it('calls the operations granted and answers 403 FORBIDDEN for the others of the same service', async () => {
    expect((await post(ONE_OP, 'users', 'getUser')).status).toBe(200);
    expect((await post(ONE_OP, 'billing', 'charge')).status).toBe(200);
    const refused = await post(ONE_OP, 'users', 'deleteUser');
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({
      code: 'FORBIDDEN',
      message: 'This credential may not call operation deleteUser of service users',
    });
    expect((await post(READER, 'users', 'listUsers')).status).toBe(200);
    expect((await post(READER, 'users', 'deleteUser')).status).toBe(403);
    expect((await post(LISTER, 'users', 'listUsers')).status).toBe(200);
    expect((await post(LISTER, 'users', 'getUser')).status).toBe(403);
    // An unknown operation lists only the ones the credential may call.
    const unknown = await post(ONE_OP, 'users', 'nope');
    expect(unknown.body.error).toMatchObject({ code: 'UNKNOWN_OPERATION', details: { operations: ['getUser'] } });
    // Nothing refused reached the backend.
    expect(backend.requests.filter((r) => r.method === 'DELETE')).toHaveLength(0);
  });

  it("shows in a service's definition and count only the operations the credential may call", async () => {
    const def = await gw.http.get('/mcp/services/users/definition').set('Authorization', `Bearer ${ONE_OP}`);
    expect(def.body.operations.map((o: { name: string }) => o.name)).toEqual(['getUser']);
    const list = await gw.http.get('/mcp/services').set('Authorization', `Bearer ${READER}`);
    expect(list.body.services.map((s: { name: string; operations: number }) => [s.name, s.operations])).toEqual([['users', 2]]);
  });

  it('takes tool:<svc>.<op> scopes from a JWT (readOnly and globs too) beside service:<svc>', async () => {
    const jwt = await token('tool:users.readOnly service:billing');
    expect((await post(jwt, 'users', 'getUser')).status).toBe(200);
    expect((await post(jwt, 'billing', 'charge')).status).toBe(200);
    expect((await post(jwt, 'users', 'deleteUser')).status).toBe(403);
    // A service scope written with a dot grants nothing.
    expect((await post(await token('service:users.deleteUser'), 'users', 'deleteUser')).status).toBe(403);
  });
});

describe('MCP with a credential limited to operations', () => {
  it('lists exactly the tools it may call, and a call outside them is an unknown tool', async () => {
    const { client, names } = await toolNames(ONE_OP);
    try {
      expect(names).toEqual(['users__getUser', 'billing__charge']);
      await expect(client.callTool({ name: 'users__deleteUser', arguments: { id: '7' } })).rejects.toThrow(/Unknown tool/);
      expect((await client.callTool({ name: 'users__getUser', arguments: { id: '7' } })).isError).toBeFalsy();
    } finally {
      await client.close();
    }
    const jwt = await toolNames(await token('tool:users.list* tool:users.getUser'));
    try {
      expect(jwt.names).toEqual(['users__getUser', 'users__listUsers']);
    } finally {
      await jwt.client.close();
    }
  });
});

describe('toolsets', () => {
  it('bound to a key (@support), limit it to the toolset’s operations', async () => {
    expect((await post(SUPPORT, 'users', 'getUser')).status).toBe(200);
    expect((await post(SUPPORT, 'billing', 'charge')).status).toBe(200);
    expect((await post(SUPPORT, 'users', 'deleteUser')).status).toBe(403);
    // And from a JWT's toolset: scope.
    expect((await post(await token('toolset:support'), 'users', 'deleteUser')).status).toBe(403);
    expect((await post(await token('toolset:support'), 'users', 'listUsers')).status).toBe(200);
  });

  it('are served at /mcp/<toolset>: the caller sees what both its credential and the toolset allow', async () => {
    const all = await toolNames(ALL, '/mcp/support');
    try {
      expect(all.names).toEqual(['users__getUser', 'users__listUsers', 'billing__charge']);
      await expect(all.client.callTool({ name: 'users__deleteUser', arguments: { id: '7' } })).rejects.toThrow(/Unknown tool/);
    } finally {
      await all.client.close();
    }
    const whole = await toolNames(ALL);
    await whole.client.close();
    expect(whole.names).toContain('users__deleteUser');
    const oneOp = await toolNames(ONE_OP, '/mcp/support');
    await oneOp.client.close();
    expect(oneOp.names).toEqual(['users__getUser', 'billing__charge']);
    // A name that is no toolset is no endpoint.
    expect((await gw.http.post('/mcp/nope').set('Authorization', `Bearer ${ALL}`).send({})).status).toBe(404);
  });

  it('limit an anonymous caller too (inbound auth off), and are refused in config when they shadow a path or are unknown', async () => {
    const open = await startGateway({
      services: {
        billing: {
          endpoint: backend.url,
          operations: [
            { name: 'charge', method: 'POST', path: '/charge' },
            { name: 'balance', method: 'GET', path: '/balance' },
          ],
        },
      },
      toolsets: { readers: ['billing.readOnly'] },
    });
    try {
      const { client, names } = await toolNames(undefined, '/mcp/readers', open);
      await client.close();
      expect(names).toEqual(['billing__balance']);
    } finally {
      await open.close();
    }
    expect(() => GatewayConfigManager.fromEnv({ MCP_TOOLSETS: 'services:users' })).toThrow(
      /MCP_TOOLSETS: "services": is a path of the gateway's own/,
    );
    expect(() => GatewayConfigManager.fromEnv({ MCP_GATEWAY_API_KEYS: 'long-key-dddd:a:@nope' })).toThrow(/unknown toolset nope/);
    expect(() => GatewayConfigManager.fromEnv({ MCP_GATEWAY_API_KEYS: 'long-key-dddd:a:@constructor' })).toThrow(
      /unknown toolset constructor/,
    );
    expect(() => GatewayConfigManager.fromEnv({ MCP_TOOLSETS: 'Services:users' })).toThrow(/path of the gateway's own/);
    expect(GatewayConfigManager.fromEnv({ MCP_ALLOWED_HOSTS: 'GW.Example,::1' }).mcp.allowedHosts).toEqual(['gw.example', '[::1]']);
    expect(GatewayConfigManager.fromEnv({ MCP_TOOLSETS: 'support:users.readOnly|tickets, billing:billing.charge' }).toolsets).toEqual({
      support: ['users.readOnly', 'tickets'],
      billing: ['billing.charge'],
    });
  });
});
