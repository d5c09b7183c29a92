import { acquireRedis, freePort } from '@mcp-gateway/redis';

describe('acquireRedis', () => {
  it('a REDIS_URL that does not answer is named in the error without its password', async () => {
    const dead = await freePort();
    const err = await acquireRedis({ REDIS_URL: `redis://ops:s3cret-pw@127.0.0.1:${dead}/0` }).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(`REDIS_URL=redis://ops:[REDACTED]@127.0.0.1:${dead}/0 does not answer PING`);
  });
});
