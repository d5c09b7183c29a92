import type Redis from 'ioredis';
import type { Socket } from 'node:net';
import { coalesceWrites, createRedis, finishThenClose, inOneWrite, waitReady } from '@mcp-gateway/redis';
import { fakingOnly, testRedisUrl, uniquePrefix } from '@mcp-gateway/testing';

/** Counts the socket writes a client makes (one `_write` per plain write, one `_writev` per corked batch). */
function countWrites(socket: Socket) {
  const s = socket as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const counts = { write: 0, writev: 0 };
  const write = s._write.bind(s);
  const writev = s._writev.bind(s);
  s._write = (...a) => ((counts.write += 1), write(...a));
  s._writev = (...a) => ((counts.writev += 1), writev(...a));
  return counts;
}

describe('inOneWrite', () => {
  it('sends the commands it starts in one write, and Redis runs them in the order sent', async () => {
    const client = createRedis(testRedisUrl(), 'command', 'one-write-test');
    await waitReady(client);
    const key = `${uniquePrefix('one-write')}:list`;
    const counts = countWrites((client as Redis).stream as Socket);
    const [a, b, c] = inOneWrite(
      client,
      () => [client.rpush(key, 'first'), client.rpush(key, 'second'), client.lrange(key, 0, -1)] as const,
    );
    expect(await Promise.all([a, b, c])).toEqual([1, 2, ['first', 'second']]);
    expect(counts).toEqual({ write: 0, writev: 1 });

    // Without it, each command is a write of its own.
    await Promise.all([client.rpush(key, 'third'), client.rpush(key, 'fourth')]);
    expect(counts).toEqual({ write: 2, writev: 1 });
    await client.del(key);
    client.disconnect();
  });

  it('a client not connected yet queues the commands in order as usual', async () => {
    const client = createRedis(testRedisUrl(), 'blocking', 'one-write-offline', { lazyConnect: true });
    const key = `${uniquePrefix('one-write')}:offline`;
    const [a, b] = inOneWrite(client, () => [client.set(key, '1'), client.incr(key)] as const);
    expect(await Promise.all([a, b])).toEqual(['OK', 2]);
    await client.del(key);
    client.disconnect();
  });
});

describe('coalesceWrites', () => {
  it('sends what is issued in one turn of the event loop, from any number of callers, in one write, in order', async () => {
    const client = coalesceWrites(createRedis(testRedisUrl(), 'command', 'coalesce-test'));
    await waitReady(client);
    const key = `${uniquePrefix('coalesce')}:list`;
    const counts = countWrites((client as Redis).stream as Socket);
    // Three callers, each after an await of its own (as requests in flight are), plus one inOneWrite.
    const caller = async (v: string) => {
      await Promise.resolve();
      return client.rpush(key, v);
    };
    const sent = Promise.all([caller('a'), caller('b'), inOneWrite(client, () => client.rpush(key, 'c')), caller('d')]);
    expect(await sent).toEqual([2, 3, 1, 4]);
    // The four pushes in one write (several chunks: a writev)...
    expect(counts).toEqual({ write: 0, writev: 1 });
    // ...and in Redis in the order sent: the inOneWrite's push went first, issued without an await.
    expect(await client.lrange(key, 0, -1)).toEqual(['c', 'a', 'b', 'd']);
    // A later turn is a write of its own: nothing waits longer than the turn it was issued in.
    expect(counts.write + counts.writev).toBe(2);
    await client.del(key);
    client.disconnect();
  });

  it('a client not connected yet queues its commands in order as usual, and coalesces once ready', async () => {
    const client = coalesceWrites(createRedis(testRedisUrl(), 'blocking', 'coalesce-offline', { lazyConnect: true }));
    const key = `${uniquePrefix('coalesce')}:offline`;
    expect(await Promise.all([client.set(key, '1'), client.incr(key), client.incr(key)])).toEqual(['OK', 2, 3]);
    const counts = countWrites((client as Redis).stream as Socket);
    expect(await Promise.all([client.incr(key), client.incr(key)])).toEqual([4, 5]);
    expect(counts.write + counts.writev).toBe(1);
    await client.del(key);
    client.disconnect();
  });
});

describe('finishThenClose', () => {
  it('closes the clients once the steps are done, or once the limit passed, failing what still waits', async () => {
    const a = createRedis(testRedisUrl(), 'blocking', 'finish-then-close-a');
    await waitReady(a);
    expect(await finishThenClose(a.ping(), 5000, [a])).toBe(true);
    // The close is under way: wait for its end event rather than a fixed 10 ms (a loaded machine took longer).
    if (a.status !== 'end') await new Promise((r) => a.once('end', r));
    expect(a.status).toBe('end');

    // A step that waits on Redis forever (a blocking read here; Redis gone has the same effect).
    const b = createRedis(testRedisUrl(), 'blocking', 'finish-then-close-b');
    await waitReady(b);
    const forever = b.blpop(`${uniquePrefix('never')}:list`, 0);
    // The limit is a timer: only setTimeout is faked, the client's I/O stays real.
    jest.useFakeTimers(fakingOnly('setTimeout', 'clearTimeout'));
    try {
      let answer: boolean | undefined;
      const closing = finishThenClose(forever, 200, [b]).then((inTime) => (answer = inTime));
      await jest.advanceTimersByTimeAsync(199);
      expect(answer).toBeUndefined();
      expect(b.status).toBe('ready');
      // At the limit it answers at once, without waiting for anything else.
      await jest.advanceTimersByTimeAsync(1);
      expect(answer).toBe(false);
      expect(await closing).toBe(false);
    } finally {
      jest.useRealTimers();
    }
    await expect(forever).rejects.toThrow(/Connection is closed/);
  });
});
