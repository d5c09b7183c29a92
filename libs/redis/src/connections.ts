import Redis, { type RedisOptions } from 'ioredis';

/**
 * How a connection is used decides its options (see ARCHITECTURE "Known traps"):
 * - `blocking`: BullMQ workers and subscribers: commands wait through reconnects (maxRetriesPerRequest null).
 * - `command`: the API's producer connection: fail fast while Redis is away (no offline queue), so a
 *   request gets UNAVAILABLE at once instead of hanging.
 */
export type ConnectionRole = 'blocking' | 'command';

export function createRedis(url: string, role: ConnectionRole, connectionName?: string, extra: RedisOptions = {}): Redis {
  const options: RedisOptions = {
    connectionName,
    // Reconnect forever, backing off to 2 s; the process decides when to give up, not the client.
    retryStrategy: (times) => Math.min(times * 100, 2000),
    ...(role === 'blocking'
      ? { maxRetriesPerRequest: null, enableOfflineQueue: true }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000 }),
    ...extra,
  };
  const client = new Redis(url, options);
  // Errors surface on the commands that fail; an unhandled 'error' event would crash the process.
  client.on('error', () => undefined);
  return client;
}

/** Resolves once the client is ready, or rejects after `timeoutMs`. */
export async function waitReady(client: Redis, timeoutMs = 5000): Promise<void> {
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
export function inOneWrite<T>(client: Redis, issue: () => T): T {
  const socket = client.status === 'ready' ? (client.stream as { cork?: () => void; uncork?: () => void } | undefined) : undefined;
  socket?.cork?.();
  try {
    return issue();
  } finally {
    socket?.uncork?.();
  }
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
export function coalesceWrites<T extends Redis>(client: T): T {
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
export async function finishThenClose(steps: Promise<unknown>, limitMs: number, clients: Redis[]): Promise<boolean> {
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
