import { GatewayConfigManager } from '@mcp-gateway/config';
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
  await gateway.start();
  stopOnSignals(gateway);
}

main().catch(exitWith);
