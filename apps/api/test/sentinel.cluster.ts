import { startRedisSentinel, type LocalRedisSentinel } from '@mcp-gateway/redis';
import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { eventually, startGateway, type Running } from './harness';

/**
 * Under `npm run test:cluster`: the gateway through Redis Sentinel (a primary, a replica, three
 * sentinels started here), before and after the primary is killed.
 */
const PASSWORD = 'sentinel-data-password-0123';

let sentinel: LocalRedisSentinel;
let backend: TestBackend;
let gw: Running;

beforeAll(async () => {
  sentinel = await startRedisSentinel({ password: PASSWORD, downAfterMs: 1000, failoverTimeoutMs: 3000 });
  backend = await startBackend((req) => ({ status: 200, body: { path: req.path } }));
  gw = await startGateway({
    redis: {
      // Only the password: the primary is the one the sentinels name.
      url: `redis://:${PASSWORD}@127.0.0.1:1`,
      clusterNodes: [],
      sentinel: { sentinels: sentinel.sentinels.map((s) => `${s.host}:${s.port}`), name: sentinel.name },
      // Not here: once the replica is promoted there is none left to wait for (cluster.cluster.ts tests WAIT).
      waitReplicas: 0,
    },
    services: { svc: { endpoint: backend.url, operations: [{ name: 'get', method: 'GET', path: '/get' }] } },
  });
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await backend?.close();
  await sentinel?.stop();
});

const call = (id?: string) =>
  gw.http.post('/mcp/request').send({ ...(id ? { id } : {}), service: 'svc', operation: 'get', parameters: {} });

describe('through Redis Sentinel', () => {
  it('runs requests on the primary the sentinels name', async () => {
    const res = await call();
    expect([res.status, res.body.data]).toEqual([200, { path: '/get' }]);
  });

  it('carries on after the primary is killed: 503 with Retry-After while it fails over, never 500, then 200 again', async () => {
    const before = sentinel.primary.port;
    await sentinel.kill(before, 'SIGKILL');
    const statuses: number[] = [];
    const killedAt = Date.now();
    const back = await eventually(
      async () => {
        const res = await call();
        statuses.push(res.status);
        if (res.status === 503) expect(res.headers['retry-after']).toBeDefined();
        return res.status === 200 ? res : undefined;
      },
      30_000,
      100,
    );
    expect(back.body.data).toEqual({ path: '/get' });
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect((await sentinel.currentPrimary()).port).not.toBe(before);
    // Seconds from the kill to the first success, for the record.
    process.stderr.write(
      `[sentinel] first 200 ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill; ${statuses.length - 1} answers before it\n`,
    );
  }, 60_000);
});
