export * from './schema';
export { ConfigError, type ConfigIssue } from './errors';
export { GATEWAY_ENV, SERVICE_ENV, loadEnvConfig, renderEnvExample, serviceEnvName, type EnvKey } from './env';
export { loadFileConfig } from './file';
export { configuredAgentIds } from './agents';
export { GatewayConfigManager, assertSafeToServe } from './manager';
export { redactConfig, redactUrl, REDACTED, SECRET_KEYS } from './redact';
