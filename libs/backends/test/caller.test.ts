import { GatewayConfigManager, type ServiceConfigInput } from '@mcp-gateway/config';
import { OperationDefinitionSchema } from '@mcp-gateway/protocol';
import { createRedis, type RedisClient } from '@mcp-gateway/redis';
import { BackendCaller, CallAbandon, classifyOutcome, oauth2Keys, parseRetryAfter, type BackendOutcome } from '@mcp-gateway/backends';
import { freePort, startBackend, testRedisUrl, uniquePrefix, type TestBackend } from '@mcp-gateway/testing';

const svc = (s: ServiceConfigInput) => GatewayConfigManager.fromObject({ services: { s } }).services.s!;
const op = (method: string, path: string) => OperationDefinitionSchema.parse({ name: 'op', method, path });

let redis: RedisClient;
let backend: TestBackend;
const callers: BackendCaller[] = [];
const newCaller = (prefix: string) => {
  const c = new BackendCaller({ redis, keyPrefix: prefix });
  callers.push(c);
  return c;
};

/** A GET of `path` on a backend, with no credential. */
const getFrom = (endpoint: string, path: string) =>
  newCaller('p').call({ service: 's', config: svc({ endpoint }), operation: op('GET', path), parameters: {}, timeoutMs: 2000 });

beforeAll(() => {
  redis = createRedis(testRedisUrl(), 'blocking', 'backends-test');
});
afterAll(() => {
  callers.forEach((c) => c.close());
  redis.disconnect();
});
// A backend per test: its request log is that test's alone.
beforeEach(async () => {
  backend = await startBackend();
});
afterEach(() => backend.close());

describe('BackendCaller: credentials', () => {
  it('adds a bearer token, or an API key under the configured header, beside the gateway headers', async () => {
    const caller = newCaller(uniquePrefix());
    await caller.call({
      service: 's',
      config: svc({ endpoint: backend.url, auth: { type: 'bearer', credentials: { token: 'tok-1' } } }),
      operation: op('GET', '/a'),
      parameters: {},
      timeoutMs: 2000,
      headers: { 'X-Correlation-ID': 'c-1', 'Idempotency-Key': 'id-1' },
    });
    await caller.call({
      service: 's',
      config: svc({ endpoint: backend.url, auth: { type: 'api-key', credentials: { apiKey: 'key-1', headerName: 'X-Service-Key' } } }),
      operation: op('GET', '/b'),
      parameters: {},
      timeoutMs: 2000,
    });
    await caller.call({
      service: 's',
      config: svc({ endpoint: backend.url, auth: { type: 'api-key', credentials: { apiKey: 'key-2' } } }),
      operation: op('GET', '/c'),
      parameters: {},
      timeoutMs: 2000,
    });
    const [a, b, c] = backend.requests;
    expect(a!.headers).toMatchObject({ authorization: 'Bearer tok-1', 'x-correlation-id': 'c-1', 'idempotency-key': 'id-1' });
    expect(b!.headers['x-service-key']).toBe('key-1');
    expect(b!.headers.authorization).toBeUndefined();
    expect(c!.headers['x-api-key']).toBe('key-2');
  });
});

describe('BackendCaller: imported operations', () => {
  const imported = (placement: { in: 'header' | 'query' | 'cookie'; name: string }) =>
    OperationDefinitionSchema.parse({
      name: 'op',
      method: 'POST',
      path: '/p',
      request: { parameters: [], apiKey: placement, body: { mediaType: 'application/x-www-form-urlencoded', properties: ['a'] } },
    });

  it("places the API key where the document's scheme says, unless the config names a header; basic credentials in Authorization", async () => {
    const caller = newCaller(uniquePrefix());
    const key = (headerName?: string) =>
      svc({ endpoint: backend.url, auth: { type: 'api-key', credentials: { apiKey: 'k-1', ...(headerName ? { headerName } : {}) } } });
    for (const placement of [
      { in: 'header', name: 'api_key' },
      { in: 'query', name: 'key' },
      { in: 'cookie', name: 'sid' },
    ] as const) {
      await caller.call({ service: 's', config: key(), operation: imported(placement), parameters: { a: 'x y' }, timeoutMs: 2000 });
    }
    await caller.call({
      service: 's',
      config: key('X-Mine'),
      operation: imported({ in: 'query', name: 'key' }),
      parameters: {},
      timeoutMs: 2000,
    });
    await caller.call({
      service: 's',
      config: svc({ endpoint: backend.url, auth: { type: 'basic', credentials: { username: 'u', password: 'p:w' } } }),
      operation: op('GET', '/b'),
      parameters: {},
      timeoutMs: 2000,
    });
    const [header, query, cookie, configured, basic] = backend.requests;
    expect(header!.headers).toMatchObject({ api_key: 'k-1', 'content-type': 'application/x-www-form-urlencoded' });
    expect(header!.rawBody).toBe('a=x+y');
    expect([query!.query, query!.headers['x-api-key']]).toEqual([{ key: 'k-1' }, undefined]);
    expect(cookie!.headers.cookie).toBe('sid=k-1');
    expect([configured!.query, configured!.headers['x-mine']]).toEqual([{}, 'k-1']);
    expect(basic!.headers.authorization).toBe(`Basic ${Buffer.from('u:p:w').toString('base64')}`);
  });

  it("never sends an argument's header beside the credential under another spelling of its name", async () => {
    const caller = newCaller(uniquePrefix());
    const withHeader = OperationDefinitionSchema.parse({
      name: 'op',
      method: 'GET',
      path: '/h',
      request: { parameters: [{ arg: 'k', in: 'header', name: 'x-api-key' }] },
    });
    await caller.call({
      service: 's',
      config: svc({ endpoint: backend.url, auth: { type: 'api-key', credentials: { apiKey: 'SECRET' } } }),
      operation: withHeader,
      parameters: { k: 'AGENT' },
      timeoutMs: 2000,
    });
    // Node joins repeated headers ("AGENT, SECRET"): one value means one header.
    expect(backend.requests[0]!.headers['x-api-key']).toBe('SECRET');
  });

  it('reads a binary answer as base64 with its media type, and XML as text', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 255]);
    const files = await startBackend((req) =>
      req.path === '/img'
        ? { body: png, headers: { 'content-type': 'image/png' } }
        : { body: '<a>1</a>', headers: { 'content-type': 'application/xml' } },
    );
    const call = (path: string) => getFrom(files.url, path);
    expect(await call('/img')).toMatchObject({
      kind: 'response',
      status: 200,
      data: { mediaType: 'image/png', base64: png.toString('base64') },
    });
    expect(await call('/xml')).toMatchObject({ kind: 'response', status: 200, data: '<a>1</a>' });
    await files.close();
  });
});

describe('BackendCaller: OAuth2', () => {
  let tokenServer: TestBackend;
  let api: TestBackend;
  let issued = 0;
  let valid = new Set<string>();

  // Token endpoint and API per test, with no token issued or valid yet.
  beforeEach(async () => {
    issued = 0;
    valid = new Set<string>();
    tokenServer = await startBackend(async (req) => {
      issued += 1;
      const form = new URLSearchParams(req.rawBody);
      if (form.get('client_secret') !== 'cs-1') return { status: 401, body: { error: 'invalid_client' } };
      const token = `at-${issued}`;
      valid = new Set([token]);
      // Slow enough that concurrent 401s overlap the refresh.
      return {
        status: 200,
        body: { access_token: token, token_type: 'Bearer', expires_in: 3600, refresh_token: `rt-${issued}` },
        delayMs: 150,
      };
    });
    api = await startBackend((req) => {
      const tok = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
      return valid.has(tok) ? { status: 200, body: { ok: tok } } : { status: 401, body: { error: 'expired' } };
    });
  });
  afterEach(async () => {
    await tokenServer.close();
    await api.close();
  });

  const oauth = (tokenUrl: string, secret = 'cs-1') =>
    svc({
      endpoint: api.url,
      auth: {
        type: 'oauth2',
        credentials: { accessToken: 'at-stale', refreshToken: 'rt-0', tokenUrl, clientId: 'gw', clientSecret: secret },
      },
    });

  it('refreshes once on 401 across processes, shares the new token through Redis, and retries the call', async () => {
    const prefix = uniquePrefix();
    // Two callers stand for two worker processes: each has its own HTTP pool and in-process state.
    const one = newCaller(prefix);
    const two = newCaller(prefix);
    const config = oauth(`${tokenServer.url}/token`);
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        (i % 2 ? one : two).call({ service: 'users', config, operation: op('GET', '/me'), parameters: {}, timeoutMs: 5000 }),
      ),
    );
    expect(outcomes.map((o) => (o.kind === 'response' ? o.status : o.kind))).toEqual(Array(8).fill(200));
    expect(issued).toBe(1);
    const form = new URLSearchParams(tokenServer.requests[0]!.rawBody);
    expect(Object.fromEntries(form)).toEqual({
      grant_type: 'refresh_token',
      refresh_token: 'rt-0',
      client_id: 'gw',
      client_secret: 'cs-1',
    });
    expect(JSON.parse((await redis.get(oauth2Keys(prefix, 'users').token))!)).toMatchObject({ accessToken: 'at-1' });
    expect(await redis.ttl(oauth2Keys(prefix, 'users').token)).toBeGreaterThan(3500);
    // The rotated refresh token is the one used next time.
    expect(await redis.get(oauth2Keys(prefix, 'users').refresh)).toBe('rt-1');

    // A third "process" starts with the shared token: no 401, no refresh.
    const before = api.requests.length;
    const three = newCaller(prefix);
    const o = await three.call({ service: 'users', config, operation: op('GET', '/me'), parameters: {}, timeoutMs: 5000 });
    expect(o).toMatchObject({ kind: 'response', status: 200, data: { ok: 'at-1' } });
    expect(api.requests.length - before).toBe(1);
    expect(issued).toBe(1);
  });

  it('forgets a stored refresh token the token endpoint no longer accepts and uses the configured one', async () => {
    const prefix = uniquePrefix();
    await redis.set(oauth2Keys(prefix, 'users').refresh, 'rt-revoked', 'EX', 600);
    const seen: string[] = [];
    const strict = await startBackend((req) => {
      const form = new URLSearchParams(req.rawBody);
      seen.push(String(form.get('refresh_token')));
      if (form.get('refresh_token') !== 'rt-0') return { status: 400, body: { error: 'invalid_grant' } };
      valid = new Set(['at-fresh']);
      return { status: 200, body: { access_token: 'at-fresh', expires_in: 600, refresh_token: 'rt-next' } };
    });
    const o = await newCaller(prefix).call({
      service: 'users',
      config: oauth(`${strict.url}/token`),
      operation: op('GET', '/me'),
      parameters: {},
      timeoutMs: 5000,
    });
    await strict.close();
    expect(o).toMatchObject({ kind: 'response', status: 200, data: { ok: 'at-fresh' } });
    expect(seen).toEqual(['rt-revoked', 'rt-0']);
    expect(await redis.get(oauth2Keys(prefix, 'users').refresh)).toBe('rt-next');
  });

  it('answers the backend 401 when the refresh fails, and never shows a secret', async () => {
    const caller = newCaller(uniquePrefix());
    const o = await caller.call({
      service: 'users',
      config: oauth(`${tokenServer.url}/token`, 'wrong-secret'),
      operation: op('GET', '/me'),
      parameters: {},
      timeoutMs: 5000,
    });
    expect(o).toMatchObject({ kind: 'response', status: 401 });
    expect(tokenServer.requests).toHaveLength(1);
    expect(JSON.stringify(o)).not.toMatch(/wrong-secret|rt-0|at-stale/);
  });
});

describe('BackendCaller: transport outcomes', () => {
  it('gives timeout when the deadline passes mid-call', async () => {
    const slow = await startBackend(() => ({ status: 200, delayMs: 1500 }));
    const o = await newCaller('p').call({
      service: 's',
      config: svc({ endpoint: slow.url }),
      operation: op('GET', '/'),
      parameters: {},
      timeoutMs: 200,
    });
    await slow.close();
    expect(o.kind).toBe('timeout');
    expect(o.durationMs).toBeLessThan(1200);
    expect(classifyOutcome(o)).toMatchObject({ retryable: true, countsAsFailure: true, neverSent: false });
  });

  it('gives aborted when the caller abandons the call mid-call, long before the deadline, and sends none once abandoned', async () => {
    const slow = await startBackend(() => ({ status: 200, delayMs: 1500 }));
    const stop = new CallAbandon();
    setTimeout(() => stop.abandon(), 100);
    const o = await newCaller('p').call({
      service: 's',
      config: svc({ endpoint: slow.url }),
      operation: op('GET', '/'),
      parameters: {},
      timeoutMs: 5000,
      abandon: stop,
    });
    expect(o.kind).toBe('aborted');
    expect(o.durationMs).toBeLessThan(1200);
    // The backend sees the connection given up.
    for (let i = 0; i < 100 && slow.requests[0]?.abandonedAt === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    expect(slow.requests[0]?.abandonedAt).toBeDefined();
    // Abandoned before it starts: it is not sent at all.
    const again = await newCaller('p').call({
      service: 's',
      config: svc({ endpoint: slow.url }),
      operation: op('GET', '/'),
      parameters: {},
      timeoutMs: 5000,
      abandon: stop,
    });
    expect(again.kind).toBe('aborted');
    expect(slow.requests).toHaveLength(1);
    await slow.close();
  });

  it('ends a call still waiting for a connection at its deadline, and never sends it afterwards', async () => {
    const slow = await startBackend(() => ({ status: 200, delayMs: 600 }));
    // One connection: the second call waits behind the first.
    const one = new BackendCaller({ redis, keyPrefix: 'p', maxSockets: 1 });
    callers.push(one);
    const call = (timeoutMs: number) =>
      one.call({ service: 's', config: svc({ endpoint: slow.url }), operation: op('GET', '/'), parameters: {}, timeoutMs });
    const first = call(5000);
    const queued = await call(150);
    expect(queued.kind).toBe('timeout');
    expect(queued.durationMs).toBeLessThan(500);
    expect(await first).toMatchObject({ kind: 'response', status: 200 });
    // The connection is free again: the timed-out call was dropped, not sent late.
    await new Promise((r) => setTimeout(r, 200));
    expect(slow.requests).toHaveLength(1);
    await slow.close();
  });

  it('gives a never-sent network outcome when nothing listens', async () => {
    const port = await freePort();
    const o = await newCaller('p').call({
      service: 's',
      config: svc({ endpoint: `http://127.0.0.1:${port}` }),
      operation: op('POST', '/'),
      parameters: {},
      timeoutMs: 2000,
    });
    expect(o).toMatchObject({ kind: 'network', code: 'ECONNREFUSED' });
    expect(classifyOutcome(o)).toMatchObject({ retryable: true, countsAsFailure: true, neverSent: true });
  });

  it('does not follow redirects (a redirect could carry credentials off the endpoint)', async () => {
    const other = await startBackend();
    const redirecting = await startBackend(() => ({ status: 302, headers: { location: `${other.url}/steal` } }));
    const o = await newCaller('p').call({
      service: 's',
      config: svc({ endpoint: redirecting.url, auth: { type: 'bearer', credentials: { token: 'tok-r' } } }),
      operation: op('GET', '/'),
      parameters: {},
      timeoutMs: 2000,
    });
    expect(o).toMatchObject({ kind: 'response', status: 302 });
    expect(other.requests).toHaveLength(0);
    await other.close();
    await redirecting.close();
  });

  it('reads bodies as JSON, as text when they are not JSON, and as nothing when empty; headers lower-cased', async () => {
    const shapes = await startBackend((req) =>
      req.path === '/json'
        ? { body: { a: 1 }, headers: { 'X-Trace': 't1' } }
        : req.path === '/text'
          ? { body: 'plain words' }
          : { status: 204 },
    );
    const call = (path: string) => getFrom(shapes.url, path);
    expect(await call('/json')).toMatchObject({
      kind: 'response',
      status: 200,
      data: { a: 1 },
      headers: { 'x-trace': 't1', 'content-type': 'application/json' },
    });
    expect(await call('/text')).toMatchObject({ kind: 'response', status: 200, data: 'plain words' });
    const empty = await call('/empty');
    expect(empty).toMatchObject({ kind: 'response', status: 204 });
    expect((empty as { data?: unknown }).data).toBeUndefined();
    await shapes.close();
  });

  it('a body over the limit, and a connection cut before the answer, are network outcomes', async () => {
    const odd = await startBackend((req) => (req.path === '/big' ? { body: 'x'.repeat(64 * 1024) } : { destroy: true }));
    const small = new BackendCaller({ redis, keyPrefix: 'p', maxResponseBytes: 1024 });
    callers.push(small);
    const call = (path: string) =>
      small.call({ service: 's', config: svc({ endpoint: odd.url }), operation: op('GET', path), parameters: {}, timeoutMs: 2000 });
    expect(await call('/big')).toMatchObject({ kind: 'network', code: 'RESPONSE_TOO_LARGE' });
    const cut = await call('/cut');
    expect(cut).toMatchObject({ kind: 'network', code: 'ECONNRESET' });
    expect(classifyOutcome(cut)).toMatchObject({ ok: false, retryable: true, countsAsFailure: true, neverSent: false });
    await odd.close();
  });

  it('refuses a request that would leave the endpoint without sending it', async () => {
    const o = await newCaller('p').call({
      service: 's',
      config: svc({ endpoint: backend.url }),
      operation: op('GET', '/f/{name}'),
      parameters: { name: '..' },
      timeoutMs: 2000,
    });
    expect(o.kind).toBe('not_sent');
    expect(backend.requests).toHaveLength(0);
  });
});

describe('classifyOutcome', () => {
  const res = (status: number, headers: Record<string, string> = {}): BackendOutcome => ({
    kind: 'response',
    status,
    headers,
    data: undefined,
    durationMs: 1,
  });
  it.each([
    [200, true, false, false],
    [404, false, false, false],
    [400, false, false, false],
    [408, false, true, false],
    [429, false, true, false],
    [500, false, true, true],
    [503, false, true, true],
    [501, false, false, true],
  ])('status %i → ok %s, retryable %s, counts against the breaker %s', (status, ok, retryable, counts) => {
    expect(classifyOutcome(res(status))).toMatchObject({ ok, retryable, countsAsFailure: counts });
  });

  it('reads Retry-After from 429 and 503, as seconds or a date', () => {
    expect(classifyOutcome(res(429, { 'retry-after': '2' })).retryAfterMs).toBe(2000);
    expect(classifyOutcome(res(503, { 'retry-after': '1' })).retryAfterMs).toBe(1000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('999999', now)).toBe(3_600_000);
  });
});
