export * from './tools';
export * from './results';
export { createMcpEndpoint, type McpEndpoint } from './server/endpoint';
export type { HttpCaller, McpHost, McpSettings } from './server/host';
