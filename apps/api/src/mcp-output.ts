import type { MCPResponse } from '@mcp-gateway/protocol';
import { toolResult, type ToolResult } from '@mcp-gateway/mcp';
import type { ApiDeps } from './deps';

/** A result as its tool's answer, checked against the operation's outputSchema when it has one. */
export async function checkedToolResult(registry: ApiDeps['registry'], result: MCPResponse): Promise<ToolResult> {
  const { service, operation } = result.metadata;
  const op = result.status === 'success' ? await registry.operation(service, operation).catch(() => undefined) : undefined;
  return toolResult(result, op?.outputSchema);
}
