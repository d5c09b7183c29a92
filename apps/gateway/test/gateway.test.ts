import Redis from 'ioredis';
import net from 'node:net';
import request from 'supertest';
import { ApiServer } from '@mcp-gateway/api';
import { MCPGateway, GatewayConfigManager, startDemoBackend } from '@mcp-gateway/gateway';
import type { GatewayConfigInput } from '@mcp-gateway/config';
import { createLogger } from '@mcp-gateway/observability';
import { redisAnswers } from '@mcp-gateway/redis';
import { freePort, startBackend, startNodeProcess, testConfig, testRedisUrl, uniquePrefix, DEV } from '@mcp-gateway/testing';

/**
 * A gateway start that must fail as `refusal` says, beside an API allowed to serve on the same Redis
 * and key prefix: afterwards no worker runs, so a request queued then waits, its backend never called.
 */
async function failedStartLeavesNoWorker(input: GatewayConfigInput, refusal: RegExp, options: { onApiPort?: boolean } = {}): Promise<void> {
  const backend = await startBackend();
  const logger = createLogger({ level: 'silent' });
  const services = { queued: { endpoint: backend.url } };
  const api = new ApiServer({ config: testConfig({ services }), logger });
  const { port } = await api.start(0, '127.0.0.1');
  const http = request(`http://127.0.0.1:${port}`);
  try {
    const gateway = new MCPGateway(testConfig({ ...input, services, redis: api.deps.config.redis }), { logger });
    await expect(gateway.start(options.onApiPort ? port : 0)).rejects.toThrow(refusal);
    expect((await http.get('/mcp/health')).body.workers).toEqual({ count: 0 });
    const accepted = await http.post('/mcp/request').set('Prefer', 'respond-async').send({ service: 'queued', operation: 'op' });
    expect(accepted.status).toBe(202);
    await new Promise((r) => setTimeout(r, 300));
    expect((await http.get(`/mcp/requests/${accepted.body.id}`)).body.state).toBe('queued');
    expect(backend.requests).toHaveLength(0);
  } finally {
    await api.stop();
    await backend.close();
  }
}

describe('MCPGateway (programmatic)', () => {
  it('starts API and workers in one process, serves a round trip, and stops', async () => {
    const demo = await startDemoBackend(0);
    const dev = GatewayConfigManager.createDevelopmentConfig();
    const config = testConfig({ services: { demo: { ...dev.services.demo!, endpoint: demo.url } } });
    const gateway = new MCPGateway(config, { logger: createLogger({ level: 'silent' }) });
    const { port } = await gateway.start(0);
    try {
      const res = await request(`http://127.0.0.1:${port}`)
        .post('/mcp/request')
        .send({ service: 'demo', operation: 'echo', parameters: { hello: 'world' } });
      expect(res.status).toBe(200);
      expect(res.body.data.echo).toEqual({ hello: 'world' });
      const item = await request(`http://127.0.0.1:${port}`)
        .post('/mcp/request')
        .send({ service: 'demo', operation: 'getItem', parameters: { id: 'abc' } });
      expect(item.body.data).toMatchObject({ id: 'abc', name: 'Item abc' });
    } finally {
      await gateway.stop();
      await demo.close();
    }
    await expect(request(`http://127.0.0.1:${port}`).get('/mcp/health')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('a stopping gateway takes no new job while its API lets in-flight requests finish (API and workers stop together)', async () => {
    const backend = await startBackend((req) =>
      req.path === '/hold' ? { status: 200, body: { held: true }, delayMs: 1500 } : { status: 200, body: {} },
    );
    const logger = createLogger({ level: 'silent' });
    const services = { svc: { endpoint: backend.url } };
    const gateway = new MCPGateway(testConfig({ services, shutdownGraceMs: 5000 }), { logger });
    const { port } = await gateway.start(0);
    // Another API on the same Redis and prefix, to queue work while the gateway stops (no worker of its own).
    const other = new ApiServer({ config: testConfig({ services, redis: gateway.config.redis }), logger });
    const http = request(`http://127.0.0.1:${(await other.start(0, '127.0.0.1')).port}`);
    try {
      const held = request(`http://127.0.0.1:${port}`)
        .post('/mcp/request')
        .send({ service: 'svc', operation: 'hold' })
        .then((r) => r);
      await new Promise((r) => setTimeout(r, 300));
      const stopped = gateway.stop();
      await new Promise((r) => setTimeout(r, 100));
      const late = await http.post('/mcp/request').set('Prefer', 'respond-async').send({ service: 'svc', operation: 'later' });
      expect(late.status).toBe(202);
      // The call in flight ends normally; the job queued after the stop began is left for other workers.
      expect((await held).status).toBe(200);
      await stopped;
      expect((await http.get(`/mcp/requests/${late.body.id}`)).body.state).toBe('queued');
      expect(backend.requests.map((r) => r.path)).toEqual(['/hold']);
    } finally {
      await other.stop();
      await backend.close();
    }
  });

  it('production with no inbound credential refuses to start before anything runs: no worker takes a job', async () => {
    await failedStartLeavesNoWorker({ environment: 'production' }, /MCP_GATEWAY_API_KEYS.*production refuses to serve/);
  });

  it('a start that fails part way (the port is taken) leaves no worker running', async () => {
    await failedStartLeavesNoWorker({}, /EADDRINUSE/, { onApiPort: true });
  });

  it('refuses an invalid config at construction, naming the field', () => {
    expect(() => new MCPGateway({ services: { bad: { endpoint: 'ftp://x' } } })).toThrow(/services\.bad\.endpoint/);
  });
});

describe('npm run gateway:dev entry point', () => {
  it('serves the demo backend using REDIS_URL when it answers', async () => {
    const port = await freePort();
    const prefix = uniquePrefix('dev');
    const proc = startNodeProcess(DEV, { REDIS_URL: testRedisUrl(), PORT: String(port), LOG_LEVEL: 'info', MCP_REDIS_KEY_PREFIX: prefix });
    try {
      await proc.waitForLog((l) => String(l.msg).startsWith('gateway:dev ready'));
      const res = await request(`http://127.0.0.1:${port}`)
        .post('/mcp/request')
        .send({ service: 'demo', operation: 'echo', parameters: { a: 1 } });
      expect(res.status).toBe(200);
      expect(res.body.data.echo).toEqual({ a: 1 });
      expect(proc.output()).not.toMatch(/started Redis via/);
      // Its keys under the prefix it was given (its own, `mcp-dev`, by default): not another gateway's.
      const redis = new Redis(testRedisUrl());
      try {
        expect((await redis.keys(`${prefix}:*`)).length).toBeGreaterThan(0);
      } finally {
        redis.disconnect();
      }
    } finally {
      expect(await proc.stop('SIGTERM')).toBe(0);
    }
  });

  it('a bad PORT stops it at once with a message naming PORT', async () => {
    for (const [port, words] of [
      ['http', 'must be a whole number'],
      ['70000', '65535'],
    ] as const) {
      const proc = startNodeProcess(DEV, { REDIS_URL: testRedisUrl(), PORT: port, LOG_LEVEL: 'info' });
      const code = await new Promise<number | null>((resolve) => proc.child.once('exit', resolve));
      expect(code).toBe(1);
      expect(proc.output()).toMatch(new RegExp(`^\\s+- PORT: .*${words}`, 'm'));
      expect(proc.output()).not.toMatch(/gateway:dev ready/);
    }
  });

  it('stops the private redis-server it started when it cannot go on (its port is taken)', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const proc = startNodeProcess(DEV, { REDIS_URL: `redis://127.0.0.1:${await freePort()}`, PORT: String(port), LOG_LEVEL: 'info' });
      const exited = new Promise<number | null>((resolve) => proc.child.once('exit', resolve));
      const line = await proc.waitForLog((l) => String(l.msg).includes('started Redis via redis-server'));
      expect(await exited).toBe(1);
      expect(proc.output()).toMatch(/EADDRINUSE/);
      expect(await redisAnswers(String(line.redisUrl))).toBe(false);
    } finally {
      taken.close();
    }
  });

  it('a bad DEMO_BACKEND_PORT stops it at once, naming the variable', async () => {
    const proc = startNodeProcess(DEV, {
      REDIS_URL: testRedisUrl(),
      PORT: String(await freePort()),
      DEMO_BACKEND_PORT: 'eighty',
      LOG_LEVEL: 'info',
    });
    const code = await new Promise<number | null>((resolve) => proc.child.once('exit', resolve));
    expect(code).toBe(1);
    expect(proc.output()).toMatch(/DEMO_BACKEND_PORT: must be a whole number from 0 to 65535 \(got "eighty"\)/);
    expect(proc.output()).not.toMatch(/gateway:dev ready/);
  });

  it('starts a private redis-server when nothing answers at REDIS_URL, and says so without the password', async () => {
    const port = await freePort();
    const deadRedis = await freePort();
    const proc = startNodeProcess(DEV, {
      REDIS_URL: `redis://ops:s3cret-pw@127.0.0.1:${deadRedis}`,
      PORT: String(port),
      LOG_LEVEL: 'info',
    });
    try {
      const line = await proc.waitForLog((l) => String(l.msg).includes('started Redis via redis-server'));
      // Asserted once it is ready: a process stopped before then would leave its redis-server behind.
      await proc.waitForLog((l) => String(l.msg).startsWith('gateway:dev ready'));
      expect(String(line.redisUrl)).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      // Where it looked first is named, its password is not.
      expect(String(line.msg)).toContain(`127.0.0.1:${deadRedis}`);
      expect(proc.output()).not.toContain('s3cret-pw');
      const res = await request(`http://127.0.0.1:${port}`)
        .post('/mcp/request')
        .send({ service: 'demo', operation: 'slow', parameters: { ms: 10 } });
      expect(res.status).toBe(200);
      expect(res.body.data).toEqual({ waitedMs: 10 });
    } finally {
      expect(await proc.stop('SIGTERM')).toBe(0);
    }
    expect(proc.output()).not.toContain('s3cret-pw');
  });
});
