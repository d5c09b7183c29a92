import { randomBytes } from 'node:crypto';
import { createRedis, type ConnectionRole, type RedisClient, type RedisTarget } from '@mcp-gateway/redis';

/** A Redis key prefix no other test uses, so tests can share one Redis. */
export function uniquePrefix(label = 't'): string {
  return `${label}${randomBytes(4).toString('hex')}`;
}

/** The Redis URL the jest global setup provides. */
export function testRedisUrl(): string {
  const url = process.env.TEST_REDIS_URL ?? process.env.REDIS_URL;
  if (!url) throw new Error('TEST_REDIS_URL is not set: run tests through jest (global setup starts Redis)');
  return url;
}

/**
 * Where the tests' Redis is: under `npm run test:cluster` a Redis Cluster (TEST_REDIS_CLUSTER_NODES,
 * and TEST_REDIS_URL is one of its nodes), else the single Redis of TEST_REDIS_URL.
 */
export function testRedisTarget(): RedisTarget {
  const nodes = process.env.TEST_REDIS_CLUSTER_NODES;
  return { url: testRedisUrl(), ...(nodes ? { clusterNodes: nodes.split(',') } : {}) };
}

/** A client of the tests' Redis, single or cluster (commands wait through reconnects). */
export function testRedis(role: Exclude<ConnectionRole, 'command'> = 'blocking'): RedisClient {
  return createRedis(testRedisTarget(), role, `test-${role}`);
}

/** The keys matching `pattern` on every master (KEYS answers for one node only on a cluster). */
export async function keysMatching(client: RedisClient, pattern: string): Promise<string[]> {
  const nodes = 'nodes' in client && typeof client.nodes === 'function' ? client.nodes('master') : [client];
  return (await Promise.all(nodes.map((n) => n.keys(pattern)))).flat();
}
