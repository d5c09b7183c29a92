import { startRedisCluster, startRedisServer, type LocalRedis, type LocalRedisCluster } from '@mcp-gateway/redis';

declare global {
  // eslint-disable-next-line no-var
  var __MCP_TEST_CLUSTER__: LocalRedisCluster | undefined;
  // eslint-disable-next-line no-var
  var __MCP_TEST_SINGLE__: LocalRedis | undefined;
}

/** `npm run test:cluster`: the tests run on a local Redis Cluster (3 masters, 3 replicas) started here. */
export default async function clusterSetup(): Promise<void> {
  const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1000 });
  globalThis.__MCP_TEST_CLUSTER__ = cluster;
  process.env.TEST_REDIS_CLUSTER_NODES = cluster.seeds.join(',');
  // Port → pid of every node, for tests that freeze one (SIGSTOP).
  process.env.TEST_REDIS_CLUSTER_PIDS = JSON.stringify(Object.fromEntries(cluster.nodes.map((n) => [n.port, n.pid])));
  // A node of it: a test that talks to it as a single Redis gets MOVED, not another Redis's data.
  process.env.TEST_REDIS_URL = cluster.seeds[0]!;
  // And one single Redis, for the tests of a single Redis given where a cluster is expected.
  const single = await startRedisServer();
  globalThis.__MCP_TEST_SINGLE__ = single;
  process.env.TEST_SINGLE_REDIS_URL = single.url;
  process.stderr.write(`\n[tests] Redis Cluster from redis-server: ${cluster.seeds.join(', ')}\n`);
}
