import { HTTP_METHODS, OperationDefinitionSchema, type OperationDefinition } from '@mcp-gateway/protocol';
import { QUERY_METHODS } from './request';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Resolves local `#/...` references (OpenAPI components), with a depth guard for cyclic schemas. */
function deref(doc: Json, value: unknown, depth = 0): unknown {
  if (depth > 20) return {};
  if (Array.isArray(value)) return value.map((v) => deref(doc, v, depth + 1));
  if (!isObject(value)) return value;
  const ref = value.$ref;
  if (typeof ref === 'string') {
    if (!ref.startsWith('#/')) return {};
    let node: unknown = doc;
    for (const part of ref.slice(2).split('/')) {
      const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
      node = isObject(node) ? node[key] : undefined;
    }
    return deref(doc, node ?? {}, depth + 1);
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deref(doc, v, depth + 1)]));
}

export interface OpenApiConversion {
  operations: OperationDefinition[];
  /** Operations left out, with why (no operationId, an unusable path, …). */
  skipped: string[];
}

/**
 * OpenAPI 3 → operations: `operationId` is the name; path and query parameters and the properties
 * of an `application/json` object body become one parameters schema.
 */
export function operationsFromOpenApi(doc: unknown): OpenApiConversion {
  if (!isObject(doc) || typeof doc.openapi !== 'string' || !doc.openapi.startsWith('3.')) {
    throw new Error('not an OpenAPI 3 document (no "openapi: 3.x" field)');
  }
  const paths = doc.paths;
  if (!isObject(paths)) throw new Error('the OpenAPI document has no paths');
  const operations: OperationDefinition[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>();
  for (const [path, rawItem] of Object.entries(paths)) {
    const item = deref(doc, rawItem);
    if (!isObject(item)) continue;
    const shared = Array.isArray(item.parameters) ? item.parameters : [];
    for (const method of HTTP_METHODS) {
      const op = item[method.toLowerCase()];
      if (!isObject(op)) continue;
      const where = `${method} ${path}`;
      if (typeof op.operationId !== 'string') {
        skipped.push(`${where}: no operationId`);
        continue;
      }
      const properties: Json = {};
      const required: string[] = [];
      // Query parameters of a method whose other parameters go in the body.
      const query: string[] = [];
      const byName = new Map<string, Json>();
      for (const p of [...shared, ...(Array.isArray(op.parameters) ? op.parameters : [])]) {
        if (isObject(p) && typeof p.name === 'string') byName.set(`${String(p.in)}:${p.name}`, p);
      }
      for (const p of byName.values()) {
        if (p.in !== 'path' && p.in !== 'query') continue;
        const name = p.name as string;
        properties[name] = {
          ...(isObject(p.schema) ? p.schema : {}),
          ...(typeof p.description === 'string' ? { description: p.description } : {}),
        };
        if (p.required === true || p.in === 'path') required.push(name);
        if (p.in === 'query') query.push(name);
      }
      const body = isObject(op.requestBody) ? op.requestBody : undefined;
      const content = body && isObject(body.content) ? body.content : undefined;
      const jsonBody = content ? Object.entries(content).find(([type]) => /json/i.test(type))?.[1] : undefined;
      const bodySchema = isObject(jsonBody) && isObject(jsonBody.schema) ? jsonBody.schema : undefined;
      if (bodySchema && isObject(bodySchema.properties)) {
        Object.assign(properties, bodySchema.properties);
        if (Array.isArray(bodySchema.required)) required.push(...bodySchema.required.filter((r): r is string => typeof r === 'string'));
      }
      const parsed = OperationDefinitionSchema.safeParse({
        name: op.operationId,
        description: String(op.summary ?? op.description ?? ''),
        method,
        path,
        parameters: { type: 'object', properties, ...(required.length > 0 ? { required: [...new Set(required)] } : {}) },
        ...(query.length > 0 && !QUERY_METHODS.has(method) ? { query } : {}),
      });
      if (!parsed.success) {
        skipped.push(`${where} (${op.operationId}): ${parsed.error.issues[0]?.message ?? 'invalid'}`);
        continue;
      }
      if (seen.has(parsed.data.name)) {
        skipped.push(`${where}: duplicate operationId ${parsed.data.name}`);
        continue;
      }
      seen.add(parsed.data.name);
      operations.push(parsed.data);
    }
  }
  return { operations, skipped };
}
