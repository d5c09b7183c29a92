import { randomUUID } from 'node:crypto';
import type { Response } from 'express';
import type { RedisClient } from '@mcp-gateway/redis';
import { openEventStream } from './exchange';

/** A legacy session lives this long after its last use. */
const SESSION_TTL_S = 3600;

interface SessionRecord {
  agentId: string;
  createdAt: string;
}

/**
 * 2025-era sessions (`Mcp-Session-Id`), kept in Redis so that any API replica serves any session. A
 * session belongs to the agent that opened it: another agent naming it finds nothing.
 */
export function legacySessions(redis: RedisClient, prefix: string) {
  const key = (id: string) => `${prefix}:session:${id}`;
  return {
    async open(agentId: string): Promise<string> {
      const id = randomUUID();
      const rec: SessionRecord = { agentId, createdAt: new Date().toISOString() };
      await redis.set(key(id), JSON.stringify(rec), 'EX', SESSION_TTL_S);
      return id;
    },

    /** Whether the session exists and is this agent's; a use keeps it alive. */
    async resume(id: string, agentId: string): Promise<boolean> {
      const raw = await redis.get(key(id));
      const rec = raw ? (JSON.parse(raw) as SessionRecord) : undefined;
      if (!rec || rec.agentId !== agentId) return false;
      await redis.expire(key(id), SESSION_TTL_S);
      return true;
    },

    async end(id: string): Promise<void> {
      await redis.del(key(id));
    },
  };
}

/** The GET streams 2025 sessions hold open on this process, where server notifications go. */
export class NotificationStreams {
  private readonly open = new Set<Response>();

  add(res: Response): void {
    const keepAlive = openEventStream(res);
    this.open.add(res);
    res.on('close', () => {
      clearInterval(keepAlive);
      this.open.delete(res);
    });
  }

  /** A JSON-RPC notification to every open stream. */
  notify(method: string): void {
    const frame = `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method })}\n\n`;
    for (const res of this.open) res.write(frame);
  }

  /** Ends every stream (the server is stopping). */
  closeAll(): void {
    for (const res of this.open) res.end();
    this.open.clear();
  }
}
