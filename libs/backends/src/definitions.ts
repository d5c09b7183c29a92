import { readFile } from 'node:fs/promises';
import type { AxiosStatic } from 'axios';
import { z } from 'zod';
import { OperationDefinitionSchema, type OperationDefinition, type ServiceDefinition } from '@mcp-gateway/protocol';
import type { ServiceConfig } from '@mcp-gateway/config';
import { operationsFromOpenApi } from './openapi';

const DefinitionFileSchema = z.union([
  z.object({ operations: z.array(OperationDefinitionSchema) }).loose(),
  z.array(OperationDefinitionSchema),
]);

function describe(error: z.ZodError): string {
  const i = error.issues[0]!;
  return `${i.path.join('.') || '(root)'}: ${i.message}`;
}

/** YAML is parsed only for definition files and OpenAPI documents: the parser is loaded on first use. */
const parseYaml = (text: string): unknown => (require('yaml') as typeof import('yaml')).parse(text);

/** Operations from a definition file: `{operations: [...]}`, a bare list, or an OpenAPI 3 document. */
async function fromFile(file: string): Promise<OperationDefinition[]> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot read definition file ${file}: ${err.code ?? err.message}`);
  });
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new Error(`definition file ${file} is not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof data === 'object' && data !== null && 'openapi' in data) return operationsFromOpenApi(data).operations;
  const parsed = DefinitionFileSchema.safeParse(data);
  if (!parsed.success) throw new Error(`definition file ${file} is invalid at ${describe(parsed.error)}`);
  return Array.isArray(parsed.data) ? parsed.data : parsed.data.operations;
}

async function fromOpenApiUrl(url: string): Promise<OperationDefinition[]> {
  // Loaded here, as yaml above: most services have no OpenAPI URL, and axios is about 5 MB of RSS.
  const axios = require('axios') as AxiosStatic;
  const res = await axios.get<unknown>(url, { timeout: 10_000, maxRedirects: 3, responseType: 'text', validateStatus: () => true });
  if (res.status !== 200) throw new Error(`OpenAPI document at ${new URL(url).origin}${new URL(url).pathname} answered ${res.status}`);
  let doc: unknown;
  try {
    doc = typeof res.data === 'string' ? parseYaml(res.data) : res.data;
  } catch (err) {
    throw new Error(`OpenAPI document is not valid JSON/YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const { operations, skipped } = operationsFromOpenApi(doc);
  if (operations.length === 0) throw new Error(`OpenAPI document has no usable operation${skipped.length ? ` (${skipped.slice(0, 3).join('; ')})` : ''}`);
  return operations;
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
 * OpenAPI document. With none of them the service is dynamic: any operation is `POST {endpoint}/{name}`.
 */
export async function loadServiceDefinition(service: string, config: ServiceConfig): Promise<ServiceDefinition> {
  let def: ServiceDefinition;
  if (config.operations && config.operations.length > 0) def = { service, source: 'config', operations: config.operations };
  else if (config.definitionFile) def = { service, source: 'file', operations: await fromFile(config.definitionFile) };
  else if (config.openapiUrl) def = { service, source: 'openapi', operations: await fromOpenApiUrl(config.openapiUrl) };
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
    const parsed = OperationDefinitionSchema.safeParse({ name, method: 'POST', path: `/${name}`, parameters: { type: 'object' }, idempotent: false });
    if (!parsed.success) return undefined;
    op = parsed.data;
    if (dynamicCache.size < 10_000) dynamicCache.set(name, op);
  }
  return op;
}
