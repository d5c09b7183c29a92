import { createHash } from 'node:crypto';
import { isIdempotent, isReadOnly, type OperationDefinition, type ServiceDefinition } from '@mcp-gateway/protocol';

/** What MCP clients accept everywhere: letters, digits, _ and -, at most 64 characters. */
export const MAX_TOOL_NAME = 64;
const SAFE = /[^A-Za-z0-9_-]/g;

/** The tool that calls any operation of a service that has no definition. */
export const DYNAMIC_TOOL_SUFFIX = 'call';

export interface ToolAnnotations {
  title?: string;
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

export interface GatewayTool {
  name: string;
  title: string;
  description: string;
  inputSchema: Record<string, unknown> & { type: 'object' };
  /** The JSON object a success answers with, when the operation's document says (MCP 2025-06-18 and later). */
  outputSchema?: Record<string, unknown> & { type: 'object' };
  annotations: ToolAnnotations;
}

/** Where a tool goes: one operation, or (dynamic services) whatever operation the arguments name. */
export interface ToolTarget {
  service: string;
  /** Undefined for a dynamic service's `call` tool: the operation is an argument. */
  operation?: string;
}

/**
 * `<service>__<operation>`, with any other character turned into `_`. When that changed the name or
 * it is too long, a short hash of the exact pair keeps it unique and stable across replicas.
 */
export function toolName(service: string, operation: string): string {
  const raw = `${service}__${operation}`;
  const safe = raw.replace(SAFE, '_');
  if (safe === raw && safe.length <= MAX_TOOL_NAME) return safe;
  const hash = createHash('sha256').update(`${service}\n${operation}`).digest('hex').slice(0, 6);
  return `${safe.slice(0, MAX_TOOL_NAME - hash.length - 1)}_${hash}`;
}

function objectSchema(schema: Record<string, unknown>): Record<string, unknown> & { type: 'object' } {
  if (schema.type === 'object') return schema as Record<string, unknown> & { type: 'object' };
  // A definition's parameters are an object by construction; anything else becomes one holding it.
  return { ...schema, type: 'object' };
}

export function operationTool(service: string, op: OperationDefinition): GatewayTool {
  const readOnly = isReadOnly(op);
  return {
    name: toolName(service, op.name),
    title: `${service}: ${op.name}`,
    description: op.description || `${op.method} ${op.path} on ${service}`,
    inputSchema: objectSchema(op.parameters),
    ...(op.outputSchema ? { outputSchema: objectSchema(op.outputSchema) } : {}),
    annotations: {
      title: `${service}: ${op.name}`,
      readOnlyHint: readOnly,
      destructiveHint: op.method === 'DELETE',
      idempotentHint: isIdempotent(op),
      openWorldHint: true,
    },
  };
}

export function dynamicTool(service: string, description?: string): GatewayTool {
  return {
    name: toolName(service, DYNAMIC_TOOL_SUFFIX),
    title: `${service}: any operation`,
    description: `${description ? `${description}. ` : ''}Calls an operation of ${service} by name (the service publishes no definition): POST {endpoint}/{operation} with the parameters as JSON body.`,
    inputSchema: {
      type: 'object',
      properties: {
        operation: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,128}$', description: 'Operation name' },
        parameters: { type: 'object', description: 'Sent as the JSON body' },
      },
      required: ['operation'],
      additionalProperties: false,
    },
    annotations: {
      title: `${service}: any operation`,
      readOnlyHint: false,
      destructiveHint: true,
      idempotentHint: false,
      openWorldHint: true,
    },
  };
}

/**
 * The tools of some services, in a stable order (services in registry order, operations as defined),
 * with the map back from each tool name to its target.
 */
export function toolsFor(definitions: { definition: ServiceDefinition; description?: string }[]): {
  tools: GatewayTool[];
  targets: Map<string, ToolTarget>;
} {
  const tools: GatewayTool[] = [];
  const targets = new Map<string, ToolTarget>();
  for (const { definition, description } of definitions) {
    if (definition.source === 'dynamic') {
      const t = dynamicTool(definition.service, description);
      tools.push(t);
      targets.set(t.name, { service: definition.service });
      continue;
    }
    for (const op of definition.operations) {
      const t = operationTool(definition.service, op);
      if (targets.has(t.name)) continue;
      tools.push(t);
      targets.set(t.name, { service: definition.service, operation: op.name });
    }
  }
  return { tools, targets };
}
