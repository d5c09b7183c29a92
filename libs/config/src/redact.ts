export const REDACTED = '[REDACTED]';

/** Keys whose values are secrets wherever they appear (config dumps, headers, error details). */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'token',
  'apikey',
  'accesstoken',
  'refreshtoken',
  'clientsecret',
  'admintoken',
  'key',
  'password',
  'authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'secret',
]);

/**
 * A URL safe to log or show: its password replaced (or a user name that stands alone, which is how a
 * token is often given: `https://<token>@host`) and its query (which can carry keys) dropped. The one
 * helper for this: config dumps, Redis URLs, endpoints.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Not a URL the parser takes, but it may still hold credentials before an `@`.
    return url.replace(/\/\/[^@/]*@/, `//${REDACTED}@`);
  }
  if (!u.password && !u.username && !u.search) return url;
  if (u.password) u.password = REDACTED;
  else if (u.username) u.username = REDACTED;
  u.search = '';
  // The URL class percent-encodes the brackets in user info; the log reads better without.
  return u.toString().replace(encodeURIComponent(REDACTED), REDACTED);
}

/** A deep copy safe to log or show: credentials, keys and tokens replaced, URL passwords and queries hidden. */
export function redactConfig<T>(value: T): T {
  const walk = (v: unknown, key?: string): unknown => {
    if (key !== undefined && SECRET_KEYS.has(key.toLowerCase()) && v !== undefined && v !== null && typeof v !== 'object') return REDACTED;
    if (Array.isArray(v)) return v.map((x) => walk(x));
    if (typeof v === 'object' && v !== null) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    }
    if (typeof v === 'string' && /^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(v)) return redactUrl(v);
    if (typeof v === 'string' && (key === 'url' || key === 'endpoint' || key === 'tokenUrl' || key === 'openapiUrl')) return redactUrl(v);
    return v;
  };
  return walk(value) as T;
}
