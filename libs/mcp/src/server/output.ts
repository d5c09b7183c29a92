import type { MCPResponse } from '@mcp-gateway/protocol';
import type { ServiceRegistry } from '@mcp-gateway/registry';
import { toolResult, type ToolResult } from '../results';

/** A result as its tool's answer, checked against the operation's outputSchema when it has one. */
export async function checkedToolResult(registry: ServiceRegistry, result: MCPResponse): Promise<ToolResult> {
  const { service, operation } = result.metadata;
  const op = result.status === 'success' ? await registry.operation(service, operation).catch(() => undefined) : undefined;
  return toolResult(result, op?.outputSchema);
}
