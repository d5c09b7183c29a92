import { GatewayConfigSchema, type GatewayConfig, type GatewayConfigInput } from '@mcp-gateway/config';
import { testRedisTarget, uniquePrefix } from './prefix';

/** A validated config on the test Redis under a key prefix of its own, quiet logs, fast retries. */
export function testConfig(input: GatewayConfigInput = {}): GatewayConfig {
  return GatewayConfigSchema.parse({
    environment: 'test',
    logLevel: 'silent',
    retryPolicy: { maxAttempts: 3, backoffStrategy: 'exponential', initialDelay: 50, maxDelay: 200, jitter: false },
    ...input,
    redis: { ...testRedisTarget(), keyPrefix: uniquePrefix(), ...(input.redis ?? {}) },
  });
}
