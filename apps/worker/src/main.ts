import { GatewayConfigManager, ConfigError, redactUrl } from '@mcp-gateway/config';
import { createLogger, sayWhileWaiting, Tracing } from '@mcp-gateway/observability';
import { startMetricsServer } from '@mcp-gateway/metrics';
import { WorkerPool } from './pool';

/** `npm run start:worker`: a worker-pool process serving WORKER_SERVICES (default: every service). */
async function main(): Promise<void> {
  const config = GatewayConfigManager.load(process.env, { defaultEnvironment: 'production' });
  const logger = createLogger({
    level: config.logLevel,
    name: 'worker',
    pretty: config.environment === 'development' && process.stdout.isTTY === true,
  });
  const pool = new WorkerPool({ config, logger, tracing: Tracing.fromEnv('mcp-gateway-worker') });
  // Listening before the pool starts: a port that cannot be used stops the process before it takes a job.
  const port = config.worker.metricsPort;
  const metrics =
    port === undefined
      ? undefined
      : await startMetricsServer(pool.metrics, port, config.host).catch((err: NodeJS.ErrnoException) => {
          throw new ConfigError([
            { source: 'WORKER_METRICS_PORT', message: `cannot listen on ${config.host}:${port} (${err.code ?? err.message})` },
          ]);
        });
  await sayWhileWaiting(logger, pool.start(), { redis: redactUrl(config.redis.url) }, 'still starting: waiting for Redis to answer');
  if (metrics) logger.info({ port: metrics.port }, 'worker metrics listening');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'worker stopping');
    pool
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error({ err: String(err) }, 'worker stop failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof ConfigError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
