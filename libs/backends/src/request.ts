import { randomBytes } from 'node:crypto';
import { GatewayError, type ApiKeyPlacement, type BodyBinding, type OperationDefinition, type RequestBinding } from '@mcp-gateway/protocol';
import { isFormMedia, isJsonMedia, isMultipartMedia } from './openapi/media';
import { base64Bytes, cookiePair, headerText, pathText, queryPairs } from './serialize';

const PLACEHOLDER = /\{([^{}]+)\}/g;
/** Methods whose parameters (but the path's) all go in the query string. */
export const QUERY_METHODS: ReadonlySet<string> = new Set(['GET', 'DELETE', 'HEAD', 'OPTIONS']);

export function pathParameterNames(path: string): string[] {
  return [...path.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/**
 * Why a path parameter value cannot be used, or undefined when it can. The value is encoded as one
 * segment anyway; on top of that, nothing that is (or decodes to) a `.`/`..` segment is accepted,
 * so no backend or proxy that decodes `%2F` can be walked out of the endpoint's path.
 */
export function pathValueProblem(value: unknown): string | undefined {
  if (value === undefined || value === null) return 'is required (it fills the path)';
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
    return 'must be a string, number or boolean (it fills the path)';
  const s = String(value);
  if (s === '') return 'must not be empty (it fills the path)';
  let decoded = s;
  for (let i = 0; i < 3; i++) {
    try {
      const next = decodeURIComponent(decoded);
      if (next === decoded) break;
      decoded = next;
    } catch {
      break;
    }
  }
  if (decoded.split(/[\\/]/).some((seg) => seg === '.' || seg === '..')) return 'must not contain . or .. path segments';
  return undefined;
}

export interface BackendRequest {
  method: OperationDefinition['method'];
  /** Absolute URL, query included. */
  url: string;
  /** The URL's origin, and its path with the query: what the connection pool is given. */
  origin: string;
  path: string;
  /** JSON body, undefined when there is none. */
  body?: unknown;
  /** A body in another media type (form, multipart, text, bytes), or JSON of a media type of its own. */
  encoded?: { contentType: string; data: string | Uint8Array };
  /** Header and cookie parameters, and Accept: set by an imported operation. */
  headers?: Record<string, string>;
}

/** What the service's config adds to a call: its base path override and its API key. */
export interface RequestOptions {
  /** The service's `basePath`: replaces the document's server path ('' or '/' for none). */
  basePath?: string;
  /** The service's API key, placed where the operation's security scheme says. */
  apiKey?: ApiKeyPlacement & { value: string };
}

function appendQuery(search: URLSearchParams, key: string, value: unknown): void {
  if (value === undefined || value === null) return;
  if (Array.isArray(value)) {
    for (const v of value) appendQuery(search, key, v);
    return;
  }
  search.append(key, typeof value === 'object' ? JSON.stringify(value) : String(value));
}

/**
 * The backend call for an operation: path parameters URL-encoded into the path, the rest in the query
 * (GET/DELETE/HEAD/OPTIONS, and those the operation names in `query`; arrays as repeated keys) or the JSON
 * body. The endpoint's own base path and query are kept, and the result is checked to still be on
 * the endpoint.
 */
export function buildBackendRequest(
  endpoint: string,
  op: OperationDefinition,
  parameters: Record<string, unknown>,
  options: RequestOptions = {},
): BackendRequest {
  if (op.request) return buildBoundRequest(endpoint, op, op.request, parameters, options);
  const base = parsedEndpoint(endpoint);
  const rest: Record<string, unknown> = { ...parameters };
  const problems: { path: string; message: string }[] = [];
  const filled = op.path.replace(PLACEHOLDER, (_m, name: string) => {
    const value = parameters[name];
    delete rest[name];
    const problem = pathValueProblem(value);
    if (problem) {
      problems.push({ path: name, message: problem });
      return '_';
    }
    return encodeURIComponent(String(value));
  });
  if (problems.length > 0) {
    throw new GatewayError('VALIDATION_ERROR', `Invalid parameter ${problems[0]!.path}: ${problems[0]!.message}`, { details: problems });
  }
  const basePath = `${base.pathname.replace(/\/+$/, '')}${(options.basePath ?? '').replace(/\/+$/, '')}`;
  const url = new URL(base.href);
  url.pathname = `${basePath}${filled}`;
  const inQuery = QUERY_METHODS.has(op.method);
  if (inQuery) for (const [k, v] of Object.entries(rest)) appendQuery(url.searchParams, k, v);
  else if (op.query) {
    for (const k of op.query) {
      if (rest[k] === undefined) continue;
      appendQuery(url.searchParams, k, rest[k]);
      delete rest[k];
    }
  }
  const body = inQuery ? undefined : rest;
  if (url.origin !== base.origin || !url.pathname.startsWith(basePath)) {
    throw new GatewayError('VALIDATION_ERROR', 'The parameters would move the call off the service endpoint');
  }
  return { method: op.method, url: url.href, origin: url.origin, path: `${url.pathname}${url.search}`, ...(body ? { body } : {}) };
}

/** Endpoints parsed once each (a URL per call is measurable); never mutated, and bounded. */
const endpoints = new Map<string, URL>();
const MAX_PARSED_ENDPOINTS = 1000;

function parsedEndpoint(endpoint: string): URL {
  let url = endpoints.get(endpoint);
  if (!url) {
    url = new URL(endpoint);
    if (endpoints.size >= MAX_PARSED_ENDPOINTS) endpoints.clear();
    endpoints.set(endpoint, url);
  }
  return url;
}

/** The path between endpoint and operation: the config's, else the document's unless the endpoint ends with it. */
function effectiveBasePath(endpointPath: string, binding: RequestBinding, options: RequestOptions): string {
  if (options.basePath !== undefined) return options.basePath.replace(/\/+$/, '');
  const doc = binding.basePath?.replace(/\/+$/, '') ?? '';
  return doc === '' || endpointPath.endsWith(doc) ? '' : doc;
}

function invalid(arg: string, message: string): GatewayError {
  return new GatewayError('VALIDATION_ERROR', `Invalid parameter ${arg}: ${message}`, {
    details: [{ path: `parameters.${arg}`, message }],
  });
}

/** The path with each `{name}` filled as its binding's style says; nothing in it may climb out of the path. */
function fillPath(op: OperationDefinition, binding: RequestBinding, parameters: Record<string, unknown>): string {
  return op.path.replace(PLACEHOLDER, (_m, name: string) => {
    const b = binding.parameters.find((p) => p.in === 'path' && p.name === name);
    const value = b ? parameters[b.arg] : undefined;
    const arg = b?.arg ?? name;
    if (value === undefined || value === null || value === '') throw invalid(arg, 'is required (it fills the path)');
    const text = pathText(b ?? { arg, in: 'path', name }, value);
    if (pathValueProblem(text)) throw invalid(arg, pathValueProblem(text)!);
    return text;
  });
}

/** Content-Type and bytes of the body an imported operation sends. */
function encodeBody(
  body: BodyBinding,
  parameters: Record<string, unknown>,
  bound: ReadonlySet<string>,
): { json?: unknown; encoded?: BackendRequest['encoded'] } | undefined {
  let value: unknown;
  if (body.arg !== undefined) value = parameters[body.arg];
  else if (body.rest) {
    const fields = Object.fromEntries(Object.entries(parameters).filter(([k, v]) => !bound.has(k) && v !== undefined));
    value = Object.keys(fields).length > 0 || body.required ? fields : undefined;
  } else {
    const fields = Object.fromEntries((body.properties ?? []).filter((p) => parameters[p] !== undefined).map((p) => [p, parameters[p]]));
    value = Object.keys(fields).length > 0 || body.required ? fields : undefined;
  }
  if (value === undefined) return undefined;
  const binary = new Set(body.binary ?? []);
  const type = body.mediaType;
  if (body.arg !== undefined && binary.has(body.arg)) return { encoded: { contentType: type, data: base64Bytes(body.arg, value) } };
  if (isJsonMedia(type))
    return type === 'application/json' ? { json: value } : { encoded: { contentType: type, data: JSON.stringify(value) } };
  if (isFormMedia(type)) return { encoded: { contentType: type, data: formEncode(value) } };
  if (isMultipartMedia(type)) return { encoded: multipart(value, binary) };
  return { encoded: { contentType: type, data: typeof value === 'string' ? value : JSON.stringify(value) } };
}

const scalarText = (v: unknown): string => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));

function formEncode(value: unknown): string {
  const form = new URLSearchParams();
  const fields = typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.entries(value) : [['body', value] as const];
  for (const [k, v] of fields) {
    if (v === undefined || v === null) continue;
    for (const item of Array.isArray(v) ? v : [v]) form.append(k, scalarText(item));
  }
  return form.toString();
}

/** multipart/form-data: base64 arguments as file parts, objects as JSON parts, arrays as repeated parts. */
function multipart(value: unknown, binary: ReadonlySet<string>): NonNullable<BackendRequest['encoded']> {
  const boundary = `mcp-gateway-${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  const quoted = (s: string) => s.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const fields = typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.entries(value) : [['body', value] as const];
  for (const [name, v] of fields) {
    if (v === undefined || v === null) continue;
    for (const item of Array.isArray(v) ? v : [v]) {
      let head = `--${boundary}\r\nContent-Disposition: form-data; name="${quoted(name)}"`;
      let data: Buffer;
      if (binary.has(name)) {
        head += `; filename="${quoted(name)}"\r\nContent-Type: application/octet-stream`;
        data = Buffer.from(base64Bytes(name, item));
      } else if (typeof item === 'object' && item !== null) {
        head += '\r\nContent-Type: application/json';
        data = Buffer.from(JSON.stringify(item));
      } else data = Buffer.from(String(item));
      chunks.push(Buffer.from(`${head}\r\n\r\n`), data, Buffer.from('\r\n'));
    }
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/form-data; boundary=${boundary}`, data: Buffer.concat(chunks) };
}

/** Query names an argument may not produce: the document's fixed ones and the API key's. */
function ownedQueryNames(binding: RequestBinding, options: RequestOptions): Set<string> {
  const names = new Set((binding.fixed ?? []).filter((f) => f.in === 'query').map((f) => f.name));
  if (options.apiKey?.in === 'query') names.add(options.apiKey.name);
  return names;
}

/** An exploded object names its own query parameters: none of them may be one the gateway or document sets. */
function checkedPairs(b: RequestBinding['parameters'][number], pairs: string[], owned: ReadonlySet<string>): string[] {
  for (const pair of pairs) {
    const name = decodeURIComponent(pair.slice(0, Math.max(0, pair.indexOf('='))));
    if (owned.has(name)) throw invalid(b.arg, `must not set the query parameter ${name} (the gateway sets it)`);
  }
  return pairs;
}

/**
 * An imported operation's call: each argument where its binding says (path, query, header, cookie,
 * body), the document's fixed parameters, its base path and media types. As for every call, the
 * result must still be on the endpoint.
 */
function buildBoundRequest(
  endpoint: string,
  op: OperationDefinition,
  binding: RequestBinding,
  parameters: Record<string, unknown>,
  options: RequestOptions,
): BackendRequest {
  const base = parsedEndpoint(endpoint);
  const endpointPath = base.pathname.replace(/\/+$/, '');
  const prefix = `${endpointPath}${effectiveBasePath(endpointPath, binding, options)}`;
  const query: string[] = base.search ? [base.search.slice(1)] : [];
  const headers: Record<string, string> = { Accept: binding.accept ?? 'application/json' };
  const cookies: string[] = [];
  for (const f of binding.fixed ?? []) {
    if (f.in === 'header') headers[f.name] = f.value;
    else if (f.in === 'cookie') cookies.push(`${f.name}=${encodeURIComponent(f.value)}`);
    else query.push(`${encodeURIComponent(f.name)}=${encodeURIComponent(f.value)}`);
  }
  const owned = ownedQueryNames(binding, options);
  for (const b of binding.parameters) {
    const value = parameters[b.arg];
    if (b.in === 'path' || value === undefined || value === null) continue;
    if (b.in === 'query') query.push(...checkedPairs(b, queryPairs(b, value), owned));
    else if (b.in === 'header') headers[b.name] = headerText(b, value);
    else cookies.push(cookiePair(b, value));
  }
  const key = options.apiKey;
  if (key?.in === 'query') query.push(`${encodeURIComponent(key.name)}=${encodeURIComponent(key.value)}`);
  else if (key?.in === 'cookie') cookies.push(`${key.name}=${encodeURIComponent(key.value)}`);
  else if (key) {
    for (const k of Object.keys(headers)) if (k.toLowerCase() === key.name.toLowerCase()) delete headers[k];
    headers[key.name] = key.value;
  }
  if (cookies.length > 0) headers.Cookie = cookies.join('; ');
  const path = `${prefix}${fillPath(op, binding, parameters)}`;
  const url = new URL(`${base.origin}${path}${query.length > 0 ? `?${query.join('&')}` : ''}`);
  if (url.origin !== base.origin || !url.pathname.startsWith(endpointPath)) {
    throw new GatewayError('VALIDATION_ERROR', 'The parameters would move the call off the service endpoint');
  }
  const body = binding.body ? encodeBody(binding.body, parameters, new Set(binding.parameters.map((b) => b.arg))) : undefined;
  return {
    method: op.method,
    url: url.href,
    origin: url.origin,
    path: `${url.pathname}${url.search}`,
    headers,
    ...(body?.json !== undefined ? { body: body.json } : {}),
    ...(body?.encoded ? { encoded: body.encoded } : {}),
  };
}
