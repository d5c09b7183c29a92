import { GatewayConfigManager, redactUrl } from '@mcp-gateway/config';
import { acquireRedis, redisAnswers } from '@mcp-gateway/redis';
import { startDemoBackend } from './demo-backend';
import { MCPGateway } from './gateway';
import { exitWith, stopOnSignals } from './run';

/** The variables `gateway:dev` takes over its development config (with REDIS_URL and DEMO_BACKEND_PORT). */
const DEV_ENV = ['PORT', 'HOST', 'MCP_REDIS_KEY_PREFIX', 'SHUTDOWN_GRACE_MS', 'LOG_LEVEL'] as const;

/**
 * `npm run gateway:dev`: development config, built-in demo backend, and a Redis: REDIS_URL when it
 * answers, else a private redis-server, else a container (Docker), else a message saying how to get one.
 */
async function main(): Promise<void> {
  // Checked before anything starts; a bad PORT is reported as PORT, as any other variable would be.
  // Its own key prefix and loopback by default: a development gateway (no inbound auth) pointed at a
  // Redis another gateway uses must not consume that gateway's queues, nor serve the network.
  const base = GatewayConfigManager.createDevelopmentConfig();
  const env = Object.fromEntries(DEV_ENV.map((k) => [k, process.env[k]]));
  const dev = GatewayConfigManager.withEnv({ ...base, host: '127.0.0.1', redis: { ...base.redis, keyPrefix: 'mcp-dev' } }, env);
  const requested = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  let redisUrl = requested;
  let stopRedis = async () => undefined as void;
  if (!(await redisAnswers(requested))) {
    const local = await acquireRedis({ ...process.env, REDIS_URL: undefined });
    redisUrl = local.url;
    stopRedis = local.stop;
    process.stdout.write(
      `${JSON.stringify({ level: 30, msg: `nothing answers at ${redactUrl(requested)}; started Redis via ${local.source}`, redisUrl })}\n`,
    );
  }
  // What this process started is stopped again when it cannot go on (a port taken, say): a private
  // redis-server must not outlive it.
  let demo: Awaited<ReturnType<typeof startDemoBackend>> | undefined;
  let gateway: MCPGateway;
  let address: { port: number };
  try {
    demo = await startDemoBackend(demoPort(process.env.DEMO_BACKEND_PORT));
    const config = GatewayConfigManager.fromObject({
      ...dev,
      redis: { ...dev.redis, url: redisUrl },
      services: { ...dev.services, demo: { ...dev.services.demo!, endpoint: demo.url } },
    });
    gateway = new MCPGateway(config);
    address = await gateway.start();
  } catch (err) {
    await demo?.close().catch(() => undefined);
    await stopRedis().catch(() => undefined);
    throw err;
  }
  const { url: demoUrl, close: stopDemo } = demo;
  gateway.logger.info(
    {
      url: `http://127.0.0.1:${address.port}`,
      try: `curl -s -X POST http://127.0.0.1:${address.port}/mcp/request -H 'content-type: application/json' -d '{"service":"demo","operation":"echo","parameters":{"hello":"world"}}'`,
    },
    'gateway:dev ready — demo backend at ' + demoUrl,
  );
  stopOnSignals(gateway, async () => {
    await stopDemo();
    await stopRedis();
  });
}

/** DEMO_BACKEND_PORT (default: any free port), checked as PORT is. */
function demoPort(value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`DEMO_BACKEND_PORT: must be a whole number from 0 to 65535 (got ${JSON.stringify(value)})`);
  return port;
}

main().catch(exitWith);
