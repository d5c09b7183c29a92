import { GatewayError, type OperationDefinition } from '@mcp-gateway/protocol';

const PLACEHOLDER = /\{([^{}]+)\}/g;
/** Methods whose parameters (but the path's) all go in the query string. */
export const QUERY_METHODS: ReadonlySet<string> = new Set(['GET', 'DELETE', 'HEAD']);

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
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return 'must be a string, number or boolean (it fills the path)';
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
  /** JSON body (POST/PUT/PATCH), undefined otherwise. */
  body?: Record<string, unknown>;
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
 * (GET/DELETE/HEAD, and those the operation names in `query`; arrays as repeated keys) or the JSON
 * body. The endpoint's own base path and query are kept, and the result is checked to still be on
 * the endpoint.
 */
export function buildBackendRequest(endpoint: string, op: OperationDefinition, parameters: Record<string, unknown>): BackendRequest {
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
  const basePath = base.pathname.replace(/\/+$/, '');
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
