export { agentLabel, CIRCUIT_LEVEL, GatewayMetrics, OTHER_AGENT, type CircuitStateName, type SharedStateSource } from './metrics';
export { percentile, ServiceStats, statsKeys, type LatencySummary, type ServiceStatsSnapshot, type UsageOf } from './stats';
export { AgentUsage, agentIndexKey, agentUsageKey, type AgentUsageSnapshot, type ServiceUsage } from './usage';
export { startMetricsServer } from './server';
export {
  LATENCY_BOUNDS_MS,
  SERIES_POINTS,
  SERIES_STEP_MS,
  ServiceSeries,
  seriesIncrements,
  seriesKey,
  seriesTarget,
  type CircuitLevel,
  type SeriesPoint,
} from './series';
