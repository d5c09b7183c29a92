import request from 'supertest';
import { MCPGateway, GatewayConfigManager, startDemoBackend } from '@mcp-gateway/gateway';
import { createLogger } from '@mcp-gateway/observability';
import { freePort, startNodeProcess, testConfig, testRedisUrl } from '@mcp-gateway/testing';
import { DEV } from './entry-points';


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
      const item = await request(`http://127.0.0.1:${port}`).post('/mcp/request').send({ service: 'demo', operation: 'getItem', parameters: { id: 'abc' } });
      expect(item.body.data).toMatchObject({ id: 'abc', name: 'Item abc' });
    } finally {
      await gateway.stop();
      await demo.close();
    }
    await expect(request(`http://127.0.0.1:${port}`).get('/mcp/health')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('refuses an invalid config at construction, naming the field', () => {
    expect(() => new MCPGateway({ services: { bad: { endpoint: 'ftp://x' } } })).toThrow(/services\.bad\.endpoint/);
  });
});

describe('npm run gateway:dev entry point', () => {
  it('serves the demo backend using REDIS_URL when it answers', async () => {
    const port = await freePort();
    const proc = startNodeProcess(DEV, { REDIS_URL: testRedisUrl(), PORT: String(port), LOG_LEVEL: 'info' });
    try {
      await proc.waitForLog((l) => String(l.msg).startsWith('gateway:dev ready'));
      const res = await request(`http://127.0.0.1:${port}`).post('/mcp/request').send({ service: 'demo', operation: 'echo', parameters: { a: 1 } });
      expect(res.status).toBe(200);
      expect(res.body.data.echo).toEqual({ a: 1 });
      expect(proc.output()).not.toMatch(/started Redis via/);
    } finally {
      expect(await proc.stop('SIGTERM')).toBe(0);
    }
  });

  it('starts a private redis-server when nothing answers at REDIS_URL, and says so without the password', async () => {
    const port = await freePort();
    const deadRedis = await freePort();
    const proc = startNodeProcess(DEV, { REDIS_URL: `redis://ops:s3cret-pw@127.0.0.1:${deadRedis}`, PORT: String(port), LOG_LEVEL: 'info' });
    try {
      const line = await proc.waitForLog((l) => String(l.msg).includes('started Redis via redis-server'));
      // Asserted once it is ready: a process stopped before then would leave its redis-server behind.
      await proc.waitForLog((l) => String(l.msg).startsWith('gateway:dev ready'));
      expect(String(line.redisUrl)).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      // Where it looked first is named, its password is not.
      expect(String(line.msg)).toContain(`127.0.0.1:${deadRedis}`);
      expect(proc.output()).not.toContain('s3cret-pw');
      const res = await request(`http://127.0.0.1:${port}`).post('/mcp/request').send({ service: 'demo', operation: 'slow', parameters: { ms: 10 } });
      expect(res.status).toBe(200);
      expect(res.body.data).toEqual({ waitedMs: 10 });
    } finally {
      expect(await proc.stop('SIGTERM')).toBe(0);
    }
    expect(proc.output()).not.toContain('s3cret-pw');
  });
});
