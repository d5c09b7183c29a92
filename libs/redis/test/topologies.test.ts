import { spawn } from 'node:child_process';
import path from 'node:path';
import Redis, { Cluster } from 'ioredis';
import { startRedisCluster, startRedisSentinel, type LocalRedisCluster, type LocalRedisSentinel, type RedisNode } from '@mcp-gateway/redis';

jest.setTimeout(60_000);

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A plain connection to one node: no redirects followed, so a MOVED reply surfaces as an error. */
function direct(port: number, password?: string): Redis {
  const client = new Redis({ host: '127.0.0.1', port, password, maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => undefined);
  return client;
}

async function withDirect<T>(port: number, use: (client: Redis) => Promise<T>, password?: string): Promise<T> {
  const client = direct(port, password);
  try {
    return await use(client);
  } finally {
    client.disconnect();
  }
}

describe('startRedisCluster', () => {
  let cluster: LocalRedisCluster;
  let client: Cluster;
  const pids: number[] = [];

  beforeAll(async () => {
    const t0 = Date.now();
    cluster = await startRedisCluster();
    process.stderr.write(`[topologies] cluster started in ${Date.now() - t0} ms\n`);
    pids.push(...cluster.nodes.map((n) => n.pid));
    client = new Cluster(
      cluster.seeds.map((url) => {
        const u = new URL(url);
        return { host: u.hostname, port: Number(u.port) };
      }),
    );
    client.on('error', () => undefined);
  });

  afterAll(async () => {
    // A second disconnect() leaves a 2 s close timer behind in ioredis.
    if (client && client.status !== 'end') client.disconnect();
    await cluster?.stop();
  });

  it('forms 3 masters with a replica each; masterFor names the node that serves a key without MOVED', async () => {
    expect(cluster.nodes).toHaveLength(6);
    expect(cluster.seeds).toHaveLength(3);
    expect(new Set(cluster.nodes.map((n) => n.port)).size).toBe(6);

    // Keys until every master serves one: a Cluster client writes and reads in every slot range.
    const byMaster = new Map<number, string>();
    for (let i = 0; byMaster.size < 3 && i < 100; i++) {
      const key = `topology:${i}`;
      const master = await cluster.masterFor(key);
      if (!byMaster.has(master.port)) byMaster.set(master.port, key);
    }
    expect(byMaster.size).toBe(3);
    expect([...byMaster.keys()].sort()).toEqual(cluster.seeds.map((s) => Number(new URL(s).port)).sort());
    for (const [port, key] of byMaster) {
      await client.set(key, `v-${port}`);
      expect(await client.get(key)).toBe(`v-${port}`);
      expect(await withDirect(port, (c) => c.get(key))).toBe(`v-${port}`);
      const other = cluster.nodes.find((n) => cluster.seeds.includes(n.url) && n.port !== port) as RedisNode;
      await expect(withDirect(other.port, (c) => c.get(key))).rejects.toThrow(/MOVED/);

      const replica = await cluster.replicaOf(port);
      expect(replica.port).not.toBe(port);
      const role = (await withDirect(replica.port, (c) => c.call('ROLE'))) as unknown[];
      expect(role.slice(0, 3)).toEqual(['slave', '127.0.0.1', port]);
    }
  });

  it('after SIGKILL of a master, waitForState returns once its replica serves the slot, and the Cluster client reads the key', async () => {
    const key = 'topology:failover';
    const master = await cluster.masterFor(key);
    const replica = await cluster.replicaOf(master.port);
    const acked = await withDirect(master.port, async (c) => {
      await c.set(key, 'kept');
      return c.call('WAIT', '1', '1000');
    });
    expect(acked).toBe(1);

    const oldPid = master.pid;
    const killedAt = Date.now();
    await cluster.kill(master.port, 'SIGKILL');
    expect(running(oldPid)).toBe(false);
    await cluster.waitForState('fail', 10_000);
    await cluster.waitForState('ok', 30_000);
    process.stderr.write(`[topologies] cluster failover took ${Date.now() - killedAt} ms\n`);

    expect((await cluster.masterFor(key)).port).toBe(replica.port);
    expect(await client.get(key)).toBe('kept');
    await client.set(key, 'after');
    expect(await withDirect(replica.port, (c) => c.get(key))).toBe('after');

    // The old master comes back from its nodes.conf as a replica of the promoted node.
    const back = await cluster.restart(master.port);
    pids.push(back.pid);
    expect(back.pid).not.toBe(oldPid);
    await cluster.waitForState('ok', 30_000);
    expect((await cluster.replicaOf(replica.port)).port).toBe(master.port);
  });

  it('a cluster client closed while a periodic slot refresh is in flight leaves nothing running: its process exits by itself', async () => {
    // The child closes each client (command, subscriber, a BullMQ-style duplicate) at the moment a
    // refresh after ready begins, and then has nothing left to do.
    const script = `
      const { createRedis, waitReady } = require(${JSON.stringify(path.resolve(__dirname, '../dist/index.js'))});
      const target = { url: '', clusterNodes: ${JSON.stringify(cluster.seeds)} };
      const closeMidRefresh = async (client) => {
        await waitReady(client, 10000);
        await new Promise((resolve) => {
          client.refreshSlotsCache = (callback) => {
            delete client.refreshSlotsCache;
            client.refreshSlotsCache(callback);
            client.disconnect();
            resolve();
          };
        });
      };
      (async () => {
        const command = createRedis(target, 'command', 'closing');
        const subscriber = createRedis(target, 'subscriber', 'closing');
        const copy = command.duplicate();
        await Promise.all([command, subscriber, copy].map(closeMidRefresh));
        process.stdout.write('closed\\n');
      })();`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const within = (ms: number) => new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), ms).unref());
    // ioredis gives a closing connection 2 s to close; 10 s is several times that.
    const outcome = await Promise.race([exited, within(10_000)]);
    if (outcome === 'still running') child.kill('SIGKILL');
    expect({ outcome, out }).toEqual({ outcome: 0, out: 'closed\n' });
  });

  it('stop() ends every node, a SIGSTOPped one too', async () => {
    const frozen = cluster.nodes[cluster.nodes.length - 1];
    await cluster.kill(frozen.port, 'SIGSTOP');
    expect(pids.filter(running)).toHaveLength(6);
    client.disconnect();
    await cluster.stop();
    expect(pids.filter(running)).toEqual([]);
    await cluster.stop();
  });
});

describe('startRedisSentinel', () => {
  let setup: LocalRedisSentinel;
  let client: Redis;
  const pids: number[] = [];

  beforeAll(async () => {
    const t0 = Date.now();
    setup = await startRedisSentinel({ password: 's3cret' });
    process.stderr.write(`[topologies] sentinels started in ${Date.now() - t0} ms\n`);
    pids.push(setup.primary.pid, setup.replica.pid);
    client = new Redis({
      sentinels: setup.sentinels,
      name: setup.name,
      password: setup.password,
      retryStrategy: () => 200,
      maxRetriesPerRequest: null,
    });
    client.on('error', () => undefined);
  });

  afterAll(async () => {
    if (client && client.status !== 'end') client.disconnect();
    await setup?.stop();
  });

  it('every sentinel names the primary; a client through the sentinels writes, the replica has it, the password is required', async () => {
    expect(setup.sentinels).toHaveLength(3);
    expect(setup.primary.url).toBe(`redis://:s3cret@127.0.0.1:${setup.primary.port}`);
    expect(await setup.currentPrimary()).toEqual({ host: '127.0.0.1', port: setup.primary.port });
    for (const s of setup.sentinels) {
      expect(await withDirect(s.port, (c) => c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', setup.name))).toEqual([
        '127.0.0.1',
        String(setup.primary.port),
      ]);
    }

    await client.set('topology:s', 'one');
    expect(await client.get('topology:s')).toBe('one');
    expect(await withDirect(setup.primary.port, (c) => c.call('WAIT', '1', '1000'), 's3cret')).toBe(1);
    expect(await withDirect(setup.replica.port, (c) => c.get('topology:s'), 's3cret')).toBe('one');
    await expect(withDirect(setup.replica.port, (c) => c.get('topology:s'))).rejects.toThrow(/NOAUTH/);
  });

  it('after SIGKILL of the primary, waitForFailover names the replica and the client writes to it', async () => {
    const killedAt = Date.now();
    await setup.kill(setup.primary.port, 'SIGKILL');
    expect(running(setup.primary.pid)).toBe(false);
    const now = await setup.waitForFailover(setup.primary.port, 30_000);
    process.stderr.write(`[topologies] sentinel failover took ${Date.now() - killedAt} ms\n`);
    expect(now).toEqual({ host: '127.0.0.1', port: setup.replica.port });
    expect(await setup.currentPrimary()).toEqual(now);

    await client.set('topology:s', 'two');
    expect(await client.get('topology:s')).toBe('two');
    expect(await withDirect(setup.replica.port, (c) => c.get('topology:s'), 's3cret')).toBe('two');
  });

  it('stop() ends every process, a SIGSTOPped sentinel too', async () => {
    const sentinelPids = await Promise.all(
      setup.sentinels.map(async (s) => {
        const info = await withDirect(s.port, (c) => c.call('INFO', 'server'));
        return Number(/process_id:(\d+)/.exec(String(info))?.[1]);
      }),
    );
    pids.push(...sentinelPids);
    expect(sentinelPids.filter(running)).toHaveLength(3);
    await setup.kill(setup.sentinels[0].port, 'SIGSTOP');
    client.disconnect();
    await setup.stop();
    expect(pids.filter(running)).toEqual([]);
  });
});
