import { GatewayConfigManager, redactUrl } from '@mcp-gateway/config';
import { sayWhileWaiting } from '@mcp-gateway/observability';
import { MCPGateway } from './gateway';
import { exitWith, stopOnSignals } from './run';

/** `npm run gateway`: production, API + workers in one process, config from .env / environment. */
async function main(): Promise<void> {
  try {
    process.loadEnvFile('.env');
  } catch {
    // No .env file: the environment alone configures the gateway.
  }
  const gateway = new MCPGateway(GatewayConfigManager.load(process.env, { defaultEnvironment: 'production' }));
  await sayWhileWaiting(
    gateway.logger,
    gateway.start(),
    { redis: redactUrl(gateway.config.redis.url) },
    'still starting: waiting for Redis to answer',
  );
  stopOnSignals(gateway);
}

main().catch(exitWith);
