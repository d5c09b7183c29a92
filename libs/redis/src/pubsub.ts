import { isCluster, type RedisClient } from './connections';

/**
 * The gateway's own channels (results, cancels, breaker news, registry changes). On a cluster they
 * are sharded channels: each lives on the shard serving its slot, which carries its messages in the
 * order they were sent, and no other shard carries them. Classic PUBLISH on a cluster goes to some
 * node and is relayed to every node, so two messages of one channel sent through different nodes
 * can arrive out of order. On a single Redis they are classic channels.
 */
export type MessageHandler = (channel: string, message: string) => void;

/** Publishes `message` on `channel` (sharded on a cluster, see above). */
export async function publish(client: RedisClient, channel: string, message: string): Promise<void> {
  await (isCluster(client) ? client.spublish(channel, message) : client.publish(channel, message));
}

/**
 * Subscribes to `channels` and hands `onMessage` the messages of every channel the subscriber is
 * subscribed to (it filters by channel). One channel per command: on a cluster each goes to the
 * node serving it.
 */
export async function subscribe(subscriber: RedisClient, channels: readonly string[], onMessage: MessageHandler): Promise<void> {
  const sharded = isCluster(subscriber);
  subscriber.on(sharded ? 'smessage' : 'message', onMessage);
  if (sharded) await Promise.all(channels.map((c) => subscriber.ssubscribe(c)));
  else await subscriber.subscribe(...channels);
}

/** Undoes `subscribe`. */
export async function unsubscribe(subscriber: RedisClient, channels: readonly string[], onMessage: MessageHandler): Promise<void> {
  const sharded = isCluster(subscriber);
  subscriber.off(sharded ? 'smessage' : 'message', onMessage);
  if (sharded) await Promise.all(channels.map((c) => subscriber.sunsubscribe(c)));
  else await subscriber.unsubscribe(...channels);
}
