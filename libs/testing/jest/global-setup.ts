import { acquireRedis, type LocalRedis as TestRedis } from '@mcp-gateway/redis';

declare global {
  // eslint-disable-next-line no-var
  var __MCP_TEST_REDIS__: TestRedis | undefined;
}

export default async function globalSetup(): Promise<void> {
  const redis = await acquireRedis(process.env);
  globalThis.__MCP_TEST_REDIS__ = redis;
  process.env.TEST_REDIS_URL = redis.url;
  process.stderr.write(`\n[tests] Redis from ${redis.source}: ${redis.url.replace(/\/\/[^@/]*@/, '//***@')}\n`);
}
