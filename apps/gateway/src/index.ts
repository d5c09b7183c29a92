export { MCPGateway, type MCPGatewayOptions } from './gateway';
export { GatewayConfigManager, GatewayConfigSchema, ConfigError } from '@mcp-gateway/config';
export type { GatewayConfig, GatewayConfigInput, ServiceConfig } from '@mcp-gateway/config';
export { createDemoBackendApp, startDemoBackend } from './demo-backend';
