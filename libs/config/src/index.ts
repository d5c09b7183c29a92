export * from './schema';
export { ConfigError, type ConfigIssue } from './errors';
export { AGENT_ENV, GATEWAY_ENV, SERVICE_ENV, loadEnvConfig, renderEnvExample, serviceEnvName, type EnvKey } from './env';
export { loadFileConfig } from './file';
export { GatewayConfigManager, assertSafeToServe } from './manager';
export { redactConfig, redactUrl, REDACTED, SECRET_KEYS } from './redact';
export { agentPolicies, configuredAgentIds, severalAgents, type AgentLimits, type AgentPolicy } from './agents';
