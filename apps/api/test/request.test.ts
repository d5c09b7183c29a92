import { freePort, startBackend, type TestBackend } from '@mcp-gateway/testing';
import { eventually, startGateway, type Running } from './harness';

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const SECRET = 'sk-live-planted-secret-0123456789';

// Each test has its own backend and gateway (its own key prefix): no request count, retry counter,
// circuit, queue or worker carries over from another test.
let backend: TestBackend;
let gw: Running;

beforeEach(async () => {
  ({ backend, gw } = await fixture());
});

afterEach(async () => {
  await gw.close();
  await backend.close();
});

async function fixture(): Promise<{ backend: TestBackend; gw: Running }> {
  const deadPort = await freePort();
  let flakyCalls = 0;
  const backend = await startBackend((req) => {
    const path = req.path.replace(/^\/api/, '');
    if (path.startsWith('/slow')) return { status: 200, body: { slow: true }, delayMs: Number(req.query.ms ?? 1500) };
    if (path === '/missing/x') return { status: 404, body: { error: 'no such thing' } };
    if (path.startsWith('/flaky')) {
      flakyCalls += 1;
      return flakyCalls % 3 === 0 ? { status: 200, body: { after: flakyCalls } } : { status: 503, body: { error: 'busy' } };
    }
    if (path.startsWith('/down')) return { status: 503, body: { error: 'down' } };
    // JSON as a backend may write it: spaced, with a number no double holds exactly.
    if (path === '/exact')
      return { status: 200, body: '{"n": 12345678901234567890, "price": 1.50}', headers: { 'content-type': 'application/json' } };
    if (path === '/text') return { status: 200, body: 'plain words' };
    return { status: 200, body: { method: req.method, path: req.path, query: req.query, body: req.body } };
  });
  const gw = await startGateway(
    {
      services: {
        users: {
          endpoint: `${backend.url}/api`,
          auth: { type: 'bearer', credentials: { token: SECRET } },
          operations: [
            {
              name: 'getUser',
              method: 'GET',
              path: '/users/{id}',
              parameters: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
            },
            {
              name: 'createUser',
              method: 'POST',
              path: '/users',
              parameters: {
                type: 'object',
                properties: { name: { type: 'string', minLength: 1 } },
                required: ['name'],
                additionalProperties: false,
              },
            },
            {
              name: 'search',
              method: 'GET',
              path: '/search',
              parameters: { type: 'object', properties: { q: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } } },
            },
            { name: 'slow', method: 'GET', path: '/slow', parameters: { type: 'object', properties: { ms: { type: 'integer' } } } },
            { name: 'slowWrite', method: 'POST', path: '/slow', parameters: { type: 'object', properties: { ms: { type: 'integer' } } } },
            { name: 'missing', method: 'GET', path: '/missing/x' },
            { name: 'flaky', method: 'GET', path: '/flaky' },
            { name: 'down', method: 'POST', path: '/down' },
            { name: 'exact', method: 'GET', path: '/exact' },
            { name: 'text', method: 'GET', path: '/text' },
          ],
        },
        // Its own deadline is 400 ms, and one failure opens its circuit.
        timed: {
          endpoint: `${backend.url}/api`,
          timeout: 400,
          circuitBreaker: { failureThreshold: 1, recoveryTimeout: 60_000, halfOpenMaxCalls: 1 },
          operations: [
            { name: 'slow', method: 'GET', path: '/slow', parameters: { type: 'object', properties: { ms: { type: 'integer' } } } },
          ],
        },
        dyn: { endpoint: `http://user:${SECRET}@127.0.0.1:${backend.port}/rpc?key=${SECRET}` },
        idle: { endpoint: backend.url },
        late: { endpoint: backend.url },
        // Nothing listens here: connections are refused, so no call ever reached a backend.
        gone: { endpoint: `http://127.0.0.1:${deadPort}` },
      },
    },
    ['users', 'dyn', 'gone', 'timed'],
  );
  return { backend, gw };
}

const post = (body: unknown) => gw.http.post('/mcp/request').send(body as object);

describe('POST /mcp/request (sync)', () => {
  it('calls the backend and answers the result with its metadata', async () => {
    const res = await post({ service: 'users', operation: 'getUser', parameters: { id: '42' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'success',
      data: { method: 'GET', path: '/api/users/42' },
      metadata: { service: 'users', operation: 'getUser', attempts: 1, backendStatus: 200 },
    });
    expect(typeof res.body.id).toBe('string');
    expect(res.body.metadata.queuedMs).toBeGreaterThanOrEqual(0);
    expect(res.body.metadata.processingTime).toBeGreaterThanOrEqual(0);
    expect(new Date(res.body.metadata.completedAt).getTime()).toBeGreaterThan(Date.now() - 10_000);
    const correlationId = res.headers['x-correlation-id'];
    expect(res.body.metadata.correlationId).toBe(correlationId);
    expect(backend.requests).toHaveLength(1);
    const seen = backend.requests[0]!;
    expect(seen.headers['x-correlation-id']).toBe(correlationId);
    expect(seen.headers.traceparent).toMatch(TRACEPARENT);
    expect(seen.headers['idempotency-key']).toBe(res.body.id);
    expect(seen.headers.authorization).toBe(`Bearer ${SECRET}`);
  });

  it('relays a JSON answer as the backend wrote it, in the sync answer and in the stored result', async () => {
    const res = await post({ service: 'users', operation: 'exact' });
    expect(res.status).toBe(200);
    // Parsed and serialized again, the number would come back as 12345678901234567000 and 1.50 as 1.5.
    expect(res.text).toContain('"data":{"n": 12345678901234567890, "price": 1.50},"metadata":{');
    expect(res.body).toMatchObject({ status: 'success', metadata: { operation: 'exact', backendStatus: 200 } });
    const polled = await gw.http.get(`/mcp/requests/${res.body.id as string}`);
    expect(polled.body).toMatchObject({ state: 'completed', data: { price: 1.5 } });
    const text = await post({ service: 'users', operation: 'text' });
    expect(text.body).toMatchObject({ status: 'success', data: 'plain words' });
  });

  it('takes the correlation id from the header, else from metadata, and continues the caller trace', async () => {
    const trace = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const a = await post({ service: 'users', operation: 'getUser', parameters: { id: '1' } })
      .set('X-Correlation-ID', 'corr-from-header')
      .set('traceparent', trace);
    expect(a.headers['x-correlation-id']).toBe('corr-from-header');
    expect(backend.requests[0]!.headers['x-correlation-id']).toBe('corr-from-header');
    expect(String(backend.requests[0]!.headers.traceparent)).toContain('0af7651916cd43dd8448eb211c80319c');
    const b = await post({
      service: 'users',
      operation: 'getUser',
      parameters: { id: '1' },
      metadata: { correlationId: 'corr-from-body' },
    });
    expect(b.headers['x-correlation-id']).toBe('corr-from-body');
    expect(b.body.metadata.correlationId).toBe('corr-from-body');
  });

  it('URL-encodes path parameters and keeps the base path', async () => {
    const res = await post({ service: 'users', operation: 'getUser', parameters: { id: 'a/b c?d' } });
    expect(res.status).toBe(200);
    expect(backend.requests[0]!.path).toBe('/api/users/a%2Fb%20c%3Fd');
  });

  it('sends the other parameters as query for GET and as JSON body otherwise', async () => {
    await post({ service: 'users', operation: 'search', parameters: { q: 'x y', tags: ['a', 'b'] } }).expect(200);
    expect(backend.requests[0]!.query).toEqual({ q: 'x y', tags: ['a', 'b'] });
    await post({ service: 'users', operation: 'createUser', parameters: { name: 'Ada' } }).expect(200);
    expect(backend.requests[1]!.method).toBe('POST');
    expect(backend.requests[1]!.body).toEqual({ name: 'Ada' });
    expect(backend.requests[1]!.headers['content-type']).toContain('application/json');
  });

  it('takes any operation of a service without a definition as POST {endpoint}/{operation}', async () => {
    const res = await post({ service: 'dyn', operation: 'doThing', parameters: { x: 1 } });
    expect(res.status).toBe(200);
    expect(backend.requests[0]).toMatchObject({ method: 'POST', path: '/rpc/doThing', body: { x: 1 } });
  });

  it('answers a backend 4xx as BACKEND_ERROR with its status and body, without retrying', async () => {
    const res = await post({ service: 'users', operation: 'missing' });
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({
      status: 'error',
      error: { code: 'BACKEND_ERROR', retryable: false, details: { error: 'no such thing' } },
      metadata: { backendStatus: 404, attempts: 1 },
    });
    expect(backend.requests).toHaveLength(1);
  });

  it('retries an idempotent call on 5xx and reports the attempts', async () => {
    const res = await post({ service: 'users', operation: 'flaky' });
    expect(res.status).toBe(200);
    expect(res.body.metadata.attempts).toBe(3);
    expect(backend.requests.filter((r) => r.path === '/api/flaky')).toHaveLength(3);
  });

  it('retries even a non-idempotent call when the connection was refused (it never reached the backend)', async () => {
    const res = await post({ service: 'gone', operation: 'createThing', parameters: { x: 1 } });
    expect(res.status).toBe(502);
    expect(res.body.error).toMatchObject({ code: 'BACKEND_ERROR', retryable: true });
    expect(res.body.error.message).toContain('ECONNREFUSED');
    expect(res.body.metadata.attempts).toBe(3);
  });

  it('does not retry a non-idempotent call that reached the backend', async () => {
    const res = await post({ service: 'users', operation: 'down' });
    expect(res.status).toBe(502);
    expect(res.body.metadata).toMatchObject({ attempts: 1, backendStatus: 503 });
    expect(backend.requests).toHaveLength(1);
  });

  it('answers TIMEOUT (504) when the deadline passes, with a link to poll', async () => {
    const started = Date.now();
    const res = await post({ service: 'users', operation: 'slow', parameters: { ms: 3000 }, metadata: { timeout: 400 } });
    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe('TIMEOUT');
    expect(Date.now() - started).toBeLessThan(2900);
    expect(res.headers.location).toBe(`/mcp/requests/${res.body.id}`);
    // A read that timed out may be tried again.
    const stored = await eventually(async () => {
      const r = await gw.http.get(`/mcp/requests/${res.body.id}`);
      return r.body.state === 'failed' ? r.body : undefined;
    });
    expect(stored.error).toMatchObject({ code: 'TIMEOUT', retryable: true });
  });

  it("a timeout counts against the breaker only on the service's own deadline, not on a shorter one a caller chose", async () => {
    const circuit = async () => (await gw.http.get('/mcp/services/timed/metrics')).body.circuit;
    // A caller's 150 ms deadline: TIMEOUT for that caller, and the circuit (threshold 1) stays closed.
    const short = await post({ service: 'timed', operation: 'slow', parameters: { ms: 1000 }, metadata: { timeout: 150 } });
    expect(short.status).toBe(504);
    await eventually(async () => ((await gw.http.get(`/mcp/requests/${short.body.id}`)).body.state === 'failed' ? true : undefined));
    expect(await circuit()).toMatchObject({ state: 'closed', failures: 0 });
    expect((await post({ service: 'timed', operation: 'slow', parameters: { ms: 1 } })).status).toBe(200);
    // The service's own 400 ms: the backend was too slow for what the service promises, and it counts.
    expect((await post({ service: 'timed', operation: 'slow', parameters: { ms: 1000 } })).status).toBe(504);
    expect(await eventually(async () => ((await circuit()).state === 'open' ? 'open' : undefined))).toBe('open');
    expect((await post({ service: 'timed', operation: 'slow', parameters: { ms: 1 } })).body.error.code).toBe('CIRCUIT_OPEN');
  });

  it('says a write that timed out at the backend may have been done, and is not to be repeated', async () => {
    const res = await post({ service: 'users', operation: 'slowWrite', parameters: { ms: 3000 }, metadata: { timeout: 400 } });
    expect(res.status).toBe(504);
    const stored = await eventually(async () => {
      const r = await gw.http.get(`/mcp/requests/${res.body.id}`);
      return r.body.state === 'failed' ? r.body : undefined;
    });
    expect(stored.error).toMatchObject({ code: 'TIMEOUT', retryable: false, details: { outcome: 'unknown' } });
    expect(stored.error.message).toMatch(/not idempotent and the backend may have carried it out, so calling it again could do it twice/);
    expect(backend.requests.filter((r) => r.path === '/api/slow' && r.method === 'POST')).toHaveLength(1);
  });
});

describe('async and Prefer: wait', () => {
  it('answers 202 with Location for Prefer: respond-async, and the poll gives the result', async () => {
    const res = await post({ service: 'users', operation: 'getUser', parameters: { id: '7' } }).set('Prefer', 'respond-async');
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ id: expect.any(String), state: 'queued' });
    expect(res.headers.location).toBe(`/mcp/requests/${res.body.id}`);
    const done = await eventually(async () => {
      const p = await gw.http.get(res.headers.location!);
      return p.body.state === 'completed' ? p : undefined;
    });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ id: res.body.id, state: 'completed', status: 'success', data: { path: '/api/users/7' } });
  });

  it('treats ?wait=false as async', async () => {
    const res = await gw.http.post('/mcp/request?wait=false').send({ service: 'users', operation: 'getUser', parameters: { id: '8' } });
    expect(res.status).toBe(202);
  });

  it('waits at most N seconds with Prefer: wait=N, then 202 while the job goes on', async () => {
    const started = Date.now();
    const res = await post({ service: 'users', operation: 'slow', parameters: { ms: 2500 } }).set('Prefer', 'wait=1');
    const waited = Date.now() - started;
    expect(res.status).toBe(202);
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(2400);
    expect(['active', 'queued']).toContain(res.body.state);
    const done = await eventually(async () => {
      const p = await gw.http.get(`/mcp/requests/${res.body.id}`);
      return p.body.state === 'completed' ? p : undefined;
    });
    expect(done.body.data).toEqual({ slow: true });
  });

  it('a poll with Prefer: wait=N waits for the request to end, or answers its state when N runs out first', async () => {
    const res = await post({ service: 'users', operation: 'slow', parameters: { ms: 400 } }).set('Prefer', 'respond-async');
    expect(res.status).toBe(202);
    const short = await gw.http.get(res.headers.location!).set('Prefer', 'wait=0.05');
    expect(short.status).toBe(200);
    expect(['queued', 'active']).toContain(short.body.state);
    const long = await gw.http.get(res.headers.location!).set('Prefer', 'wait=10');
    expect(long.status).toBe(200);
    expect(long.body).toMatchObject({ id: res.body.id, state: 'completed', status: 'success', data: { slow: true } });
    // The same answer, byte for byte, as a plain read of the stored status.
    const plain = await gw.http.get(res.headers.location!);
    expect(JSON.stringify(long.body)).toBe(JSON.stringify(plain.body));
    expect((await gw.http.get('/mcp/requests/never-seen-either').set('Prefer', 'wait=10')).status).toBe(404);
  });

  it('a waiting poll ends when its caller goes away', async () => {
    const res = await post({ service: 'idle', operation: 'never' }).set('Prefer', 'respond-async');
    const waiters = () => gw.api.deps.waiter.size;
    const before = waiters();
    const controller = new AbortController();
    const poll = fetch(`http://127.0.0.1:${gw.api.address!.port}/mcp/requests/${res.body.id}`, {
      headers: { prefer: 'wait=30' },
      signal: controller.signal,
    }).catch((e: unknown) => e);
    await eventually(async () => (waiters() === before + 1 ? true : undefined));
    controller.abort();
    expect(await poll).toMatchObject({ name: 'AbortError' });
    await eventually(async () => (waiters() === before ? true : undefined));
  });

  it('counts a request in flight until it is answered or its caller goes away, once', async () => {
    const inFlight = () => gw.api.deps.lifecycle.inFlight;
    await eventually(async () => (inFlight() === 0 ? true : undefined));
    const controller = new AbortController();
    const url = `http://127.0.0.1:${gw.api.address!.port}/mcp/request`;
    const held = fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ service: 'idle', operation: 'never' }),
      signal: controller.signal,
    }).catch((e: unknown) => e);
    await eventually(async () => (inFlight() === 1 ? true : undefined));
    const answered = await Promise.all([
      post({ service: 'users', operation: 'getUser', parameters: { id: '1' } }),
      gw.http.get('/mcp/requests/never-seen'),
      post({ service: 'nope', operation: 'x' }),
    ]);
    expect(answered.map((r) => r.status)).toEqual([200, 404, 404]);
    await eventually(async () => (inFlight() === 1 ? true : undefined));
    controller.abort();
    expect(await held).toMatchObject({ name: 'AbortError' });
    await eventually(async () => (inFlight() === 0 ? true : undefined));
    // Not counted down twice (an answer both finishes and closes).
    await new Promise((r) => setTimeout(r, 100));
    expect(inFlight()).toBe(0);
  });

  it('answers 404 NOT_FOUND for an unknown id and 400 for a malformed one', async () => {
    const res = await gw.http.get('/mcp/requests/never-seen');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
    expect((await gw.http.get('/mcp/requests/a:b')).status).toBe(400);
  });
});

describe('idempotency', () => {
  it('joins the same id to one job: one backend call, the same result for both', async () => {
    const body = { id: 'idem-join-1', service: 'users', operation: 'slow', parameters: { ms: 300 } };
    const [a, b] = await Promise.all([post(body), post(body)]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.body).toEqual(b.body);
    expect(backend.requests.filter((r) => r.path === '/api/slow')).toHaveLength(1);
    const c = await post(body);
    expect(c.body).toEqual(a.body);
    expect(backend.requests.filter((r) => r.path === '/api/slow')).toHaveLength(1);
  });

  it('answers 409 CONFLICT for the same id with a different body', async () => {
    await post({ id: 'idem-conflict-1', service: 'users', operation: 'getUser', parameters: { id: '1' } }).expect(200);
    const res = await post({ id: 'idem-conflict-1', service: 'users', operation: 'getUser', parameters: { id: '2' } });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('CONFLICT');
  });
});

describe('cancel', () => {
  it('cancels a queued request; it never reaches the backend; a second cancel is 409', async () => {
    const res = await post({ service: 'idle', operation: 'anything' }).set('Prefer', 'respond-async');
    expect(res.status).toBe(202);
    const del = await gw.http.delete(`/mcp/requests/${res.body.id}`);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ state: 'cancelled', status: 'error', error: { code: 'CANCELLED' } });
    const poll = await gw.http.get(`/mcp/requests/${res.body.id}`);
    expect(poll.body.state).toBe('cancelled');
    const again = await gw.http.delete(`/mcp/requests/${res.body.id}`);
    expect(again.status).toBe(409);
    expect((await gw.http.delete('/mcp/requests/unknown-id')).status).toBe(404);
  });

  it('a request cancelled before it ran still counts: in the service numbers and in /metrics', async () => {
    const counted = async () => {
      const counts = (await gw.http.get('/mcp/services/idle/metrics')).body.counts as Record<string, number>;
      const text = (await gw.http.get('/metrics')).text;
      const series = /mcp_gateway_requests_total\{service="idle",operation="_dynamic",outcome="CANCELLED"\} (\d+)/.exec(text);
      return { stats: counts.CANCELLED ?? 0, metric: Number(series?.[1] ?? 0) };
    };
    const before = await counted();
    const res = await post({ service: 'idle', operation: 'never' }).set('Prefer', 'respond-async');
    expect(res.status).toBe(202);
    expect((await gw.http.delete(`/mcp/requests/${res.body.id}`)).status).toBe(200);
    expect(
      await eventually(async () => {
        const now = await counted();
        return now.metric === before.metric + 1 ? now : undefined;
      }),
    ).toEqual({ stats: before.stats + 1, metric: before.metric + 1 });
  });

  it('cancels a running request: CANCELLED at once, and the worker abandons its call', async () => {
    const res = await post({ service: 'users', operation: 'slow', parameters: { ms: 5000 } }).set('Prefer', 'respond-async');
    expect(res.status).toBe(202);
    const call = await eventually(async () => backend.requests.find((r) => r.headers['idempotency-key'] === res.body.id));
    expect((await gw.http.get(`/mcp/requests/${res.body.id}`)).body.state).toBe('active');
    const del = await gw.http.delete(`/mcp/requests/${res.body.id}`);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({
      id: res.body.id,
      state: 'cancelled',
      status: 'error',
      error: { code: 'CANCELLED', retryable: false, details: { state: 'active' } },
    });
    // The attempt in flight was made: it counts.
    expect(del.body.metadata.attempts).toBe(1);
    expect(del.body.error.message).toMatch(/in flight.*may or may not have acted/);
    // The backend sees the call given up long before its answer would come (5 s).
    await eventually(async () => (call.abandonedAt !== undefined ? true : undefined), 3000);
    expect(call.abandonedAt! - call.receivedAt).toBeLessThan(5000);
    // The abandoned call's own end does not overwrite the result.
    await new Promise((r) => setTimeout(r, 100));
    expect((await gw.http.get(`/mcp/requests/${res.body.id}`)).body).toMatchObject({ state: 'cancelled', error: { code: 'CANCELLED' } });
    expect((await gw.http.delete(`/mcp/requests/${res.body.id}`)).status).toBe(409);
  });

  it('never sends a job whose deadline passed while it waited', async () => {
    const res = await post({ service: 'late', operation: 'op', metadata: { timeout: 200 } }).set('Prefer', 'respond-async');
    await new Promise((r) => setTimeout(r, 400));
    await gw.startWorkers(['late']);
    const done = await eventually(async () => {
      const p = await gw.http.get(`/mcp/requests/${res.body.id}`);
      return p.body.state === 'failed' ? p : undefined;
    });
    expect(done.body).toMatchObject({ error: { code: 'TIMEOUT' }, metadata: { attempts: 0 } });
    expect(backend.requests.filter((r) => r.path === '/op')).toHaveLength(0);
  });
});

describe('discovery endpoints', () => {
  it('GET /mcp/health reports Redis, workers and services', async () => {
    const res = await gw.http.get('/mcp/health');
    expect(res.status).toBe(200);
    expect(res.body.redis).toBe('up');
    expect(res.body.workers.count).toBeGreaterThanOrEqual(1);
    expect(res.body.services.users).toMatchObject({ status: 'healthy', circuit: 'closed' });
    expect(res.body.services.idle.status).toBe('unavailable');
    expect(res.body.status).toBe('degraded');
  });

  it('GET /mcp/services lists services without any credential', async () => {
    const res = await gw.http.get('/mcp/services');
    expect(res.status).toBe(200);
    const users = res.body.services.find((s: { name: string }) => s.name === 'users');
    expect(users).toMatchObject({ endpoint: `${backend.url}/api`, operations: 10, circuit: 'closed', status: 'healthy' });
    const dyn = res.body.services.find((s: { name: string }) => s.name === 'dyn');
    expect(dyn.endpoint).toBe(`${backend.url}/rpc`);
    expect(res.text).not.toContain(SECRET);
  });

  it('GET /mcp/services/:name/definition gives the operations', async () => {
    const res = await gw.http.get('/mcp/services/users/definition');
    expect(res.status).toBe(200);
    expect(res.body.source).toBe('config');
    expect(res.body.operations.map((o: { name: string }) => o.name)).toContain('createUser');
    expect((await gw.http.get('/mcp/services/nope/definition')).body.error.code).toBe('UNKNOWN_SERVICE');
  });

  it('every response carries X-Correlation-ID, errors too', async () => {
    const res = await gw.http.get('/no/such/route');
    expect(res.status).toBe(404);
    expect(res.headers['x-correlation-id']).toMatch(/\S+/);
    expect(res.body.metadata.correlationId).toBe(res.headers['x-correlation-id']);
  });
});
