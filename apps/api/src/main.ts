import { ConfigError, GatewayConfigManager, redactUrl } from '@mcp-gateway/config';
import { createLogger, sayWhileWaiting, Tracing } from '@mcp-gateway/observability';
import { ApiServer } from './server';

/** `npm run start:api`: the HTTP half; workers run as separate processes. */
async function main(): Promise<void> {
  const config = GatewayConfigManager.load(process.env, { defaultEnvironment: 'production' });
  const logger = createLogger({
    level: config.logLevel,
    name: 'api',
    pretty: config.environment === 'development' && process.stdout.isTTY === true,
  });
  const api = new ApiServer({ config, logger, tracing: Tracing.fromEnv('mcp-gateway-api') });
  await sayWhileWaiting(logger, api.start(), { redis: redactUrl(config.redis.url) }, 'still starting: waiting for Redis to answer');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'api stopping');
    api
      .stop()
      .then(() => process.exit(0))
      .catch(() => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof ConfigError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
