import Redis from 'ioredis';
import { testRedisUrl, uniquePrefix } from '@mcp-gateway/testing';
import { legacySessions } from '../src/server/sessions';

let redis: Redis;
let prefix: string;

beforeEach(() => {
  redis = new Redis(testRedisUrl());
  prefix = uniquePrefix('mcps');
});

afterEach(async () => {
  await redis.quit();
});

describe('2025 sessions in Redis', () => {
  it('a session is its agent’s: another agent naming it finds nothing, and an ended one is gone', async () => {
    const sessions = legacySessions(redis, prefix);
    const id = await sessions.open('agent-a');
    expect(await sessions.resume(id, 'agent-a')).toBe(true);
    expect(await sessions.resume(id, 'agent-b')).toBe(false);
    expect(await sessions.resume('no-such-session', 'agent-a')).toBe(false);
    await sessions.end(id);
    expect(await sessions.resume(id, 'agent-a')).toBe(false);
  });

  it('a use keeps the session alive for another hour, and another process sees it (state is in Redis only)', async () => {
    const id = await legacySessions(redis, prefix).open('');
    await redis.expire(`${prefix}:session:${id}`, 5);
    // A second instance stands for another API replica.
    expect(await legacySessions(redis, prefix).resume(id, '')).toBe(true);
    expect(await redis.ttl(`${prefix}:session:${id}`)).toBeGreaterThan(3500);
  });
});
