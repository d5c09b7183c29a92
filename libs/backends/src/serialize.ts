import { GatewayError, type ParameterBinding } from '@mcp-gateway/protocol';

/**
 * Argument values → HTTP parameter text, as OpenAPI's `style` and `explode` say (RFC 6570 forms).
 * Each function returns pieces already percent-encoded where the location needs it.
 */

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const scalar = (v: unknown): string => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));

/**
 * RFC 3986 reserved characters, kept as they are when a parameter says `allowReserved`; `&`, `=`,
 * `#` and `+` stay encoded all the same, or a value could add query parameters or cut the query off.
 */
const RESERVED = /[:/?[\]@!$'()*,;]/;
function encode(value: string, allowReserved = false): string {
  if (!allowReserved) return encodeURIComponent(value);
  return [...value].map((c) => (RESERVED.test(c) ? c : encodeURIComponent(c))).join('');
}

const defaultExplode = (b: ParameterBinding): boolean =>
  b.explode ?? (b.style ?? (b.in === 'query' || b.in === 'cookie' ? 'form' : 'simple')) === 'form';

/** `name=value` pairs (encoded) of one query parameter. */
export function queryPairs(b: ParameterBinding, value: unknown): string[] {
  const name = encode(b.name);
  const enc = (v: unknown) => encode(scalar(v), b.allowReserved);
  if (b.json) return [`${name}=${encode(JSON.stringify(value))}`];
  const style = b.style ?? 'form';
  const explode = defaultExplode(b);
  if (Array.isArray(value)) {
    if (explode && style !== 'deepObject') return value.map((v) => `${name}=${enc(v)}`);
    const sep = style === 'spaceDelimited' ? '%20' : style === 'pipeDelimited' ? '|' : ',';
    return [`${name}=${value.map(enc).join(sep)}`];
  }
  if (isObject(value)) {
    if (style === 'deepObject') return deepPairs(b.name, value, b.allowReserved);
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (explode) return entries.map(([k, v]) => `${encode(k)}=${enc(v)}`);
    const sep = style === 'spaceDelimited' ? '%20' : style === 'pipeDelimited' ? '|' : ',';
    return [`${name}=${entries.flatMap(([k, v]) => [encode(k), enc(v)]).join(sep)}`];
  }
  return [`${name}=${enc(value)}`];
}

/** `filter[color][R]=100`: deepObject, nested objects as further brackets, arrays as repeated keys. */
function deepPairs(prefix: string, value: Record<string, unknown>, allowReserved?: boolean): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    const key = `${prefix}[${k}]`;
    if (isObject(v)) out.push(...deepPairs(key, v, allowReserved));
    else if (Array.isArray(v)) out.push(...v.map((item) => `${encode(key)}=${encode(scalar(item), allowReserved)}`));
    else out.push(`${encode(key)}=${encode(scalar(v), allowReserved)}`);
  }
  return out;
}

/** A path parameter's text (simple, label or matrix style), every piece percent-encoded. */
export function pathText(b: ParameterBinding, value: unknown): string {
  const enc = (v: unknown) => encodeURIComponent(scalar(v));
  const style = b.style ?? 'simple';
  const explode = b.explode ?? false;
  if (b.json) return encodeURIComponent(JSON.stringify(value));
  const name = encodeURIComponent(b.name);
  if (style === 'matrix') {
    if (Array.isArray(value)) return explode ? value.map((v) => `;${name}=${enc(v)}`).join('') : `;${name}=${value.map(enc).join(',')}`;
    if (isObject(value)) {
      const entries = Object.entries(value);
      return explode
        ? entries.map(([k, v]) => `;${encodeURIComponent(k)}=${enc(v)}`).join('')
        : `;${name}=${entries.flatMap(([k, v]) => [encodeURIComponent(k), enc(v)]).join(',')}`;
    }
    return `;${name}=${enc(value)}`;
  }
  const prefix = style === 'label' ? '.' : '';
  const sep = style === 'label' && explode ? '.' : ',';
  if (Array.isArray(value)) return prefix + value.map(enc).join(sep);
  if (isObject(value)) {
    const entries = Object.entries(value);
    return (
      prefix +
      (explode
        ? entries.map(([k, v]) => `${encodeURIComponent(k)}=${enc(v)}`).join(sep)
        : entries.flatMap(([k, v]) => [encodeURIComponent(k), enc(v)]).join(','))
    );
  }
  return prefix + enc(value);
}

/** A header parameter's value (simple style); refused when it could split or corrupt the header block. */
export function headerText(b: ParameterBinding, value: unknown): string {
  let text: string;
  if (b.json) text = JSON.stringify(value);
  else if (Array.isArray(value)) text = value.map(scalar).join(',');
  else if (isObject(value)) {
    const entries = Object.entries(value);
    text = b.explode ? entries.map(([k, v]) => `${k}=${scalar(v)}`).join(',') : entries.flatMap(([k, v]) => [k, scalar(v)]).join(',');
  } else text = scalar(value);
  if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(text)) {
    throw new GatewayError('VALIDATION_ERROR', `Invalid parameter ${b.arg}: a header value must be one line of printable Latin-1 text`, {
      details: [{ path: `parameters.${b.arg}`, message: 'must be one line of printable Latin-1 text (it is sent as a header)' }],
    });
  }
  return text;
}

/** One `name=value` of the Cookie header (form style; arrays and objects comma-joined, each piece encoded). */
export function cookiePair(b: ParameterBinding, value: unknown): string {
  const enc = (v: unknown) => encodeURIComponent(scalar(v));
  const text = b.json
    ? encodeURIComponent(JSON.stringify(value))
    : Array.isArray(value)
      ? value.map(enc).join(',')
      : isObject(value)
        ? Object.entries(value)
            .flatMap(([k, v]) => [encodeURIComponent(k), enc(v)])
            .join(',')
        : enc(value);
  return `${b.name}=${text}`;
}

/** Bytes from a base64 (or base64url) argument; refused, naming the argument, when it is not base64. */
export function base64Bytes(arg: string, value: unknown): Uint8Array {
  const text = typeof value === 'string' ? value.replace(/\s+/g, '') : undefined;
  if (text === undefined || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw new GatewayError('VALIDATION_ERROR', `Invalid parameter ${arg}: must be base64-encoded bytes`, {
      details: [{ path: `parameters.${arg}`, message: 'must be base64-encoded bytes' }],
    });
  }
  return Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
}
