export { GatewayMetrics, type CircuitStateName, type SharedStateSource } from './metrics';
export { percentile, ServiceStats, statsKeys, type LatencySummary, type ServiceStatsSnapshot } from './stats';
export { startMetricsServer } from './server';
