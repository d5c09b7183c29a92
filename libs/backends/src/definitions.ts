import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import {
  DYNAMIC_OPERATION_PATTERN,
  OperationDefinitionSchema,
  type OperationDefinition,
  type ServiceDefinition,
} from '@mcp-gateway/protocol';
import type { ServiceConfig } from '@mcp-gateway/config';
import { filterOperations, importOpenApi, type OpenApiImport } from './openapi';

const DefinitionFileSchema = z.union([
  z.object({ operations: z.array(OperationDefinitionSchema) }).loose(),
  z.array(OperationDefinitionSchema),
]);

function describe(error: z.ZodError): string {
  const i = error.issues[0]!;
  return `${i.path.join('.') || '(root)'}: ${i.message}`;
}

/** YAML is parsed only for definition files: the parser is loaded on first use. */
const parseYaml = (text: string): unknown => (require('yaml') as typeof import('yaml')).parse(text);

const isOpenApi = (data: unknown): boolean => typeof data === 'object' && data !== null && ('openapi' in data || 'swagger' in data);

/** A definition file: `{operations: [...]}`, a bare list, or an OpenAPI (3.x or Swagger 2.0) document. */
async function fromFile(file: string, filter: ServiceConfig, check: boolean): Promise<OpenApiImport | OperationDefinition[]> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot read definition file ${file}: ${err.code ?? err.message}`);
  });
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new Error(`definition file ${file} is not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (isOpenApi(data)) return importOpenApi({ file }, filter, check);
  const parsed = DefinitionFileSchema.safeParse(data);
  if (!parsed.success) throw new Error(`definition file ${file} is invalid at ${describe(parsed.error)}`);
  return Array.isArray(parsed.data) ? parsed.data : parsed.data.operations;
}

function assertUnique(operations: OperationDefinition[]): void {
  const seen = new Set<string>();
  for (const op of operations) {
    if (seen.has(op.name)) throw new Error(`operation ${op.name} is defined twice`);
    seen.add(op.name);
  }
}

/**
 * A service's operations, from (in this order) its config, its definition file, or its backend's
 * OpenAPI document, kept as its include/exclude filter says. With none of them the service is
 * dynamic: any operation is `POST {endpoint}/{name}`. `options.check`: report where an OpenAPI
 * document breaks its spec (`document.warnings`).
 */
export async function loadServiceDefinition(
  service: string,
  config: ServiceConfig,
  options: { check?: boolean } = {},
): Promise<ServiceDefinition> {
  const check = options.check ?? false;
  let def: ServiceDefinition;
  if (config.operations && config.operations.length > 0)
    def = { service, source: 'config', operations: filterOperations(config.operations, config) };
  else if (config.definitionFile) {
    const loaded = await fromFile(config.definitionFile, config, check);
    def = Array.isArray(loaded)
      ? { service, source: 'file', operations: filterOperations(loaded, config) }
      : { service, source: 'file', ...loaded };
  } else if (config.openapiUrl) def = { service, source: 'openapi', ...(await importOpenApi({ url: config.openapiUrl }, config, check)) };
  else def = { service, source: 'dynamic', operations: [] };
  assertUnique(def.operations);
  return def;
}

const dynamicCache = new Map<string, OperationDefinition>();

/** The named operation; for a dynamic service, `POST /{name}` taking any JSON object (not idempotent). */
export function findOperation(def: ServiceDefinition, name: string): OperationDefinition | undefined {
  if (def.source !== 'dynamic') return def.operations.find((o) => o.name === name);
  let op = dynamicCache.get(name);
  if (!op) {
    if (!DYNAMIC_OPERATION_PATTERN.test(name)) return undefined;
    const parsed = OperationDefinitionSchema.safeParse({
      name,
      method: 'POST',
      path: `/${name}`,
      parameters: { type: 'object' },
      idempotent: false,
    });
    if (!parsed.success) return undefined;
    op = parsed.data;
    if (dynamicCache.size < 10_000) dynamicCache.set(name, op);
  }
  return op;
}
