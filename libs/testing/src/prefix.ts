import { randomBytes } from 'node:crypto';

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
