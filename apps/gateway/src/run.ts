import type { MCPGateway } from './gateway';

/** Stops the gateway on SIGTERM/SIGINT, then runs `after` (e.g. stopping a private Redis). */
export function stopOnSignals(gateway: MCPGateway, after: () => Promise<void> = async () => undefined): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    gateway.logger.info({ signal }, 'gateway stopping');
    gateway
      .stop()
      .then(after)
      .then(() => process.exit(0))
      .catch(() => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

export function exitWith(err: unknown): never {
  const name = (err as { name?: string } | null)?.name;
  process.stderr.write(
    `${name === 'ConfigError' && err instanceof Error ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
}
