import { GatewayConfigManager, redactUrl } from '@mcp-gateway/config';
import { acquireRedis, redisAnswers } from '@mcp-gateway/redis';
import { startDemoBackend } from './demo-backend';
import { MCPGateway } from './gateway';
import { exitWith, stopOnSignals } from './run';

/**
 * `npm run gateway:dev`: development config, built-in demo backend, and a Redis: REDIS_URL when it
 * answers, else a private redis-server, else a container (Docker), else a message saying how to get one.
 */
async function main(): Promise<void> {
  // Checked before anything starts; a bad PORT is reported as PORT, as any other variable would be.
  const dev = GatewayConfigManager.withEnv(GatewayConfigManager.createDevelopmentConfig(), { PORT: process.env.PORT });
  const requested = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  let redisUrl = requested;
  let stopRedis = async () => undefined as void;
  if (!(await redisAnswers(requested))) {
    const local = await acquireRedis({ ...process.env, REDIS_URL: undefined });
    redisUrl = local.url;
    stopRedis = local.stop;
    process.stdout.write(`${JSON.stringify({ level: 30, msg: `nothing answers at ${redactUrl(requested)}; started Redis via ${local.source}`, redisUrl })}\n`);
  }
  const demo = await startDemoBackend(Number(process.env.DEMO_BACKEND_PORT ?? 0));
  const config = GatewayConfigManager.fromObject({
    ...dev,
    redis: { ...dev.redis, url: redisUrl },
    services: { ...dev.services, demo: { ...dev.services.demo!, endpoint: demo.url } },
  });
  const gateway = new MCPGateway(config);
  const address = await gateway.start();
  gateway.logger.info(
    {
      url: `http://127.0.0.1:${address.port}`,
      try: `curl -s -X POST http://127.0.0.1:${address.port}/mcp/request -H 'content-type: application/json' -d '{"service":"demo","operation":"echo","parameters":{"hello":"world"}}'`,
    },
    'gateway:dev ready — demo backend at ' + demo.url,
  );
  stopOnSignals(gateway, async () => {
    await demo.close();
    await stopRedis();
  });
}

main().catch(exitWith);
