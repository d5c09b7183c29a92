import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import { ConfigError, redactUrl } from '@mcp-gateway/config';

/** A connection to a single Redis (direct or found through Sentinel) or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** Whether the client is a Redis Cluster client. */
export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/**
 * Where Redis is: `url` alone is one Redis; with `clusterNodes` every connection is a cluster client
 * (`url` unused); with `sentinel` the primary is the one the sentinels name, and `url` gives only its
 * password, database and TLS.
 */
export interface RedisTarget {
  url: string;
  clusterNodes?: readonly string[];
  sentinel?: { sentinels: readonly string[]; name: string; password?: string };
}

/**
 * How a connection is used decides its options (see ARCHITECTURE "Known traps"):
 * - `blocking`: BullMQ workers: commands wait through reconnects (maxRetriesPerRequest null).
 * - `subscriber`: as `blocking`, for a connection that subscribes (on a cluster, also to sharded channels).
 * - `command`: the API's producer connection: fail fast while Redis is away (no offline queue), so a
 *   request gets UNAVAILABLE at once instead of hanging.
 */
export type ConnectionRole = 'blocking' | 'subscriber' | 'command';

/** How long a `command` connection's command may go unanswered (WAIT takes at most 1 s of it). */
export const COMMAND_TIMEOUT_MS = 3000;

export function createRedis(
  target: RedisTarget | string,
  role: ConnectionRole,
  connectionName?: string,
  extra: RedisOptions = {},
): RedisClient {
  const where: RedisTarget = typeof target === 'string' ? { url: target } : target;
  const options: RedisOptions = {
    connectionName,
    // Reconnect forever, backing off to 2 s; the process decides when to give up, not the client.
    retryStrategy: (times) => Math.min(times * 100, 2000),
    ...(role === 'command'
      ? // A Redis that stops answering without closing its connection (frozen) fails the command too.
        { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000, commandTimeout: COMMAND_TIMEOUT_MS }
      : { maxRetriesPerRequest: null, enableOfflineQueue: true }),
    ...extra,
  };
  const client = where.clusterNodes?.length
    ? clusterClient(where.clusterNodes, options, role)
    : new Redis(where.url, where.sentinel ? { ...options, ...sentinelOptions(where.sentinel) } : options);
  // Errors surface on the commands that fail; an unhandled 'error' event would crash the process.
  client.on('error', () => undefined);
  return client;
}

function sentinelOptions(sentinel: NonNullable<RedisTarget['sentinel']>): RedisOptions {
  return {
    name: sentinel.name,
    sentinels: sentinel.sentinels.map((hostPort) => {
      const at = hostPort.lastIndexOf(':');
      return { host: hostPort.slice(0, at), port: Number(hostPort.slice(at + 1)) };
    }),
    ...(sentinel.password ? { sentinelPassword: sentinel.password } : {}),
    sentinelRetryStrategy: (times: number) => Math.min(times * 100, 2000),
  };
}

/**
 * A cluster client from seed URLs (their credentials and TLS apply to every node). Not ioredis's
 * auto-pipelining: it picks a script call's node from its first argument, not its keys (ioredis
 * #2109), and can throw outside any promise (#1931); `coalesceWrites` coalesces per node instead.
 */
function clusterClient(seeds: readonly string[], node: RedisOptions, role: ConnectionRole): Cluster {
  const first = new URL(seeds[0]!);
  const auth = {
    ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
    ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
    ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  // Options ioredis takes for the whole cluster, not per node.
  const { retryStrategy, enableOfflineQueue, ...perNode } = node;
  const options: ClusterOptions = {
    redisOptions: { ...perNode, ...auth },
    clusterRetryStrategy: retryStrategy ?? undefined,
    enableOfflineQueue: enableOfflineQueue ?? true,
    // A failover moves slots: follow MOVED/ASK and TRYAGAIN, and refresh the slot map meanwhile.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 100,
    maxRedirections: 16,
    slotsRefreshTimeout: 2000,
    // Not ioredis's periodic refresh: refreshSlotsPeriodically's.
    slotsRefreshInterval: 0,
    // Results go out on sharded channels: each is subscribed on the node that serves its slot.
    shardedSubscribers: role === 'subscriber',
  };
  const cluster = new Cluster(
    seeds.map((s) => {
      const u = new URL(s);
      return { host: u.hostname, port: Number(u.port || 6379) };
    }),
    options,
  );
  return refreshSlotsPeriodically(cluster);
}

/** How often a cluster client reads the slot map again, without a MOVED to make it. */
const SLOTS_REFRESH_MS = 1000;

/**
 * A master that stops answering (frozen, or cut off) closes no connection and sends no MOVED: only
 * a fresh slot map moves its commands to the replica that replaced it. So the map is read every
 * second. Not by ioredis's `slotsRefreshInterval`: in ioredis 5 a disconnect that lands while one of
 * its refreshes is in flight re-arms its loop for good, and the process never exits (fixed in
 * ioredis 6.1; we are on 5.11.1, the version BullMQ is built and tested with). This timer is
 * unref'd and ends with the client. The client's duplicates (BullMQ's blocking connections) get one
 * too.
 */
function refreshSlotsPeriodically(cluster: Cluster): Cluster {
  let timer: NodeJS.Timeout | undefined;
  cluster.on('ready', () => {
    timer ??= setInterval(() => cluster.refreshSlotsCache(), SLOTS_REFRESH_MS).unref();
  });
  cluster.on('end', () => {
    clearInterval(timer);
    timer = undefined;
  });
  const duplicate = cluster.duplicate.bind(cluster);
  cluster.duplicate = (...args: Parameters<Cluster['duplicate']>) => refreshSlotsPeriodically(duplicate(...args));
  return cluster;
}

/**
 * Refuses a target that is not what its setting says: a cluster node given as REDIS_URL (every
 * command would answer MOVED), or a single Redis given as a cluster seed (the client would wait for
 * a slot map forever). A seed that cannot be reached says nothing: the client keeps trying as usual.
 */
export async function checkTopology(client: RedisClient, target: RedisTarget): Promise<void> {
  if (isCluster(client)) {
    const seed = target.clusterNodes?.[0];
    if (seed && (await clusterEnabled(seed)) === false)
      throw new ConfigError([
        {
          source: 'REDIS_CLUSTER_NODES',
          message: `${redactUrl(seed)} is not a Redis Cluster node (cluster_enabled:0): give a single Redis as REDIS_URL`,
        },
      ]);
    return;
  }
  if (/^cluster_enabled:1/m.test(await client.info('cluster')))
    throw new ConfigError([
      {
        source: 'REDIS_URL',
        message: `${redactUrl(target.url)} is a node of a Redis Cluster: give the cluster's nodes as REDIS_CLUSTER_NODES (a comma list of redis:// URLs)`,
      },
    ]);
}

/** Whether the Redis at `url` runs in cluster mode; undefined when it does not answer. */
async function clusterEnabled(url: string): Promise<boolean | undefined> {
  return withOneConnection(url, async (probe) => /^cluster_enabled:1/m.test(await probe.info('cluster')), 2000).catch(() => undefined);
}

/**
 * Runs `use` on a connection of its own to one Redis, closed after: no retries, no queue, and every
 * command fails after `timeoutMs` (a frozen node never answers).
 */
export async function withOneConnection<T>(where: string | RedisOptions, use: (client: Redis) => Promise<T>, timeoutMs = 1000): Promise<T> {
  const options: RedisOptions = {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    retryStrategy: () => null,
  };
  const client = typeof where === 'string' ? new Redis(where, options) : new Redis({ ...where, ...options });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
}

/** Resolves once the client is ready, or rejects after `timeoutMs`. */
export async function waitReady(client: RedisClient, timeoutMs = 5000): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis did not become ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
    };
    client.on('ready', onReady);
  });
}

/**
 * Sends the commands `issue` starts (without awaiting them) in one write to Redis, which runs them in
 * the order sent: one syscall and one round trip where awaiting each would take one each. Their
 * promises are returned as `issue` returned them. A client not connected yet queues the commands as
 * usual (in order).
 */
export function inOneWrite<T>(client: RedisClient, issue: () => T): T {
  // A cluster client's commands go through its nodes' connections: coalescing them does this.
  const socket =
    client instanceof Redis && client.status === 'ready'
      ? (client.stream as { cork?: () => void; uncork?: () => void } | undefined)
      : undefined;
  socket?.cork?.();
  try {
    return issue();
  } finally {
    socket?.uncork?.();
  }
}

/**
 * How many replicas have every write this client sent to the nodes serving `keys` (the fewest of
 * those nodes'), once `replicas` have or `timeoutMs` has passed (WAIT). WAIT counts the writes of
 * its own connection: one Redis needs one; on a cluster one goes to each key's node, in a pipeline
 * with a read of the key, through the connection that node's commands use.
 */
export async function replicated(client: RedisClient, keys: readonly string[], replicas: number, timeoutMs: number): Promise<number> {
  if (!isCluster(client)) return Number(await client.call('WAIT', replicas, timeoutMs));
  const acked = await Promise.all(
    keys.map(async (key) => {
      const replies = (await client.pipeline().exists(key).call('WAIT', replicas, timeoutMs).exec()) ?? [];
      const [err, n] = replies[1] ?? [new Error('WAIT got no reply')];
      if (err) throw err;
      return Number(n);
    }),
  );
  return Math.min(...acked);
}

/**
 * One command per item, sent as `inOneWrite` sends them, each answer settled on its own (a pipeline's
 * replies, but the keys may be in any slots: a cluster client sends each to the node serving it).
 */
export function eachInOneWrite<I, T>(
  client: RedisClient,
  items: readonly I[],
  send: (item: I) => Promise<T>,
): Promise<PromiseSettledResult<T>[]> {
  return Promise.allSettled(inOneWrite(client, () => items.map(send)));
}

/**
 * Coalesces a client's socket writes across everything in flight: the first command sent while it is
 * ready corks its socket, and the socket is uncorked once the event loop has run the rest of its
 * current turn's I/O callbacks (setImmediate). What every request and job sends meanwhile goes out in
 * one write, and Redis still runs it in the order sent (inOneWrite inside it still holds).
 *
 * Why: a write to a local socket does the receiver's TCP work and wakes it, which makes the writes a
 * large part of the CPU per request (docs/research/memory-per-request.md). The cost: a command waits
 * for the end of its turn, which is longer the busier the process is. Not for a subscriber's
 * connection, nor one that waits in blocking commands (BLPOP, BZPOPMIN: BullMQ's worker sends those
 * on a duplicate, which is not coalesced).
 */
export function coalesceWrites<T extends RedisClient>(client: T): T {
  if (client instanceof Redis) return coalesceNode(client) as T;
  // A cluster client sends each command through the connection of the node serving it: each is coalesced.
  const cluster = client as Cluster;
  for (const node of cluster.nodes('all')) coalesceNode(node);
  cluster.on('+node', (node: Redis) => coalesceNode(node));
  return client;
}

const COALESCED = new WeakSet<Redis>();

function coalesceNode(client: Redis): Redis {
  if (COALESCED.has(client)) return client;
  COALESCED.add(client);
  const send = client.sendCommand.bind(client);
  let corked: { uncork(): void } | undefined;
  const flush = () => {
    const socket = corked;
    corked = undefined;
    // The socket it corked, even if a reconnect has replaced it since (uncorking a closed one is harmless).
    socket?.uncork();
  };
  client.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
    if (!corked && client.status === 'ready') {
      const socket = client.stream as { cork?: () => void; uncork?: () => void } | undefined;
      if (socket?.cork && socket.uncork) {
        socket.cork();
        corked = socket as { uncork(): void };
        setImmediate(flush);
      }
    }
    return send(...args);
  }) as Redis['sendCommand'];
  return client;
}

/**
 * A stop's last steps, which talk to Redis, given at most `limitMs`; then, done or not, `clients`
 * are closed, which fails whatever still waits on them. With Redis gone for good those steps would
 * wait for a reconnect that never comes, and the process would never exit. Answers whether they
 * finished in time.
 */
export async function finishThenClose(steps: Promise<unknown>, limitMs: number, clients: RedisClient[]): Promise<boolean> {
  // A step cut off fails once its client is closed: nobody waits for it any more.
  steps.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const inTime = await Promise.race([
    steps.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), limitMs))),
  ]);
  clearTimeout(timer);
  for (const c of clients) c.disconnect();
  return inTime;
}
