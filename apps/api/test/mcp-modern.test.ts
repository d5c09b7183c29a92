import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { keysMatching, startBackend, type TestBackend } from '@mcp-gateway/testing';
import { startGateway, type Running } from './harness';

let backend: TestBackend;
let open: Running;
let keyed: Running;
const services = {
  users: {
    endpoint: '',
    operations: [
      {
        name: 'getUser',
        method: 'GET',
        path: '/users/{id}',
        parameters: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
      },
    ],
  },
  billing: { endpoint: '', operations: [{ name: 'charge', method: 'POST', path: '/charge' }] },
};
const mcpUrl = (r: Running) => new URL(`http://127.0.0.1:${r.api.address!.port}/mcp`);

beforeAll(async () => {
  backend = await startBackend((req) => ({ status: 200, body: { path: req.path } }));
  const withEndpoint = Object.fromEntries(Object.entries(services).map(([k, v]) => [k, { ...v, endpoint: backend.url }]));
  // Listening on loopback without inbound auth: Host and Origin are checked (DNS rebinding).
  open = await startGateway({ host: '127.0.0.1', services: withEndpoint, security: { adminToken: 'admin-token-0123456789abcdef' } });
  keyed = await startGateway({
    gatewayUrl: 'https://gw.example.test',
    security: { apiKeys: [{ key: 'billing-only-key-0123', agentId: 'biller', services: ['billing'] }] },
    services: withEndpoint,
  });
});

afterAll(async () => {
  await open.close();
  await keyed.close();
  await backend.close();
});

describe('MCP 2026-07-28 (v2 SDK client, sessionless)', () => {
  it('negotiates the modern revision through server/discover and calls tools without a session', async () => {
    const client = new ClientV2({ name: 'modern-client', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    const transport = new TransportV2(mcpUrl(open));
    await client.connect(transport);
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    expect(transport.sessionId).toBeUndefined();
    const first = (await client.listTools()).tools.map((t) => t.name);
    expect(first).toEqual(['users__getUser', 'billing__charge']);
    // Deterministic: the same list every time, from any replica.
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(first);
    const res = await client.callTool({ name: 'users__getUser', arguments: { id: '42' } });
    expect(res.structuredContent).toEqual({ path: '/users/42' });
    await client.close();
  });

  it('hears of a registration on its subscriptions/listen stream (the modern tools/list_changed)', async () => {
    const listener = new ClientV2({ name: 'listener', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await listener.connect(new TransportV2(mcpUrl(open)));
    let changed = 0;
    listener.setNotificationHandler('notifications/tools/list_changed', () => {
      changed += 1;
    });
    const sub = await listener.listen({ toolsListChanged: true });
    expect(sub.honoredFilter.toolsListChanged).toBe(true);
    const reg = await fetch(new URL('/mcp/services', mcpUrl(open)), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-admin-token': 'admin-token-0123456789abcdef' },
      body: JSON.stringify({ name: 'arrival', endpoint: backend.url, operations: [{ name: 'hi', path: '/hi' }] }),
    });
    expect(reg.status).toBe(201);
    for (let i = 0; i < 50 && changed === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(changed).toBeGreaterThanOrEqual(1);
    expect((await listener.listTools()).tools.map((t) => t.name)).toContain('arrival__hi');
    await sub.close();
    await listener.close();
  });

  it('the v2 client in auto mode gets the modern era too; in legacy mode the 2025 handshake', async () => {
    for (const [mode, expected] of [
      ['auto', '2026-07-28'],
      ['legacy', '2025-11-25'],
    ] as const) {
      const client = new ClientV2({ name: 'c', version: '1' }, { versionNegotiation: { mode } });
      await client.connect(new TransportV2(mcpUrl(open)));
      expect([mode, client.getNegotiatedProtocolVersion()]).toEqual([mode, expected]);
      expect((await client.callTool({ name: 'billing__charge', arguments: {} })).structuredContent).toEqual({ path: '/charge' });
      await client.close();
    }
  });
});

describe('MCP over plain HTTP', () => {
  it('a 2026-07-28 request with its Content-Type sent twice is served as the one JSON body Node reads', async () => {
    const http = await import('node:http');
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 5,
      method: 'tools/list',
      params: {
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    });
    const port = open.api.address!.port;
    const headers = [
      'host',
      `127.0.0.1:${port}`,
      'content-type',
      'application/json',
      'content-type',
      'application/json',
      'accept',
      'application/json, text/event-stream',
      'mcp-protocol-version',
      '2026-07-28',
      'mcp-method',
      'tools/list',
      'content-length',
      String(Buffer.byteLength(body)),
    ];
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(status).toBe(200);
    const answer = JSON.parse(text) as { id: number; result: { tools: { name: string }[] } };
    expect(answer.id).toBe(5);
    expect(answer.result.tools.map((t) => t.name)).toEqual(expect.arrayContaining(['users__getUser', 'billing__charge']));
  });
});

describe('MCP security', () => {
  it('without a credential: 401 pointing at the protected-resource metadata, which is served openly', async () => {
    const res = await fetch(mcpUrl(keyed), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain(
      'resource_metadata="https://gw.example.test/.well-known/oauth-protected-resource/mcp"',
    );
    const meta = await fetch(new URL('/.well-known/oauth-protected-resource/mcp', mcpUrl(keyed)));
    expect(meta.status).toBe(200);
    expect(await meta.json()).toMatchObject({ resource: 'https://gw.example.test/mcp', bearer_methods_supported: ['header'] });
  });

  it('a key limited to some services sees and calls only those tools', async () => {
    const client = new Client({ name: 'biller', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(mcpUrl(keyed), { requestInit: { headers: { Authorization: 'Bearer billing-only-key-0123' } } }),
    );
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['billing__charge']);
    await expect(client.callTool({ name: 'users__getUser', arguments: { id: '1' } })).rejects.toThrow(/Unknown tool/);
    expect((await client.callTool({ name: 'billing__charge', arguments: {} })).isError).toBeFalsy();
    // The job was made for the key's agent (the credential decides, on every path).
    const keys = await keysMatching(keyed.api.deps.redis, `${keyed.config.redis.keyPrefix}:req:*`);
    const ids = keys.map((k) => k.slice(k.lastIndexOf(':') + 1));
    const records = await Promise.all(ids.map((id) => keyed.api.deps.broker.records.get(id)));
    expect(records.map((r) => [r?.service, r?.agentId])).toContainEqual(['billing', 'biller']);
    await client.close();
  });

  it('on loopback without auth, a foreign Host or Origin is refused (DNS rebinding)', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const port = open.api.address!.port;
    const http = await import('node:http');
    const send = (extra: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers: { ...headers, ...extra } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(body);
      });
    expect(await send({ host: 'evil.example:80' })).toBe(403);
    expect(await send({ host: `127.0.0.1:${port}`, origin: 'http://evil.example' })).toBe(403);
    expect(await send({ host: `localhost:${port}`, origin: `http://localhost:${port}` })).not.toBe(403);
  });

  /** POSTs tools/list to a gateway's /mcp with these headers: the status and the JSON-RPC error's message. */
  async function postToolsList(r: Running, extra: Record<string, string>): Promise<{ status: number; message?: string }> {
    const http = await import('node:http');
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...extra };
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: r.api.address!.port, path: '/mcp', method: 'POST', headers }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          const parsed = res.headers['content-type']?.includes('json') ? (JSON.parse(text) as { error?: { message: string } }) : {};
          resolve({ status: res.statusCode ?? 0, ...(parsed.error ? { message: parsed.error.message } : {}) });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('whatever address it listens on, a browser Origin not in MCP_CORS_ORIGINS is refused; a caller with no Origin is not', async () => {
    const auth = { authorization: 'Bearer billing-only-key-0123' };
    // Inbound auth on: not a loopback-only endpoint, and no origins configured.
    expect(await postToolsList(keyed, { ...auth, origin: 'http://evil.example' })).toEqual({
      status: 403,
      message: 'Origin http://evil.example is not allowed to call this endpoint (MCP_CORS_ORIGINS)',
    });
    expect((await postToolsList(keyed, auth)).status).toBe(200);
  });

  it('answers only the configured origins (scheme, host and port) and, with MCP_ALLOWED_HOSTS, only those hosts', async () => {
    const guarded = await startGateway({
      services: { billing: { endpoint: backend.url, operations: [{ name: 'charge', method: 'POST', path: '/charge' }] } },
      security: { apiKeys: [{ key: 'guarded-key-0123456789', agentId: 'guarded' }] },
      cors: { origins: ['https://app.example', 'chrome-extension://abcdef'] },
      mcp: { allowedHosts: ['gw.example', '127.0.0.1'] },
    });
    try {
      const auth = { authorization: 'Bearer guarded-key-0123456789' };
      expect((await postToolsList(guarded, { ...auth, origin: 'https://app.example' })).status).toBe(200);
      expect((await postToolsList(guarded, { ...auth, origin: 'https://app.example:8443' })).status).toBe(403);
      expect((await postToolsList(guarded, { ...auth, origin: 'http://app.example' })).status).toBe(403);
      // Another scheme's origin is its own too: one allowed extension does not allow the others.
      expect((await postToolsList(guarded, { ...auth, origin: 'chrome-extension://abcdef' })).status).toBe(200);
      expect((await postToolsList(guarded, { ...auth, origin: 'chrome-extension://other' })).status).toBe(403);
      expect((await postToolsList(guarded, { ...auth, origin: 'null' })).status).toBe(403);
      expect((await postToolsList(guarded, { ...auth, host: 'gw.example' })).status).toBe(200);
      expect(await postToolsList(guarded, { ...auth, host: 'other.example:80' })).toEqual({
        status: 403,
        message: 'Host other.example:80 is not one this endpoint answers to (MCP_ALLOWED_HOSTS)',
      });
    } finally {
      await guarded.close();
    }
  });
});
