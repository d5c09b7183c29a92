import Redis, { Cluster } from 'ioredis';
import { ApiServer } from '@mcp-gateway/api';
import { BrokerKeys, RECORD_SHARDS, recordShard } from '@mcp-gateway/broker';
import { createLogger } from '@mcp-gateway/observability';
import { startBackend, testConfig, testRedisTarget, type TestBackend } from '@mcp-gateway/testing';
import { startGateway, type Running } from './harness';

/**
 * Only under `npm run test:cluster` (jest.cluster.config.js): what is particular to a Redis Cluster.
 * The other suites it runs are the usual ones, on the cluster.
 */
const nodes = (process.env.TEST_REDIS_CLUSTER_NODES ?? '').split(',').filter(Boolean);
const quiet = createLogger({ level: 'silent' });

let backend: TestBackend;
let gw: Running;

beforeAll(async () => {
  if (nodes.length === 0) throw new Error('run through jest.cluster.config.js: TEST_REDIS_CLUSTER_NODES is not set');
  backend = await startBackend((req) => ({ status: 200, body: { path: req.path } }));
  const services = Object.fromEntries(
    ['alpha', 'beta', 'gamma', 'delta'].map((s) => [
      s,
      { endpoint: backend.url, operations: [{ name: 'get', method: 'GET', path: `/${s}` }] },
    ]),
  );
  gw = await startGateway({ services });
});

afterAll(async () => {
  await gw?.close();
  await backend?.close();
});

/** The port of the master serving `key`'s slot. */
async function masterPortOf(key: string): Promise<number> {
  const probe = new Redis(nodes[0]!);
  try {
    const slot = (await probe.call('CLUSTER', 'KEYSLOT', key)) as number;
    const ranges = (await probe.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    return ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
  } finally {
    probe.disconnect();
  }
}

/** The port of a replica of the master on `masterPort`. */
async function replicaPortOf(masterPort: number): Promise<number> {
  const probe = new Redis(nodes[0]!);
  try {
    const lines = String(await probe.call('CLUSTER', 'NODES'))
      .trim()
      .split('\n');
    const master = lines.find((l) => l.split(' ')[1]!.startsWith(`127.0.0.1:${masterPort}@`))!.split(' ')[0];
    const replica = lines.find((l) => l.split(' ')[3] === master && !l.includes('fail'))!;
    return Number(replica.split(' ')[1]!.split(':')[1]!.split('@')[0]);
  } finally {
    probe.disconnect();
  }
}

/** Sends `signal` to the node on `port` (a process the cluster setup started). */
function signalNode(port: number, signal: 'SIGSTOP' | 'SIGCONT'): void {
  const pids = JSON.parse(process.env.TEST_REDIS_CLUSTER_PIDS ?? '{}') as Record<string, number>;
  process.kill(pids[String(port)]!, signal);
}

/** WAIT commands run by every master so far. */
async function waitsRun(): Promise<number> {
  let total = 0;
  for (const url of nodes) {
    const probe = new Redis(url);
    const stats = await probe.info('commandstats');
    probe.disconnect();
    total += Number(/^cmdstat_wait:calls=(\d+)/m.exec(stats)?.[1] ?? 0);
  }
  return total;
}

describe('on a Redis Cluster', () => {
  it('runs requests of services whose queues are on different masters, and their results reach the caller', async () => {
    const keys = new BrokerKeys(gw.config.redis.keyPrefix);
    const masters = new Set(await Promise.all(['alpha', 'beta', 'gamma', 'delta'].map((s) => masterPortOf(keys.queueKey(s, 'wait')))));
    // The four services' slots are on more than one master: the cluster really is in the way.
    expect(masters.size).toBeGreaterThan(1);
    for (const s of ['alpha', 'beta', 'gamma', 'delta']) {
      const res = await gw.http.post('/mcp/request').send({ service: s, operation: 'get', parameters: {} });
      expect([res.status, res.body.data]).toEqual([200, { path: `/${s}` }]);
    }
  });

  it('gives a result to its caller on whichever API replica the caller waits on', async () => {
    // A second API process of the same gateway (same prefix), with no worker of its own.
    const other = await startGateway(
      { redis: { keyPrefix: gw.config.redis.keyPrefix }, services: { alpha: gw.config.services.alpha! } },
      [],
    );
    try {
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          other.http.post('/mcp/request').send({ id: `replica-${i}`, service: 'alpha', operation: 'get', parameters: {} }),
        ),
      );
      expect(answers.map((a) => [a.status, a.body.data])).toEqual(answers.map(() => [200, { path: '/alpha' }]));
    } finally {
      await other.close();
    }
  });

  it('publishes each result on the sharded channel of its record, and the caller hears every part', async () => {
    const keys = new BrokerKeys(gw.config.redis.keyPrefix);
    const heard = new Map<string, number>();
    const listener = new Cluster(
      nodes.map((n) => ({ host: new URL(n).hostname, port: Number(new URL(n).port) })),
      { shardedSubscribers: true },
    );
    try {
      listener.on('smessage', (channel: string) => heard.set(channel, (heard.get(channel) ?? 0) + 1));
      await Promise.all(keys.resultsShardChannels().map((c) => listener.ssubscribe(c)));
      // Ids that fall in every part of the records.
      const ids: string[] = [];
      const parts = new Set<number>();
      for (let i = 0; parts.size < RECORD_SHARDS; i++) {
        const id = `spread-${i}`;
        if (!parts.has(recordShard(id))) {
          parts.add(recordShard(id));
          ids.push(id);
        }
      }
      const answers = await Promise.all(
        ids.map((id) => gw.http.post('/mcp/request').send({ id, service: 'alpha', operation: 'get', parameters: {} })),
      );
      expect(answers.map((a) => a.status)).toEqual(ids.map(() => 200));
      await new Promise((r) => setTimeout(r, 200));
      expect([...heard.keys()].sort()).toEqual(keys.resultsShardChannels().sort());
      // The channels live on more than one master, as the records do.
      const homes = new Set(await Promise.all(ids.map((id) => masterPortOf(keys.request(id)))));
      expect(homes.size).toBeGreaterThan(1);
    } finally {
      listener.disconnect();
    }
  });

  it('with REDIS_WAIT_REPLICAS=1, answers once the request and its result are on a replica, and 503 with the id when they cannot be', async () => {
    const calls: string[] = [];
    const durableBackend = await startBackend((req) => {
      calls.push(`${req.method} ${req.path}`);
      return { status: 200, body: { ok: true } };
    });
    const durable = await startGateway({
      redis: { waitReplicas: 1 },
      services: {
        pay: {
          endpoint: durableBackend.url,
          operations: [
            { name: 'get', method: 'GET', path: '/get' },
            { name: 'charge', method: 'POST', path: '/charge' },
          ],
        },
      },
    });
    const keys = new BrokerKeys(durable.config.redis.keyPrefix);
    try {
      const before = await waitsRun();
      const ok = await durable.http.post('/mcp/request').send({ service: 'pay', operation: 'get', parameters: {} });
      expect(ok.status).toBe(200);
      // Acceptance (the record's node and the queue's) and the result each waited for their replica.
      expect((await waitsRun()) - before).toBeGreaterThanOrEqual(3);

      // The replica of the request's record does not answer: acceptance is not durable.
      const id = 'durable-get-1';
      const replica = await replicaPortOf(await masterPortOf(keys.request(id)));
      signalNode(replica, 'SIGSTOP');
      let refused;
      let resent;
      try {
        refused = await durable.http.post('/mcp/request').send({ id, service: 'pay', operation: 'get', parameters: {} });
        // Sent again while the replica is still away, it joins a request that stands on the primary alone: 503 again, not 202.
        resent = await durable.http
          .post('/mcp/request')
          .set('Prefer', 'respond-async')
          .send({ id, service: 'pay', operation: 'get', parameters: {} });
      } finally {
        signalNode(replica, 'SIGCONT');
      }
      expect([resent.status, resent.body.error?.code]).toEqual([503, 'UNAVAILABLE']);
      expect([refused.status, refused.body.error.code, refused.body.error.details.id]).toEqual([503, 'UNAVAILABLE', id]);
      expect(refused.headers['retry-after']).toBeDefined();
      expect(refused.body.error.message).toContain('same id');
      // Sent again with its id it joins the request, which ran once.
      const again = await durable.http.post('/mcp/request').send({ id, service: 'pay', operation: 'get', parameters: {} });
      expect(again.status).toBe(200);
      expect(calls.filter((c) => c === 'GET /get')).toHaveLength(2);

      // The replica of the service's queue does not answer: a non-idempotent call is not sent at all.
      const queueReplica = await replicaPortOf(await masterPortOf(keys.queueKey('pay', 'wait')));
      signalNode(queueReplica, 'SIGSTOP');
      let charge;
      try {
        charge = await durable.http
          .post('/mcp/request')
          .send({ id: 'durable-charge-1', service: 'pay', operation: 'charge', parameters: {} });
        // Its job may have run meanwhile: it must have ended without a call.
        await new Promise((r) => setTimeout(r, 1500));
      } finally {
        signalNode(queueReplica, 'SIGCONT');
      }
      expect(charge.status).toBe(503);
      const status = await durable.http.get('/mcp/requests/durable-charge-1');
      expect(status.body).toMatchObject({ state: 'failed', error: { code: 'UNAVAILABLE', details: { sent: false } } });
      expect(calls.filter((c) => c === 'POST /charge')).toHaveLength(0);
    } finally {
      await durable.close();
      await durableBackend.close();
    }
  });

  it('refuses at start a cluster node given as REDIS_URL, naming REDIS_CLUSTER_NODES', async () => {
    const config = testConfig({ redis: { url: nodes[0]!, clusterNodes: [] } });
    const api = new ApiServer({ config, logger: quiet });
    const started = api.start(0, '127.0.0.1');
    await expect(started).rejects.toMatchObject({ name: 'ConfigError', message: expect.stringContaining('REDIS_CLUSTER_NODES') });
    await api.stop();
  });

  it('refuses at start a single Redis given as a cluster seed, naming REDIS_URL', async () => {
    const single = process.env.TEST_SINGLE_REDIS_URL;
    if (!single) throw new Error('the cluster setup also starts a single Redis (TEST_SINGLE_REDIS_URL)');
    const config = testConfig({ redis: { url: testRedisTarget().url, clusterNodes: [single] } });
    const api = new ApiServer({ config, logger: quiet });
    await expect(api.start(0, '127.0.0.1')).rejects.toMatchObject({
      name: 'ConfigError',
      message: expect.stringContaining('not a Redis Cluster node'),
    });
    await api.stop();
  });
});
