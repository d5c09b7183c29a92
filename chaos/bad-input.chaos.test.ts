import net from 'node:net';
import fc from 'fast-check';
import { report, SHORT, startCluster, type Cluster } from './harness';

/**
 * Bad input, generated: every answer is a coded 4xx (or a normal answer when the input happened to be
 * valid), never a 5xx; the process stays up; no backend call leaves the endpoint; memory comes back.
 */
const ADMIN = 'chaos-admin-token-0123456789';
let c: Cluster;
let port: number;

beforeAll(async () => {
  c = await startCluster({
    services: { files: '/v1', rpc: '/rpc' },
    handler: (req) => ({ status: 200, body: { path: req.path } }),
    workers: 1,
    env: { MCP_ADMIN_TOKEN: ADMIN, MCP_SERVICE_FILES_DEFINITION: `${__dirname}/files.yaml`, MCP_DEFAULT_TIMEOUT: '3000' },
  });
  port = c.apiPort();
});
afterAll(() => c.stop());

const runs = SHORT ? 150 : 600;
const weird = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.constantFrom(
    '..',
    '.',
    '%2e%2e',
    '../../etc/passwd',
    'http://evil.example/x',
    '//evil.example',
    'a\r\nX-Injected: 1',
    '\u0000',
    '%00',
    '\u202e',
    '😀'.repeat(20),
    '__proto__',
    'constructor',
  ),
  fc.string({ maxLength: 4096 }),
);
const json = fc.jsonValue({ maxDepth: 4 });
const envelope = fc.record(
  {
    id: fc.oneof(weird, fc.integer(), fc.constant(undefined)),
    service: fc.oneof(fc.constantFrom('files', 'rpc', 'nope'), weird, json),
    operation: fc.oneof(fc.constantFrom('read', 'write', 'doThing'), weird, json),
    parameters: fc.oneof(
      fc.dictionary(fc.oneof(fc.constantFrom('name', 'size', '__proto__', 'constructor'), fc.string()), fc.oneof(weird, json)),
      json,
    ),
    metadata: fc.oneof(
      fc.record(
        { timeout: fc.oneof(fc.integer(), weird), priority: fc.oneof(fc.constantFrom('low', 'high'), weird) },
        { requiredKeys: [] },
      ),
      json,
    ),
  },
  { requiredKeys: [] },
);

function rawPost(path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body,
  }).then(async (r) => ({ status: r.status, body: await r.text() }));
}

async function heapUsed(): Promise<number> {
  const text = (await c.http().get('/metrics')).text;
  return Number(/^nodejs_heap_size_used_bytes (\d+)/m.exec(text)![1]);
}

it('POST /mcp/request: generated envelopes, raw garbage, pollution keys, traversal — coded answers, never a 5xx', async () => {
  const before = await heapUsed();
  const statuses: Record<number, number> = {};
  const count = (s: number) => (statuses[s] = (statuses[s] ?? 0) + 1);
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        // Well-formed calls whose values are hostile: these reach workers and backends.
        { arbitrary: weird.map((name) => JSON.stringify({ service: 'files', operation: 'read', parameters: { name } })), weight: 3 },
        {
          arbitrary: fc
            .record({ x: weird, y: json })
            .map((parameters) => JSON.stringify({ service: 'rpc', operation: 'doThing', parameters })),
          weight: 1,
        },
        envelope.map((e) => JSON.stringify(e)),
        fc.string({ maxLength: 2000 }),
        fc.constantFrom(
          '{"__proto__":{"polluted":1},"service":"files","operation":"read"}',
          '{"constructor":{"prototype":{"x":1}}}',
          '[1,2,3]',
          'null',
          '"str"',
          '{'.repeat(5000),
        ),
      ),
      async (body) => {
        const res = await rawPost('/mcp/request', body);
        count(res.status);
        expect(res.status).toBeLessThan(500 + (res.status === 502 || res.status === 503 || res.status === 504 ? 100 : 0));
        if (res.status >= 400) expect(JSON.parse(res.body).error.code).toMatch(/^[A-Z_]+$/);
      },
    ),
    { numRuns: runs },
  );
  // Deep nesting and a body over the limit.
  expect((await rawPost('/mcp/request', `${'['.repeat(100_000)}${']'.repeat(100_000)}`)).status).toBe(400);
  expect(
    (await rawPost('/mcp/request', JSON.stringify({ service: 'rpc', operation: 'x', parameters: { blob: 'a'.repeat(1_200_000) } }))).status,
  ).toBe(413);
  // Nothing was polluted, the process is up, and no backend call left its endpoint.
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect((await c.http().get('/mcp/health')).status).toBe(200);
  for (const r of c.backend.requests) {
    expect(r.path.startsWith('/v1/files/') || r.path.startsWith('/rpc/')).toBe(true);
    let decoded = r.path;
    for (let i = 0; i < 3; i++) {
      try {
        decoded = decodeURIComponent(decoded);
      } catch {
        break;
      }
    }
    const segments = decoded.split(/[\\/]/);
    if (r.path.startsWith('/v1/files/')) expect(segments.slice(3).some((s) => s === '..' || s === '.')).toBe(false);
    expect(r.headers['x-injected']).toBeUndefined();
  }
  report({
    fault: 'fuzz POST /mcp/request',
    sent: runs + 2,
    accepted: (statuses[200] ?? 0) + (statuses[502] ?? 0),
    completed: statuses[200] ?? 0,
    failed: Object.fromEntries(
      Object.entries(statuses)
        .filter(([s]) => s !== '200')
        .map(([s, n]) => [`HTTP ${s}`, n]),
    ),
    lost: 0,
    duplicates: 0,
  });
  // Memory comes back: the generated garbage is not kept.
  await new Promise((r) => setTimeout(r, 1500));
  expect(await heapUsed()).toBeLessThan(before + 64 * 1024 * 1024);
});

it('/mcp JSON-RPC and the admin endpoints: generated messages get protocol errors or coded 4xx, never a 5xx', async () => {
  const rpc = fc.record(
    {
      jsonrpc: fc.oneof(fc.constant('2.0'), weird),
      id: fc.oneof(fc.integer(), fc.string(), fc.constant(null)),
      method: fc.oneof(
        fc.constantFrom(
          'tools/call',
          'tools/list',
          'initialize',
          'tasks/get',
          'tasks/cancel',
          'notifications/cancelled',
          'server/discover',
        ),
        weird,
      ),
      params: json,
    },
    { requiredKeys: [] },
  );
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        rpc.map((m) => JSON.stringify(m)),
        fc.string({ maxLength: 500 }),
      ),
      async (body) => {
        const res = await rawPost('/mcp', body);
        expect([res.status, res.body.slice(0, 200)]).toEqual([expect.any(Number), expect.any(String)]);
        expect(res.status).toBeLessThan(500);
      },
    ),
    { numRuns: runs },
  );
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        envelope.map((e) =>
          JSON.stringify({ name: e.service, endpoint: e.operation, ...(typeof e.parameters === 'object' ? e.parameters : {}) }),
        ),
        fc.string({ maxLength: 500 }),
      ),
      async (body) => {
        const res = await rawPost('/mcp/services', body, { 'x-admin-token': ADMIN });
        expect([201, 200].includes(res.status) || (res.status >= 400 && res.status < 500) || res.status === 502).toBe(true);
        if (res.status >= 400) expect(JSON.parse(res.body).error.code).toMatch(/^[A-Z_]+$/);
      },
    ),
    { numRuns: Math.floor(runs / 3) },
  );
  expect((await c.http().get('/mcp/health')).status).toBe(200);
});

it('slow clients do not hold up the others', async () => {
  const body = JSON.stringify({ service: 'rpc', operation: 'slowBody', parameters: { a: 1 } });
  const sockets = Array.from({ length: 20 }, () => {
    const s = net.connect(port, '127.0.0.1');
    s.write(`POST /mcp/request HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    return s;
  });
  let answered = 0;
  sockets[0]!.on('data', () => (answered += 1));
  // Trickle one byte at a time into every socket while normal requests go through.
  for (let i = 0; i < body.length; i++) {
    for (const s of sockets) s.write(body[i]!);
    if (i % 10 === 0) expect((await c.http().post('/mcp/request').send({ service: 'rpc', operation: 'quick' })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 20));
  }
  for (let i = 0; i < 100 && answered === 0; i++) await new Promise((r) => setTimeout(r, 50));
  expect(answered).toBeGreaterThan(0);
  for (const s of sockets) s.destroy();
});
