import net from 'node:net';
import request from 'supertest';
import {
  freePort,
  startBackend,
  startNodeProcess,
  startRedisServer,
  testRedisUrl,
  uniquePrefix,
  type RunningProcess,
  type TestBackend,
  API,
  WORKER,
} from '@mcp-gateway/testing';

/** SIGTERM and Redis outages with the real entry points: every accepted request still ends. */

let backend: TestBackend;
const procs: RunningProcess[] = [];

beforeAll(async () => {
  backend = await startBackend((req) => ({
    status: 200,
    body: { n: (req.body as { n?: number } | undefined)?.n ?? null },
    delayMs: Number(req.query.ms ?? 0) || 800,
  }));
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL', 1000)));
  await backend.close();
});

async function cluster(extra: Record<string, string>, redisUrl = testRedisUrl()) {
  const port = await freePort();
  const env = {
    REDIS_URL: redisUrl,
    MCP_REDIS_KEY_PREFIX: uniquePrefix('life'),
    MCP_SERVICES: 'svc',
    MCP_SERVICE_SVC_ENDPOINT: backend.url,
    MCP_SERVICE_SVC_CONCURRENCY: '20',
    PORT: String(port),
    HOST: '127.0.0.1',
    NODE_ENV: 'test',
    ...extra,
  };
  const worker = startNodeProcess(WORKER, env);
  const api = startNodeProcess(API, env);
  procs.push(worker, api);
  await Promise.all([worker.waitForLog((l) => l.msg === 'worker ready'), api.waitForLog((l) => l.msg === 'api ready')]);
  return { env, worker, api, http: request(`http://127.0.0.1:${port}`), port };
}

/** Resolves once the API holds `n` sync waiters (its own gauge), so a signal comes after they arrived. */
async function holding(c: Awaited<ReturnType<typeof cluster>>, n: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const text = (await c.http.get('/metrics')).text;
    if (Number(/^mcp_gateway_sync_waiters (\d+)/m.exec(text)?.[1]) >= n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the API never held ${n} sync waiters`);
}

const exited = (p: RunningProcess) =>
  new Promise<number | null>((r) => (p.child.exitCode !== null ? r(p.child.exitCode) : p.child.once('exit', (c) => r(c))));

it('SIGTERM on the API: readiness fails, new requests are refused, in-flight sync waits finish before exit', async () => {
  const c = await cluster({ SHUTDOWN_GRACE_MS: '5000' });
  expect((await c.http.get('/mcp/health/ready')).status).toBe(200);
  const inflight = Array.from({ length: 5 }, (_, n) =>
    c.http.post('/mcp/request').query({ ms: 1500 }).send({ service: 'svc', operation: 'op', parameters: { n } }),
  );
  const all = Promise.all(inflight);
  await holding(c, 5);
  c.api.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 100));
  // Stopping: no new connection is taken (a load balancer sees readiness fail / the port closed).
  const probe = await c.http.get('/mcp/health/ready').then(
    (r) => r.status,
    (e: Error) => e.message,
  );
  expect([503, expect.stringMatching(/ECONNREFUSED|socket hang up/)]).toContainEqual(probe);
  const fresh = await c.http
    .post('/mcp/request')
    .send({ service: 'svc', operation: 'op' })
    .then(
      (r) => r.status,
      (e: Error) => e.message,
    );
  expect([503, expect.stringMatching(/ECONNREFUSED|socket hang up/)]).toContainEqual(fresh);
  const results = await all;
  expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
  expect(results.map((r) => r.body.data.n).sort()).toEqual([0, 1, 2, 3, 4]);
  expect(await exited(c.api)).toBe(0);
});

it('SIGTERM on the API with a short grace: waiting callers get 202 and their poll link; the jobs still finish', async () => {
  const c = await cluster({ SHUTDOWN_GRACE_MS: '200' });
  const inflight = Promise.all(
    Array.from({ length: 4 }, (_, n) =>
      c.http.post('/mcp/request').query({ ms: 1500 }).send({ service: 'svc', operation: 'op', parameters: { n } }),
    ),
  );
  // A long poll waits too: the release answers it with the state as it then is.
  const async = await c.http
    .post('/mcp/request')
    .set('Prefer', 'respond-async')
    .query({ ms: 1500 })
    .send({ service: 'svc', operation: 'op', parameters: { n: 9 } });
  const longPoll = c.http
    .get(async.headers.location!)
    .set('Prefer', 'wait=30')
    .then((r) => r);
  await holding(c, 5);
  c.api.child.kill('SIGTERM');
  const results = await inflight;
  expect(results.map((r) => r.status)).toEqual([202, 202, 202, 202]);
  for (const r of results) expect(r.headers.location).toBe(`/mcp/requests/${r.body.id}`);
  const polled = await longPoll;
  expect(polled.status).toBe(200);
  expect(polled.body).toMatchObject({ id: async.body.id, state: expect.stringMatching(/^(queued|active)$/) });
  expect(await exited(c.api)).toBe(0);
  // A new API process (any replica) answers the polls once the worker is done.
  const port = await freePort();
  const api2 = startNodeProcess(API, { ...c.env, PORT: String(port) });
  procs.push(api2);
  await api2.waitForLog((l) => l.msg === 'api ready');
  const http2 = request(`http://127.0.0.1:${port}`);
  for (const r of results) {
    let state = '';
    for (let i = 0; i < 60 && state !== 'completed'; i++) {
      state = (await http2.get(r.headers.location!)).body.state;
      if (state !== 'completed') await new Promise((res) => setTimeout(res, 100));
    }
    expect(state).toBe('completed');
  }
});

it('SIGTERM on a worker: it stops taking jobs and finishes its active ones; another worker does the rest', async () => {
  const c = await cluster({ SHUTDOWN_GRACE_MS: '5000', MCP_SERVICE_SVC_CONCURRENCY: '2' });
  const second = startNodeProcess(WORKER, c.env);
  procs.push(second);
  await second.waitForLog((l) => l.msg === 'worker ready');
  const before = backend.requests.length;
  const accepted = await Promise.all(
    Array.from({ length: 12 }, (_, n) =>
      c.http
        .post('/mcp/request')
        .set('Prefer', 'respond-async')
        .query({ ms: 300 })
        .send({ service: 'svc', operation: 'op', parameters: { n } }),
    ),
  );
  expect(accepted.every((r) => r.status === 202)).toBe(true);
  await new Promise((r) => setTimeout(r, 150));
  c.worker.child.kill('SIGTERM');
  expect(await exited(c.worker)).toBe(0);
  const states = await Promise.all(
    accepted.map(async (r) => {
      for (let i = 0; i < 80; i++) {
        const s = (await c.http.get(r.headers.location!)).body.state;
        if (s === 'completed' || s === 'failed') return s;
        await new Promise((res) => setTimeout(res, 100));
      }
      return 'lost';
    }),
  );
  expect(states).toEqual(Array(12).fill('completed'));
  // Each request reached the backend exactly once: nothing was dropped or repeated by the stop.
  expect(backend.requests.length - before).toBe(12);
  const finishedByFirst = c.worker.logLines().filter((l) => l.msg === 'request finished').length;
  expect(finishedByFirst).toBeGreaterThanOrEqual(1);
});

it('kill -9 of a worker mid-call: the other takes its jobs over, and the calls it had in flight (POST) are not sent twice', async () => {
  // A short lock: the killed worker's jobs are taken over after about a second.
  const c = await cluster({ WORKER_LOCK_MS: '1000', MCP_SERVICE_SVC_CONCURRENCY: '3' });
  const second = startNodeProcess(WORKER, c.env);
  procs.push(second);
  const { workerId: survivor } = await second.waitForLog((l) => l.msg === 'worker ready');
  const victim = String((await c.worker.waitForLog((l) => l.msg === 'worker ready')).workerId);
  const before = backend.requests.length;
  const accepted = await Promise.all(
    Array.from({ length: 9 }, (_, n) =>
      c.http.post('/mcp/request').set('Prefer', 'respond-async').send({ service: 'svc', operation: 'op', parameters: { n } }),
    ),
  );
  expect(accepted.every((r) => r.status === 202)).toBe(true);
  // Killed once it has calls out (each takes 800 ms at the backend).
  for (let i = 0; i < 100 && !backend.requests.slice(before).some((r) => r.headers['x-gateway-worker'] === victim); i++)
    await new Promise((r) => setTimeout(r, 10));
  c.worker.child.kill('SIGKILL');
  await exited(c.worker);
  const inFlightAtKill = new Set(
    backend.requests
      .slice(before)
      .filter((r) => r.headers['x-gateway-worker'] === victim)
      .map((r) => String(r.headers['idempotency-key'])),
  );
  expect(inFlightAtKill.size).toBeGreaterThanOrEqual(1);
  const ended = await Promise.all(
    accepted.map(async (r) => {
      for (let i = 0; i < 100; i++) {
        const body = (await c.http.get(r.headers.location!)).body;
        if (body.state === 'completed' || body.state === 'failed') return body;
        await new Promise((res) => setTimeout(res, 100));
      }
      return { id: r.body.id, state: 'lost' };
    }),
  );
  const calls = new Map<string, number>();
  for (const r of backend.requests.slice(before))
    calls.set(String(r.headers['idempotency-key']), (calls.get(String(r.headers['idempotency-key'])) ?? 0) + 1);
  for (const body of ended) {
    // Every request ended, and none reached the backend twice.
    expect(calls.get(body.id) ?? 0).toBeLessThanOrEqual(1);
    if (inFlightAtKill.has(body.id)) {
      // Its call may have been made: it ends saying the outcome is unknown, rather than calling again.
      expect(body).toMatchObject({ state: 'failed', error: { code: 'BACKEND_ERROR', retryable: false, details: { outcome: 'unknown' } } });
    } else if (body.state === 'failed') {
      // Taken by the killed worker an instant before its call went out: also unknown, and never called.
      expect(body).toMatchObject({ error: { code: 'BACKEND_ERROR', details: { outcome: 'unknown' } } });
      expect(calls.get(body.id)).toBeUndefined();
    } else {
      expect(body).toMatchObject({ state: 'completed', status: 'success' });
    }
  }
  // The survivor made every call that completed.
  const completed = ended.filter((b) => b.state === 'completed').length;
  expect(completed).toBeGreaterThanOrEqual(9 - 3);
  expect(backend.requests.slice(before).filter((r) => r.headers['x-gateway-worker'] === survivor).length).toBe(completed);
});

it('Redis down: the API answers 503 UNAVAILABLE at once; when Redis is back, API and workers carry on by themselves', async () => {
  const redis = await startRedisServer();
  const port = Number(new URL(redis.url).port);
  const c = await cluster({ SHUTDOWN_GRACE_MS: '1000' }, redis.url);
  expect(
    (
      await c.http
        .post('/mcp/request')
        .send({ service: 'svc', operation: 'op', parameters: { n: 1 } })
        .query({ ms: 10 })
    ).status,
  ).toBe(200);
  await redis.stop();
  const started = Date.now();
  const down = await c.http.post('/mcp/request').send({ service: 'svc', operation: 'op', parameters: { n: 2 } });
  expect(down.status).toBe(503);
  expect(down.body.error.code).toBe('UNAVAILABLE');
  expect(down.headers['retry-after']).toBe('1');
  expect(Date.now() - started).toBeLessThan(1500);
  // The answer says only "Redis"; the API's log says what the Redis client said.
  const warned = await c.api.waitForLog((l) => l.msg === 'answered 503 UNAVAILABLE' && l.path === '/mcp/request');
  expect(warned.why).toMatch(/Stream isn't writeable|ECONNREFUSED|Connection is closed/);
  // Every endpoint that needs Redis says when to come back, in the header as in the body.
  const answers = {
    read: await c.http.get('/mcp/requests/some-id'),
    cancel: await c.http.delete('/mcp/requests/some-id'),
    services: await c.http.get('/mcp/services'),
    metrics: await c.http.get('/mcp/services/svc/metrics'),
  };
  for (const [what, res] of Object.entries(answers)) {
    expect({ what, status: res.status, code: res.body.error?.code, retryAfter: res.headers['retry-after'] }).toEqual({
      what,
      status: 503,
      code: 'UNAVAILABLE',
      retryAfter: '1',
    });
  }
  expect((await c.http.get('/mcp/health')).status).toBe(503);
  expect((await c.http.get('/mcp/health/ready')).status).toBe(503);
  expect((await c.http.get('/mcp/health/live')).status).toBe(200);
  const again = await startRedisServer({ port });
  procs.push({ stop: async () => void (await again.stop()) } as unknown as RunningProcess);
  let status = 0;
  for (let i = 0; i < 100 && status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
    status = (
      await c.http
        .post('/mcp/request')
        .send({ service: 'svc', operation: 'op', parameters: { n: 3 } })
        .query({ ms: 10 })
    ).status;
  }
  expect(status).toBe(200);
  expect((await c.http.get('/mcp/health/ready')).status).toBe(200);
});

it('SIGTERM with Redis gone for good: the worker and the API still exit, within their grace period plus the cleanup limit', async () => {
  const redis = await startRedisServer();
  const c = await cluster({ SHUTDOWN_GRACE_MS: '300' }, redis.url);
  expect(
    (
      await c.http
        .post('/mcp/request')
        .send({ service: 'svc', operation: 'op', parameters: { n: 1 } })
        .query({ ms: 10 })
    ).status,
  ).toBe(200);
  await redis.stop();
  const started = Date.now();
  const [worker, api] = [exited(c.worker), exited(c.api)];
  c.worker.child.kill('SIGTERM');
  c.api.child.kill('SIGTERM');
  // Before: their last Redis steps (unsubscribing, presence, stats) waited for a reconnect that never came.
  expect(await worker).toBe(0);
  expect(await api).toBe(0);
  // 300 ms of grace + the 5 s cleanup limit, and slack.
  expect(Date.now() - started).toBeLessThan(300 + 5000 + 3000);
  expect(
    c.worker
      .logLines()
      .some(
        (l) =>
          l.msg ===
          'stop did not finish within the grace period and the cleanup limit (a job still running, or Redis unreachable); its connections were closed',
      ),
  ).toBe(true);
  expect(c.api.logLines().some((l) => l.msg === 'stop did not finish (is Redis reachable?); its connections were closed')).toBe(true);
}, 20_000);

it('a worker whose WORKER_METRICS_PORT is taken stops before it takes a job, naming the variable', async () => {
  const holder = net.createServer();
  const port = await freePort();
  await new Promise<void>((r) => holder.listen(port, '127.0.0.1', () => r()));
  try {
    const worker = startNodeProcess(WORKER, {
      REDIS_URL: testRedisUrl(),
      MCP_REDIS_KEY_PREFIX: uniquePrefix('metricsport'),
      MCP_SERVICES: 'svc',
      MCP_SERVICE_SVC_ENDPOINT: backend.url,
      HOST: '127.0.0.1',
      NODE_ENV: 'test',
      WORKER_METRICS_PORT: String(port),
    });
    procs.push(worker);
    expect(await exited(worker)).toBe(1);
    expect(worker.output()).toContain(`WORKER_METRICS_PORT: cannot listen on 127.0.0.1:${port} (EADDRINUSE)`);
    expect(worker.logLines().some((l) => l.msg === 'worker ready')).toBe(false);
  } finally {
    holder.close();
  }
});

it('an API started while Redis does not answer says it is waiting for it, then serves once Redis is there', async () => {
  const port = await freePort();
  const apiPort = await freePort();
  const api = startNodeProcess(API, {
    REDIS_URL: `redis://127.0.0.1:${port}`,
    MCP_REDIS_KEY_PREFIX: uniquePrefix('late-redis'),
    MCP_SERVICES: 'svc',
    MCP_SERVICE_SVC_ENDPOINT: backend.url,
    PORT: String(apiPort),
    HOST: '127.0.0.1',
    NODE_ENV: 'test',
  });
  procs.push(api);
  // The URL as redactUrl gives it (a password would be hidden: see the config tests).
  const waiting = await api.waitForLog((l) => l.msg === 'still starting: waiting for Redis to answer', 30_000);
  expect(waiting).toMatchObject({ redis: `redis://127.0.0.1:${port}`, level: 40 });
  const redis = await startRedisServer({ port });
  try {
    await api.waitForLog((l) => l.msg === 'api ready', 30_000);
    expect((await request(`http://127.0.0.1:${apiPort}`).get('/mcp/health/ready')).status).toBe(200);
  } finally {
    await api.stop('SIGTERM', 5000);
    await redis.stop();
  }
}, 90_000);
