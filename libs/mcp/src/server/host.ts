import type { RedisClient } from '@mcp-gateway/redis';
import type { Agent } from '@mcp-gateway/protocol';
import type { Broker, ResultWaiter, Submit } from '@mcp-gateway/broker';
import type { ServiceRegistry } from '@mcp-gateway/registry';
import type { Logger, Tracing } from '@mcp-gateway/observability';

/** What the MCP server needs from the gateway it serves; the API app builds it. */
export interface McpHost {
  /** A fail-fast command connection: sessions, the call ↔ job map, tasks, the re-attach window. */
  redis: RedisClient;
  broker: Broker;
  waiter: ResultWaiter;
  registry: ServiceRegistry;
  logger: Logger;
  tracing: Tracing;
  /** The one way a request enters the queue (the same as POST /mcp/request's). */
  submit: Submit;
  settings: McpSettings;
  /** Whether this process is stopping: a stream it closes then is not a client's cancellation. */
  stopping(): boolean;
}

export interface McpSettings {
  /** Every key the MCP server writes starts with this. */
  keyPrefix: string;
  /** A 2026-07-28 call still running after this long is answered with a task (config `mcp.taskAfterMs`). */
  taskAfterMs: number;
  /** A 2025 answer still pending after this long becomes an SSE stream (config `mcp.streamAfterMs`). */
  streamAfterMs: number;
  /** How long a result is kept after its request ends (config `results.ttlSeconds`, in ms). */
  resultTtlMs: number;
  /** Serve only loopback Host and Origin headers (DNS rebinding): set when listening on loopback without inbound auth. */
  loopbackOnly: boolean;
  /** Browser origins that may call the endpoint (config `cors.origins`; `*` any): a request with another `Origin` is refused. */
  allowedOrigins: string[];
  /** Host names the endpoint answers to (config `mcp.allowedHosts`); any when empty. */
  allowedHosts: string[];
}

/** What the HTTP request that carried a message brought: its agent, correlation id and trace. */
export interface HttpCaller {
  agent?: Agent;
  correlationId?: string;
  traceparent?: string;
}
