export { agentLabel, GatewayMetrics, OTHER_AGENT, type CircuitStateName, type SharedStateSource } from './metrics';
export { percentile, ServiceStats, statsKeys, type LatencySummary, type ServiceStatsSnapshot, type UsageOf } from './stats';
export { AgentUsage, agentIndexKey, agentUsageKey, type AgentUsageSnapshot, type ServiceUsage } from './usage';
export { startMetricsServer } from './server';
