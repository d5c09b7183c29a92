import type { RedisClient } from '@mcp-gateway/redis';
import type { GatewayConfig } from '@mcp-gateway/config';
import type { ParameterValidator } from '@mcp-gateway/backends';
import type { Broker, DeadLetters, LateIndex, ResultWaiter, WorkerPresence } from '@mcp-gateway/broker';
import type { HealthProber, RegistrationStore, ServiceRegistry } from '@mcp-gateway/registry';
import type { AgentQuotas, ResilienceStore } from '@mcp-gateway/resilience';
import type { Logger, Tracing } from '@mcp-gateway/observability';
import type { AgentUsage, GatewayMetrics, ServiceStats, ServiceSeries } from '@mcp-gateway/metrics';

import type { FastFailReadings } from './fast-fail';
import type { Lifecycle } from './lifecycle';

/** Everything the HTTP app needs, built by the caller (main, the all-in-one gateway, or a test). */
export interface ApiDeps {
  lifecycle: Lifecycle;
  config: GatewayConfig;
  /** The API's fail-fast command connection (MCP sessions, call map). */
  redis: RedisClient;
  broker: Broker;
  waiter: ResultWaiter;
  /** The sync requests this process holds that are not in the sweep's index yet. */
  lateIndex: LateIndex;
  registry: ServiceRegistry;
  registrations: RegistrationStore;
  health: HealthProber;
  validator: ParameterValidator;
  presence: WorkerPresence;
  resilience: ResilienceStore;
  /** The fast-fail readings of the services, shared by every way a request comes in. */
  fastFail: FastFailReadings;
  agentQuotas: AgentQuotas;
  deadLetters: DeadLetters;
  /** The console's charts: the last hour of each service. */
  series: ServiceSeries;
  logger: Logger;
  metrics: GatewayMetrics;
  stats: ServiceStats;
  /** Agents' usage (GET /mcp/agents/:id/usage, the console). */
  usage: AgentUsage;
  /** The configured agents (configuredAgentIds): the ones `/metrics` counts by id. */
  agents: ReadonlySet<string>;
  tracing: Tracing;
}
