import { createMcpEndpoint, type McpEndpoint } from '@mcp-gateway/mcp';
import { authEnabled } from './auth';
import type { ApiDeps } from './deps';
import { createSubmitter } from './submission';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** The MCP server (libs/mcp) on this API's parts. */
export function mcpEndpoint(deps: ApiDeps): McpEndpoint {
  const { config } = deps;
  return createMcpEndpoint({
    redis: deps.redis,
    broker: deps.broker,
    waiter: deps.waiter,
    registry: deps.registry,
    logger: deps.logger,
    tracing: deps.tracing,
    submit: createSubmitter(deps),
    stopping: () => deps.lifecycle.stopping,
    settings: {
      keyPrefix: `${config.redis.keyPrefix}:mcp`,
      taskAfterMs: config.mcp.taskAfterMs,
      streamAfterMs: config.mcp.streamAfterMs,
      resultTtlMs: config.results.ttlSeconds * 1000,
      // Listening on loopback without inbound auth: a browser page must not reach it through DNS rebinding.
      loopbackOnly: LOOPBACK.has(config.host) && !authEnabled(config),
      allowedOrigins: config.cors.origins,
      allowedHosts: config.mcp.allowedHosts,
    },
  });
}
