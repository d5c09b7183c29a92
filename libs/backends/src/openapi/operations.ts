import {
  OperationDefinitionSchema,
  type BodyBinding,
  type DefinitionNote,
  type OperationDefinition,
  type ParameterBinding,
  type RequestBinding,
} from '@mcp-gateway/protocol';
import { HEADER_NAME } from '@mcp-gateway/config';
import { concreteMediaType, isFormMedia, isJsonMedia, isMultipartMedia, isTextMedia, mediaRank } from './media';
import { deref, isObject, SchemaConverter, type Json } from './schema';

/** Methods of an OpenAPI path item, in the order operations are listed. */
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/**
 * Header parameters the gateway never takes from an argument: hop-by-hop and framing headers, the
 * ones OpenAPI says to ignore (Accept, Content-Type, Authorization), and the gateway's own.
 */
const RESERVED_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
  'accept',
  'content-type',
  'authorization',
  'cookie',
  'user-agent',
  'x-correlation-id',
  'traceparent',
  'tracestate',
  'idempotency-key',
]);
/** Argument names every MCP client and model API accepts. */
const SAFE_ARG = /^[A-Za-z0-9_.-]{1,64}$/;
const sanitizeArg = (name: string): string => name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) || 'arg';

export interface ImportedOperations {
  operations: OperationDefinition[];
  notes: DefinitionNote[];
  /** Operations the document lists (each method of each path). */
  total: number;
  /** Per operation name: its tags, for include/exclude filters. */
  tags: Map<string, string[]>;
}

/**
 * A path with its `#a=b` fragment or `?a=b` query taken off: the pairs become fixed parameters; a
 * bare word (`/cookies#formExploded`) only tells two operations apart.
 */
function splitPath(raw: string): { path: string; pairs: [string, string][] } {
  const cut = raw.search(/[#?]/);
  if (cut < 0) return { path: raw, pairs: [] };
  const rest = raw
    .slice(cut + 1)
    .replace(/#/g, '&')
    .split('&')
    .filter((part) => part.includes('='))
    .join('&');
  const pairs = [...new URLSearchParams(rest)].filter(([k]) => k !== '');
  return { path: raw.slice(0, cut) || '/', pairs };
}

/** `GET /pets/{petId}#Action=X` → `get_pets_petId_Action_X`: readable, and the same for the same document. */
function generatedName(method: string, rawPath: string): string {
  const words = rawPath
    .replace(/[{}]/g, '')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean);
  return `${method}_${words.length > 0 ? words.join('_') : 'root'}`.slice(0, 128);
}

/** The path of the first server of an operation, path item or document, variables at their defaults. */
function serverPath(servers: unknown): string | undefined {
  if (!Array.isArray(servers) || !isObject(servers[0]) || typeof servers[0].url !== 'string') return undefined;
  const vars = isObject(servers[0].variables) ? servers[0].variables : {};
  const url = servers[0].url.replace(/\{([^{}]+)\}/g, (_m, v: string) => {
    const def = isObject(vars[v]) ? vars[v].default : undefined;
    return def === undefined ? '' : String(def);
  });
  let path: string;
  try {
    path = /^[a-z][a-z0-9+.-]*:\/\/|^\/\//i.test(url)
      ? new URL(url, 'http://placeholder').pathname
      : new URL(url, 'http://placeholder/').pathname;
  } catch {
    return undefined;
  }
  path = path.replace(/\/+$/, '');
  return path === '' || path.split('/').some((s) => s === '.' || s === '..') ? undefined : path;
}

/** The first apiKey scheme among the operation's security alternatives: where the service's key goes. */
function apiKeyPlacement(doc: Json, security: unknown): RequestBinding['apiKey'] {
  if (!Array.isArray(security)) return undefined;
  const schemes = isObject(doc.components) && isObject(doc.components.securitySchemes) ? doc.components.securitySchemes : {};
  for (const requirement of security) {
    if (!isObject(requirement)) continue;
    for (const name of Object.keys(requirement)) {
      const scheme = deref(doc, schemes[name]);
      if (scheme?.type !== 'apiKey' || typeof scheme.name !== 'string') continue;
      const where = scheme.in;
      if ((where === 'header' && HEADER_NAME.test(scheme.name)) || where === 'query' || where === 'cookie')
        return { in: where, name: scheme.name };
    }
  }
  return undefined;
}

/** Media types of the success answers (the 2xx ones, else `default`), JSON first: the Accept header. */
function successContent(doc: Json, responses: unknown): { accept?: string; json?: unknown } {
  if (!isObject(responses)) return {};
  const codes = Object.keys(responses)
    .filter((c) => /^2(\d\d|XX)$/i.test(c))
    .sort();
  const chosen = (codes.length > 0 ? codes : 'default' in responses ? ['default'] : []).map((c) => deref(doc, responses[c]));
  const types: string[] = [];
  let json: unknown;
  for (const r of chosen) {
    if (!r || !isObject(r.content)) continue;
    for (const [type, media] of Object.entries(r.content)) {
      if (!types.includes(type)) types.push(type);
      if (json === undefined && isJsonMedia(type) && isObject(media) && media.schema !== undefined) json = media.schema;
    }
  }
  types.sort((a, b) => Number(!isJsonMedia(a)) - Number(!isJsonMedia(b)));
  return { ...(types.length > 0 ? { accept: types.join(', ').slice(0, 1024) } : {}), ...(json !== undefined ? { json } : {}) };
}

const BINARY_FORMATS = new Set(['binary']);
const isBinarySchema = (doc: Json, schema: unknown): boolean => {
  const s = deref(doc, schema);
  return (
    !!s && (s.type === 'string' || s.type === 'file' || s.type === undefined) && (BINARY_FORMATS.has(String(s.format)) || s.type === 'file')
  );
};
const base64Schema = (mediaType: string | undefined, description: unknown): Json => ({
  type: 'string',
  contentEncoding: 'base64',
  ...(mediaType ? { contentMediaType: mediaType } : {}),
  description: [typeof description === 'string' ? description : '', '(base64-encoded bytes)'].filter(Boolean).join(' '),
});

/** The state of one operation's import: its arguments, their schemas and where each goes. */
class OperationImport {
  readonly properties: Json = {};
  readonly required: string[] = [];
  readonly bindings: ParameterBinding[] = [];
  readonly fixed: { in: ParameterBinding['in']; name: string; value: string }[] = [];
  readonly notes: DefinitionNote[] = [];
  body?: BodyBinding;
  dependentRequired?: Record<string, string[]>;
  /** The top schema's additionalProperties: false, unless a free-form body takes other arguments. */
  additional: Json | boolean = false;
  readonly converter: SchemaConverter;

  constructor(
    readonly doc: Json,
    readonly where: string,
  ) {
    this.converter = new SchemaConverter(doc, 'request');
  }

  /** A unique, client-safe argument name for a parameter, noting a rename. */
  argName(name: string, where: string): string {
    let arg = SAFE_ARG.test(name) ? name : sanitizeArg(name);
    if (Object.hasOwn(this.properties, arg)) arg = sanitizeArg(`${where}_${name}`);
    for (let i = 2; Object.hasOwn(this.properties, arg); i++) arg = sanitizeArg(`${where}_${name}_${i}`);
    if (arg !== name)
      this.notes.push({ where: this.where, change: 'parameter-renamed', reason: `${where} parameter ${name} is the argument ${arg}` });
    return arg;
  }

  leaveOut(reason: string): void {
    this.notes.push({ where: this.where, change: 'parameter-left-out', reason });
  }
}

function parameterSchema(imp: OperationImport, p: Json): { schema: unknown; json: boolean } {
  if (p.schema !== undefined) return { schema: imp.converter.convert(p.schema), json: false };
  if (isObject(p.content)) {
    const [type, media] = Object.entries(p.content)[0] ?? [];
    if (type && isObject(media)) return { schema: imp.converter.convert(media.schema), json: isJsonMedia(type) };
  }
  return { schema: { type: 'string' }, json: false };
}

function addParameter(imp: OperationImport, p: Json, forbiddenHeaders: Set<string>, apiKey?: RequestBinding['apiKey']): void {
  const name = p.name as string;
  const where = p.in as ParameterBinding['in'];
  if (apiKey && apiKey.in !== 'header' && apiKey.in === where && apiKey.name === name)
    return imp.leaveOut(`${where} parameter ${name} carries the service's credential`);
  if (
    where === 'header' &&
    (!HEADER_NAME.test(name) || RESERVED_HEADERS.has(name.toLowerCase()) || forbiddenHeaders.has(name.toLowerCase()))
  ) {
    const why = !HEADER_NAME.test(name)
      ? 'is not an HTTP header name'
      : forbiddenHeaders.has(name.toLowerCase())
        ? "carries the service's credential"
        : 'is set by the gateway';
    return imp.leaveOut(`header ${name} ${why}`);
  }
  const arg = imp.argName(name, where);
  const { schema, json } = parameterSchema(imp, p);
  const extra: Json = {};
  if (typeof p.description === 'string') extra.description = p.description;
  if (p.deprecated === true) extra.deprecated = true;
  if (p.example !== undefined) extra.examples = [p.example];
  imp.properties[arg] = isObject(schema) ? { ...schema, ...extra } : schema;
  if (p.required === true || where === 'path') imp.required.push(arg);
  const style = typeof p.style === 'string' ? p.style : undefined;
  imp.bindings.push({
    arg,
    in: where,
    name,
    ...(style && ['form', 'simple', 'label', 'matrix', 'spaceDelimited', 'pipeDelimited', 'deepObject'].includes(style)
      ? { style: style as ParameterBinding['style'] }
      : {}),
    ...(typeof p.explode === 'boolean' ? { explode: p.explode } : {}),
    ...(p.allowReserved === true ? { allowReserved: true } : {}),
    ...(json ? { json: true } : {}),
  });
}

/** The parameters of the path item and the operation (the operation's win), resolved. */
function declaredParameters(doc: Json, item: Json, op: Json): Json[] {
  const byKey = new Map<string, Json>();
  for (const raw of [...(Array.isArray(item.parameters) ? item.parameters : []), ...(Array.isArray(op.parameters) ? op.parameters : [])]) {
    const p = deref(doc, raw);
    if (p && typeof p.name === 'string' && p.name !== '' && ['path', 'query', 'header', 'cookie'].includes(String(p.in)))
      byKey.set(`${String(p.in)}:${p.name}`, p);
  }
  return [...byKey.values()];
}

/** The body's arguments: its properties when it is a plain object whose names are free, else one `body`. */
function addBody(imp: OperationImport, op: Json): void {
  const requestBody = deref(imp.doc, op.requestBody);
  if (!requestBody || !isObject(requestBody.content)) return;
  const entries = Object.entries(requestBody.content).sort(([a], [b]) => mediaRank(a) - mediaRank(b));
  const [listed, media] = entries[0] ?? [];
  if (!listed) return;
  const mediaType = concreteMediaType(listed);
  const rawSchema = isObject(media) ? media.schema : undefined;
  const resolved = deref(imp.doc, rawSchema);
  const required = requestBody.required === true;
  const structured = isJsonMedia(mediaType) || isFormMedia(mediaType) || isMultipartMedia(mediaType);
  const props =
    resolved && isObject(resolved.properties) && !resolved.allOf && !resolved.anyOf && !resolved.oneOf ? resolved.properties : undefined;
  const names = props ? Object.keys(props) : [];
  const spread = structured && props && names.length > 0 && names.every((n) => SAFE_ARG.test(n) && !Object.hasOwn(imp.properties, n));
  // A free-form object body (`{type: object}`, nothing declared): the arguments no parameter takes are its properties.
  const freeForm =
    structured &&
    resolved &&
    (!props || names.length === 0) &&
    (resolved.type === 'object' || resolved.type === undefined) &&
    !resolved.allOf &&
    !resolved.anyOf &&
    !resolved.oneOf &&
    rawSchema !== undefined;
  if (freeForm) {
    const extra = resolved.additionalProperties;
    imp.additional = extra === undefined ? true : (imp.converter.convert(extra) as Json | boolean);
    imp.body = { mediaType, rest: true, ...(required ? { required: true } : {}) };
    return;
  }
  const binary: string[] = [];
  if (spread) {
    const converted = imp.converter.convert({ ...resolved, $ref: undefined }) as Json;
    const convertedProps = (converted.properties ?? {}) as Json;
    for (const name of Object.keys(convertedProps)) {
      const sub = props[name];
      if (isMultipartMedia(mediaType) && isBinarySchema(imp.doc, sub)) {
        imp.properties[name] = base64Schema(undefined, deref(imp.doc, sub)?.description);
        binary.push(name);
      } else if (
        isMultipartMedia(mediaType) &&
        isObject(deref(imp.doc, sub)) &&
        deref(imp.doc, sub)!.type === 'array' &&
        isBinarySchema(imp.doc, deref(imp.doc, sub)!.items)
      ) {
        imp.properties[name] = { type: 'array', items: base64Schema(undefined, undefined) };
        binary.push(name);
      } else imp.properties[name] = convertedProps[name];
    }
    const inner = (converted.required as string[] | undefined) ?? [];
    if (required) imp.required.push(...inner);
    else if (inner.length > 0) {
      // An optional body still needs its required properties once any of its properties is sent.
      const needs = Object.keys(convertedProps)
        .map((p) => [p, inner.filter((r) => r !== p)] as const)
        .filter(([, rest]) => rest.length > 0);
      if (needs.length > 0) imp.dependentRequired = { ...imp.dependentRequired, ...Object.fromEntries(needs) };
    }
    imp.body = {
      mediaType,
      properties: Object.keys(convertedProps),
      ...(binary.length > 0 ? { binary } : {}),
      ...(required ? { required: true } : {}),
    };
    return;
  }
  const arg = Object.hasOwn(imp.properties, 'body')
    ? Object.hasOwn(imp.properties, 'requestBody')
      ? 'request_body'
      : 'requestBody'
    : 'body';
  const bytes = !structured && !isTextMedia(mediaType) && (rawSchema === undefined || isBinarySchema(imp.doc, rawSchema));
  if (bytes) {
    imp.properties[arg] = base64Schema(mediaType, requestBody.description);
    binary.push(arg);
  } else {
    const schema = rawSchema === undefined ? (structured ? {} : { type: 'string' }) : imp.converter.convert(rawSchema);
    imp.properties[arg] =
      isObject(schema) && typeof requestBody.description === 'string' && !schema.description
        ? { ...schema, description: requestBody.description }
        : schema;
  }
  if (required) imp.required.push(arg);
  imp.body = { mediaType, arg, ...(binary.length > 0 ? { binary } : {}) };
}

interface OperationSource {
  doc: Json;
  rawPath: string;
  item: Json;
  method: (typeof METHODS)[number];
  op: Json;
}

/** One document operation → ours, or the reason it cannot be one. */
function importOperation(
  { doc, rawPath, item, method, op }: OperationSource,
  name: string,
): { operation?: OperationDefinition; notes: DefinitionNote[]; reason?: string } {
  const where = `${method.toUpperCase()} ${rawPath}`;
  if (method === 'trace') return { notes: [], reason: 'TRACE echoes the request back, credentials included' };
  const { path, pairs } = splitPath(rawPath);
  const imp = new OperationImport(doc, where);
  const apiKey = apiKeyPlacement(doc, op.security ?? doc.security);
  const forbidden = new Set(apiKey?.in === 'header' ? [apiKey.name.toLowerCase()] : []);
  const declared = declaredParameters(doc, item, op);
  const fixedNames = new Set(pairs.map(([k]) => k));
  for (const [k, v] of pairs) {
    const where = (declared.find((p) => p.name === k && p.in !== 'path')?.in as ParameterBinding['in'] | undefined) ?? 'query';
    if (
      where === 'header' &&
      (!HEADER_NAME.test(k) || RESERVED_HEADERS.has(k.toLowerCase()) || forbidden.has(k.toLowerCase()) || !/^[\t\x20-\x7e]*$/.test(v))
    ) {
      imp.leaveOut(`fixed header ${k} from the path is set by the gateway, or is not a one-line header`);
      continue;
    }
    imp.fixed.push({ in: where, name: k, value: v });
  }
  const success = successContent(doc, op.responses);
  imp.converter.scan(...declared.map((p) => p.schema ?? p.content), deref(doc, op.requestBody)?.content);
  for (const p of declared) if (!fixedNames.has(p.name as string)) addParameter(imp, p, forbidden, apiKey);
  // A placeholder the document forgot to declare is still a required argument.
  for (const m of path.matchAll(/\{([^{}]+)\}/g)) {
    if (imp.bindings.some((b) => b.in === 'path' && b.name === m[1])) continue;
    addParameter(imp, { name: m[1], in: 'path', required: true, schema: { type: 'string' } }, forbidden, apiKey);
  }
  addBody(imp, op);
  const defs = imp.converter.definitions();
  const basePath = serverPath(op.servers) ?? serverPath(item.servers) ?? serverPath(doc.servers);
  const request: RequestBinding = {
    parameters: imp.bindings,
    ...(imp.fixed.length > 0 ? { fixed: imp.fixed } : {}),
    ...(imp.body ? { body: imp.body } : {}),
    ...(success.accept ? { accept: success.accept } : {}),
    ...(basePath ? { basePath } : {}),
    ...(apiKey ? { apiKey } : {}),
  };
  const description = [op.summary, op.description].filter((t): t is string => typeof t === 'string' && t.trim() !== '').join('\n\n');
  const parsed = OperationDefinitionSchema.safeParse({
    name,
    description: description.length > 4096 ? `${description.slice(0, 4095)}…` : description,
    method: method.toUpperCase(),
    path,
    parameters: {
      type: 'object',
      properties: imp.properties,
      ...(imp.required.length > 0 ? { required: [...new Set(imp.required)] } : {}),
      additionalProperties: imp.additional,
      ...(imp.dependentRequired ? { dependentRequired: imp.dependentRequired } : {}),
      ...(defs ? { $defs: defs } : {}),
    },
    request,
    ...outputSchema(doc, success.json),
  });
  if (!parsed.success)
    return { notes: imp.notes, reason: `${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message ?? 'invalid'}` };
  return { operation: parsed.data, notes: imp.notes };
}

/** A JSON success answer that is an object becomes the tool's outputSchema. */
function outputSchema(doc: Json, schema: unknown): { outputSchema?: Json } {
  const top = deref(doc, schema);
  if (!top || !(top.type === 'object' || (top.type === undefined && isObject(top.properties)))) return {};
  const converter = new SchemaConverter(doc, 'response');
  converter.scan(schema);
  // The top is converted in place (a cycle back to it still goes through $defs).
  const ref = isObject(schema) && typeof schema.$ref === 'string' ? [schema.$ref] : [];
  const converted = converter.convert(top, ref);
  if (!isObject(converted)) return {};
  const defs = converter.definitions();
  return { outputSchema: { ...converted, type: 'object', ...(defs ? { $defs: defs } : {}) } };
}

/**
 * Every operation of an OpenAPI 3 document (references kept, external ones bundled in) → ours, with
 * notes on what was renamed or left out. Names: the operationId as it is, else one made from method
 * and path; a name met again gets `_2`, `_3`, ….
 */
export function importOperations(doc: Json): ImportedOperations {
  const out: ImportedOperations = { operations: [], notes: [], total: 0, tags: new Map() };
  const taken = new Set<string>();
  const paths = isObject(doc.paths) ? doc.paths : {};
  // Every operationId is reserved first: a name made for another operation never takes one.
  const ids = new Set<string>();
  for (const item of Object.values(paths).map((i) => deref(doc, i))) {
    for (const method of METHODS) {
      const id = isObject(item?.[method]) ? (item[method] as Json).operationId : undefined;
      if (typeof id === 'string') ids.add(id);
    }
  }
  for (const [rawPath, rawItem] of Object.entries(paths)) {
    const item = deref(doc, rawItem);
    if (!item) continue;
    for (const method of METHODS) {
      const op = item[method];
      if (!isObject(op)) continue;
      out.total++;
      const where = `${method.toUpperCase()} ${rawPath}`;
      const id = typeof op.operationId === 'string' && /^[^\x00-\x1f\x7f]{1,256}$/.test(op.operationId) ? op.operationId : undefined;
      const wanted = id ?? generatedName(method, rawPath);
      let name = wanted;
      const free = (n: string) => !taken.has(n) && (n === id || !ids.has(n));
      for (let i = 2; !free(name); i++) name = `${wanted}_${i}`;
      const result = importOperation({ doc, rawPath, item, method, op }, name);
      if (!result.operation) {
        out.notes.push({ where, change: 'left-out', reason: result.reason ?? 'unusable' });
        continue;
      }
      taken.add(name);
      if (name !== wanted)
        out.notes.push({
          where,
          operation: name,
          change: 'renamed',
          reason: `${id ? 'operationId' : 'name'} ${wanted} is used by an earlier operation`,
        });
      else if (!id)
        out.notes.push({
          where,
          operation: name,
          change: 'renamed',
          reason:
            typeof op.operationId === 'string'
              ? 'operationId has control characters or is too long'
              : 'no operationId: named from method and path',
        });
      out.notes.push(...result.notes.map((n) => ({ ...n, operation: name })));
      out.operations.push(result.operation);
      out.tags.set(name, Array.isArray(op.tags) ? op.tags.filter((t): t is string => typeof t === 'string') : []);
    }
  }
  return out;
}
