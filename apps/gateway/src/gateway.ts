import type { AddressInfo } from 'node:net';
import { ApiServer } from '@mcp-gateway/api';
import { WorkerPool } from '@mcp-gateway/worker';
import { assertSafeToServe, GatewayConfigManager, type GatewayConfig, type GatewayConfigInput } from '@mcp-gateway/config';
import { createLogger, Tracing, type Logger } from '@mcp-gateway/observability';
import { GatewayMetrics } from '@mcp-gateway/metrics';

export interface MCPGatewayOptions {
  logger?: Logger;
  /** Run workers in this process (default true). */
  workers?: boolean;
}

/**
 * API and workers in one process (`npm run gateway`, `gateway:dev`, or programmatic use):
 *   const gateway = new MCPGateway(GatewayConfigManager.createDevelopmentConfig());
 *   await gateway.start(8080);
 *   await gateway.stop();
 */
export class MCPGateway {
  readonly config: GatewayConfig;
  readonly logger: Logger;
  private api?: ApiServer;
  private pool?: WorkerPool;

  constructor(
    config: GatewayConfig | GatewayConfigInput,
    private readonly options: MCPGatewayOptions = {},
  ) {
    this.config = GatewayConfigManager.fromObject(config);
    this.logger =
      options.logger ??
      createLogger({
        level: this.config.logLevel,
        name: 'gateway',
        pretty: this.config.environment === 'development' && process.stdout.isTTY === true,
      });
  }

  /**
   * Starts workers, then the API on `port` (default: config.port; 0 picks a free one). A config the
   * API would refuse (production with no inbound credential) is refused before any worker takes a
   * job; a start that fails part way stops what it started.
   */
  async start(port: number = this.config.port): Promise<AddressInfo> {
    assertSafeToServe(this.config);
    // One metrics registry for the process: the API's /metrics shows the workers' counters too.
    const metrics = new GatewayMetrics();
    const tracing = Tracing.fromEnv('mcp-gateway');
    try {
      if (this.options.workers !== false) {
        this.pool = new WorkerPool({ config: this.config, logger: this.logger, metrics, tracing });
        await this.pool.start();
      }
      this.api = new ApiServer({ config: this.config, logger: this.logger, metrics, tracing });
      return await this.api.start(port);
    } catch (err) {
      await this.stop().catch((e: unknown) => this.logger.warn({ err: String(e) }, 'could not stop what a failed start had started'));
      throw err;
    }
  }

  get url(): string | undefined {
    const a = this.api?.address;
    return a ? `http://127.0.0.1:${a.port}` : undefined;
  }

  /**
   * Graceful, both at once and each within the grace period: the API takes no new request and lets
   * its waiting callers have their results; the workers take no new job and finish the ones they hold.
   * (One after the other, the workers went on taking jobs for the API's whole grace, and the stop took
   * twice as long.)
   */
  async stop(): Promise<void> {
    await Promise.all([this.api?.stop(), this.pool?.stop()]);
    this.api = undefined;
    this.pool = undefined;
  }
}
