import { ConfigError, type ConfigIssue } from './errors';

/**
 * The environment variables, as one table: it drives the loader, the error messages (a bad value is
 * reported under its variable's name) and `.env.example` (see renderEnvExample).
 */
type Kind = 'string' | 'int' | 'number' | 'bool' | 'list' | 'apiKeys' | 'toolsets';

export interface EnvKey {
  /** Full name, or for service keys the suffix after `MCP_SERVICE_<NAME>_`. */
  name: string;
  /** Where the value goes in GatewayConfig (service keys: relative to the service). */
  path: string[];
  kind: Kind;
  /** Default as written in `.env.example` ('' when none). */
  default: string;
  meaning: string;
  /** Allowed values for a string key. */
  oneOf?: readonly string[];
  /** Shown commented out in .env.example as an example value (no default). */
  example?: string;
}

export const GATEWAY_ENV: readonly EnvKey[] = [
  {
    name: 'NODE_ENV',
    path: ['environment'],
    kind: 'string',
    default: 'production',
    meaning:
      'development | production | test. The process commands default to production, which refuses to serve without MCP_GATEWAY_API_KEYS / MCP_ADMIN_TOKEN unless MCP_ALLOW_ANONYMOUS=true',
    oneOf: ['development', 'production', 'test'],
  },
  { name: 'PORT', path: ['port'], kind: 'int', default: '8080', meaning: 'HTTP port of the API' },
  { name: 'HOST', path: ['host'], kind: 'string', default: '0.0.0.0', meaning: 'Interface the API listens on' },
  {
    name: 'MCP_GATEWAY_URL',
    path: ['gatewayUrl'],
    kind: 'string',
    default: 'http://localhost:8080',
    meaning: 'Public base URL of the gateway',
  },
  {
    name: 'MCP_DEFAULT_TIMEOUT',
    path: ['defaultTimeout'],
    kind: 'int',
    default: '30000',
    meaning: 'Default request deadline in ms (metadata.timeout and a service timeout override it)',
  },
  {
    name: 'REDIS_URL',
    path: ['redis', 'url'],
    kind: 'string',
    default: 'redis://127.0.0.1:6379',
    meaning: 'Redis holding queues, results and the shared limiter/breaker state',
  },
  {
    name: 'REDIS_CLUSTER_NODES',
    path: ['redis', 'clusterNodes'],
    kind: 'list',
    default: '',
    meaning:
      'Seed nodes of a Redis Cluster (comma list of redis:// or rediss:// URLs with their credentials); takes precedence over REDIS_URL',
    example: 'redis://10.0.0.1:7000,redis://10.0.0.2:7000',
  },
  {
    name: 'REDIS_SENTINELS',
    path: ['redis', 'sentinel', 'sentinels'],
    kind: 'list',
    default: '',
    meaning:
      'Redis Sentinels (comma list of host:port): the primary is the one they name; REDIS_URL gives only its password, database and TLS',
    example: 'sentinel-1:26379,sentinel-2:26379,sentinel-3:26379',
  },
  {
    name: 'REDIS_SENTINEL_NAME',
    path: ['redis', 'sentinel', 'name'],
    kind: 'string',
    default: '',
    meaning: 'The primary group the sentinels monitor (default mymaster)',
    example: 'mymaster',
  },
  {
    name: 'REDIS_SENTINEL_PASSWORD',
    path: ['redis', 'sentinel', 'password'],
    kind: 'string',
    default: '',
    meaning: "The sentinels' own password, if they require one",
  },
  {
    name: 'REDIS_WAIT_REPLICAS',
    path: ['redis', 'waitReplicas'],
    kind: 'int',
    default: '0',
    meaning:
      'Replicas that must acknowledge (WAIT) each accepted request, each non-idempotent call about to be sent, and each result before it is published; 0: replication is asynchronous (see the README on failover)',
  },
  {
    name: 'MCP_REDIS_KEY_PREFIX',
    path: ['redis', 'keyPrefix'],
    kind: 'string',
    default: 'mcp',
    meaning: 'Prefix of every Redis key (several gateways can share one Redis)',
  },
  {
    name: 'MCP_RESULT_TTL_SECONDS',
    path: ['results', 'ttlSeconds'],
    kind: 'int',
    default: '3600',
    meaning: 'How long results and idempotency keys are kept',
  },
  {
    name: 'MCP_MAX_BODY_BYTES',
    path: ['limits', 'maxBodyBytes'],
    kind: 'int',
    default: '1048576',
    meaning: 'Largest accepted request body (413 beyond)',
  },
  {
    name: 'MCP_TASK_AFTER_MS',
    path: ['mcp', 'taskAfterMs'],
    kind: 'int',
    default: '1000',
    meaning: 'A 2026-07-28 MCP tools/call from a client that takes tasks becomes a task when it has not ended after this long',
  },
  {
    name: 'MCP_ALLOWED_HOSTS',
    path: ['mcp', 'allowedHosts'],
    kind: 'list',
    default: '',
    meaning:
      'Comma list of host names (no port) the MCP endpoint answers to; any when empty (a loopback listener without auth: localhost only)',
  },
  {
    name: 'MCP_STREAM_AFTER_MS',
    path: ['mcp', 'streamAfterMs'],
    kind: 'int',
    default: '10000',
    meaning:
      'A 2025-era MCP answer still pending after this long becomes an SSE stream kept alive by comments (for proxies that cut idle connections)',
  },
  {
    name: 'MCP_HEALTH_INTERVAL_MS',
    path: ['health', 'intervalMs'],
    kind: 'int',
    default: '10000',
    meaning: 'How often each service HEALTH_PATH is probed (one process probes at a time)',
  },
  {
    name: 'LOG_LEVEL',
    path: ['logLevel'],
    kind: 'string',
    default: 'info',
    meaning: 'fatal | error | warn | info | debug | trace | silent',
    oneOf: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
  },
  {
    name: 'MCP_RETRY_MAX_ATTEMPTS',
    path: ['retryPolicy', 'maxAttempts'],
    kind: 'int',
    default: '3',
    meaning: 'Attempts in all, the first included (gateway-wide default)',
  },
  {
    name: 'MCP_RETRY_BACKOFF',
    path: ['retryPolicy', 'backoffStrategy'],
    kind: 'string',
    default: 'exponential',
    meaning: 'linear | exponential',
    oneOf: ['linear', 'exponential'],
  },
  {
    name: 'MCP_RETRY_INITIAL_DELAY',
    path: ['retryPolicy', 'initialDelay'],
    kind: 'int',
    default: '1000',
    meaning: 'Delay before the first retry (ms)',
  },
  { name: 'MCP_RETRY_MAX_DELAY', path: ['retryPolicy', 'maxDelay'], kind: 'int', default: '10000', meaning: 'Cap on any retry delay (ms)' },
  {
    name: 'MCP_RETRY_JITTER',
    path: ['retryPolicy', 'jitter'],
    kind: 'bool',
    default: 'true',
    meaning: 'Full jitter: a random delay between 0 and the computed one',
  },
  {
    name: 'MCP_CORS_ORIGINS',
    path: ['cors', 'origins'],
    kind: 'list',
    default: '',
    meaning: 'Comma list of allowed browser origins (* only outside production)',
  },
  {
    name: 'MCP_GATEWAY_API_KEYS',
    path: ['security', 'apiKeys'],
    kind: 'apiKeys',
    default: '',
    meaning:
      'Inbound agent keys, comma separated: key:agentId[:grant|grant...], a grant being svc, svc.<operation glob>, svc.readOnly or @<toolset>',
    example: 'change-me-long-key:agent-1:users|orders',
  },
  {
    name: 'MCP_TOOLSETS',
    path: ['toolsets'],
    kind: 'toolsets',
    default: '',
    meaning:
      'Named sets of operations, comma separated: name:grant|grant...; each is served at /mcp/<name>, and a key grant @<name> binds it',
    example: 'support:users.readOnly|tickets',
  },
  {
    name: 'MCP_AGENT_RATE_LIMIT_RPM',
    path: ['agentDefaults', 'requestsPerMinute'],
    kind: 'number',
    default: '',
    meaning: 'Requests per minute each agent may send (unset: no limit); MCP_AGENT_<ID>_RATE_LIMIT_RPM for one agent',
    example: '600',
  },
  {
    name: 'MCP_AGENT_BURST_LIMIT',
    path: ['agentDefaults', 'burstLimit'],
    kind: 'int',
    default: '',
    meaning: "Each agent's token bucket capacity (default: 5 s of its rate)",
    example: '50',
  },
  {
    name: 'MCP_AGENT_MAX_IN_FLIGHT',
    path: ['agentDefaults', 'maxInFlight'],
    kind: 'int',
    default: '',
    meaning: 'Requests each agent may have queued or running at once (unset: no limit)',
    example: '100',
  },
  {
    name: 'MCP_FAIR_QUEUES',
    path: ['fairQueues'],
    kind: 'bool',
    default: 'true',
    meaning: "Share a backed-up service's workers among the agents with work queued (round-robin, MCP_AGENT_<ID>_WEIGHT)",
  },
  {
    name: 'MCP_DEAD_LETTERS_MAX',
    path: ['deadLetters', 'maxPerService'],
    kind: 'int',
    default: '1000',
    meaning: 'Most failed requests kept per service for replay (GET /mcp/dead-letters), the oldest dropped first; 0 keeps none',
  },
  {
    name: 'MCP_DEAD_LETTERS_MAX_AGE_HOURS',
    path: ['deadLetters', 'maxAgeHours'],
    kind: 'number',
    default: '168',
    meaning: 'How long a dead letter is kept (hours)',
  },
  {
    name: 'MCP_ADMIN_TOKEN',
    path: ['security', 'adminToken'],
    kind: 'string',
    default: '',
    meaning: 'Token guarding the registration endpoints (16+ characters)',
  },
  {
    name: 'MCP_JWT_SECRET',
    path: ['security', 'jwt', 'secret'],
    kind: 'string',
    default: '',
    meaning: 'Accept agent JWTs signed with this HS256 secret (32+ characters)',
  },
  {
    name: 'MCP_JWT_JWKS_URL',
    path: ['security', 'jwt', 'jwksUrl'],
    kind: 'string',
    default: '',
    meaning: 'Accept agent JWTs signed by a key of this JWKS (RS256/ES256/…)',
  },
  { name: 'MCP_JWT_ISSUER', path: ['security', 'jwt', 'issuer'], kind: 'string', default: '', meaning: 'Required iss of agent JWTs' },
  { name: 'MCP_JWT_AUDIENCE', path: ['security', 'jwt', 'audience'], kind: 'string', default: '', meaning: 'Required aud of agent JWTs' },
  {
    name: 'MCP_ALLOW_ANONYMOUS',
    path: ['security', 'allowAnonymous'],
    kind: 'bool',
    default: 'false',
    meaning: 'Let production serve without inbound keys',
  },
  {
    name: 'WORKER_SERVICES',
    path: ['worker', 'services'],
    kind: 'list',
    default: '',
    meaning: 'Service queues a worker process serves (default: all)',
  },
  {
    name: 'WORKER_CONCURRENCY',
    path: ['worker', 'concurrency'],
    kind: 'int',
    default: '10',
    meaning: 'Jobs one worker runs at once per service (a service CONCURRENCY overrides)',
  },
  {
    name: 'WORKER_LOCK_MS',
    path: ['worker', 'lockMs'],
    kind: 'int',
    default: '10000',
    meaning: 'Job lock: jobs of a worker that died are taken over by others after this long',
  },
  {
    name: 'WORKER_LEASE_MAX_TOKENS',
    path: ['worker', 'leaseMaxTokens'],
    kind: 'int',
    default: '32',
    meaning:
      'Most rate-limit tokens a worker leases per service, to admit calls without a Redis command (0: no leasing; see docs/resilience.md)',
  },
  {
    name: 'WORKER_LEASE_MS',
    path: ['worker', 'leaseMs'],
    kind: 'int',
    default: '500',
    meaning: 'How long a worker may spend a lease (ms, at most 1000)',
  },
  {
    name: 'WORKER_METRICS_PORT',
    path: ['worker', 'metricsPort'],
    kind: 'int',
    default: '',
    meaning: 'Port of a worker process /metrics (Prometheus) and /health endpoint; none when unset',
    example: '9464',
  },
  {
    name: 'SHUTDOWN_GRACE_MS',
    path: ['shutdownGraceMs'],
    kind: 'int',
    default: '10000',
    meaning:
      'How long a stopping process lets in-flight work finish: the API its sync waits (then answers 202 with the poll link), a worker its active jobs',
  },
];

export const SERVICE_ENV: readonly EnvKey[] = [
  {
    name: 'ENDPOINT',
    path: ['endpoint'],
    kind: 'string',
    default: '',
    meaning: 'Base URL of the backend (required)',
    example: 'http://users.internal:3000',
  },
  {
    name: 'DESCRIPTION',
    path: ['description'],
    kind: 'string',
    default: '',
    meaning: 'Shown in /mcp/services and as the MCP tool description prefix',
  },
  {
    name: 'TIMEOUT',
    path: ['timeout'],
    kind: 'int',
    default: '',
    meaning: 'Request deadline for this service in ms (default MCP_DEFAULT_TIMEOUT)',
  },
  {
    name: 'AUTH_TYPE',
    path: ['auth', 'type'],
    kind: 'string',
    default: 'none',
    meaning: 'none | bearer | api-key | basic | oauth2',
    oneOf: ['none', 'bearer', 'api-key', 'basic', 'oauth2'],
  },
  { name: 'TOKEN', path: ['auth', 'credentials', 'token'], kind: 'string', default: '', meaning: 'bearer: the token' },
  { name: 'API_KEY', path: ['auth', 'credentials', 'apiKey'], kind: 'string', default: '', meaning: 'api-key: the key' },
  {
    name: 'API_KEY_HEADER',
    path: ['auth', 'credentials', 'headerName'],
    kind: 'string',
    default: '',
    meaning: "api-key: the header carrying it (default: where the OpenAPI document's apiKey scheme says, else X-API-Key)",
  },
  { name: 'USERNAME', path: ['auth', 'credentials', 'username'], kind: 'string', default: '', meaning: 'basic: the user name' },
  { name: 'PASSWORD', path: ['auth', 'credentials', 'password'], kind: 'string', default: '', meaning: 'basic: the password' },
  {
    name: 'ACCESS_TOKEN',
    path: ['auth', 'credentials', 'accessToken'],
    kind: 'string',
    default: '',
    meaning: 'oauth2: current access token',
  },
  {
    name: 'REFRESH_TOKEN',
    path: ['auth', 'credentials', 'refreshToken'],
    kind: 'string',
    default: '',
    meaning: 'oauth2: refresh token (used on a 401)',
  },
  { name: 'TOKEN_URL', path: ['auth', 'credentials', 'tokenUrl'], kind: 'string', default: '', meaning: 'oauth2: token endpoint' },
  { name: 'CLIENT_ID', path: ['auth', 'credentials', 'clientId'], kind: 'string', default: '', meaning: 'oauth2: client id' },
  { name: 'CLIENT_SECRET', path: ['auth', 'credentials', 'clientSecret'], kind: 'string', default: '', meaning: 'oauth2: client secret' },
  { name: 'SCOPE', path: ['auth', 'credentials', 'scope'], kind: 'string', default: '', meaning: 'oauth2: scope' },
  {
    name: 'RATE_LIMIT_RPM',
    path: ['rateLimit', 'requestsPerMinute'],
    kind: 'number',
    default: '600',
    meaning: 'Token refill: requests per minute, shared by every worker',
  },
  { name: 'BURST_LIMIT', path: ['rateLimit', 'burstLimit'], kind: 'int', default: '50', meaning: 'Token bucket capacity' },
  {
    name: 'CB_FAILURE_THRESHOLD',
    path: ['circuitBreaker', 'failureThreshold'],
    kind: 'int',
    default: '5',
    meaning: 'Consecutive counted failures that open the circuit',
  },
  {
    name: 'CB_RECOVERY_TIMEOUT',
    path: ['circuitBreaker', 'recoveryTimeout'],
    kind: 'int',
    default: '30000',
    meaning: 'Time open before trial calls (ms)',
  },
  {
    name: 'CB_HALF_OPEN_MAX_CALLS',
    path: ['circuitBreaker', 'halfOpenMaxCalls'],
    kind: 'int',
    default: '1',
    meaning: 'Trial calls at once while half-open, across all workers',
  },
  {
    name: 'RETRY_MAX_ATTEMPTS',
    path: ['retryPolicy', 'maxAttempts'],
    kind: 'int',
    default: '',
    meaning: 'Overrides MCP_RETRY_MAX_ATTEMPTS for this service',
  },
  {
    name: 'RETRY_BACKOFF',
    path: ['retryPolicy', 'backoffStrategy'],
    kind: 'string',
    default: '',
    meaning: 'Overrides MCP_RETRY_BACKOFF',
    oneOf: ['linear', 'exponential'],
  },
  {
    name: 'RETRY_INITIAL_DELAY',
    path: ['retryPolicy', 'initialDelay'],
    kind: 'int',
    default: '',
    meaning: 'Overrides MCP_RETRY_INITIAL_DELAY',
  },
  { name: 'RETRY_MAX_DELAY', path: ['retryPolicy', 'maxDelay'], kind: 'int', default: '', meaning: 'Overrides MCP_RETRY_MAX_DELAY' },
  { name: 'RETRY_JITTER', path: ['retryPolicy', 'jitter'], kind: 'bool', default: '', meaning: 'Overrides MCP_RETRY_JITTER' },
  {
    name: 'OPENAPI_URL',
    path: ['openapiUrl'],
    kind: 'string',
    default: '',
    meaning: 'URL of the backend OpenAPI document (3.x or Swagger 2.0)',
  },
  {
    name: 'DEFINITION',
    path: ['definitionFile'],
    kind: 'string',
    default: '',
    meaning: 'Path of a definition file: {operations: [...]} or an OpenAPI document',
  },
  {
    name: 'INCLUDE',
    path: ['include'],
    kind: 'list',
    default: '',
    meaning: 'Operations served (comma list of tag:<glob>, method:<M>, name globs); all when unset',
  },
  { name: 'EXCLUDE', path: ['exclude'], kind: 'list', default: '', meaning: 'Operations left out (same selectors as INCLUDE)' },
  {
    name: 'BASE_PATH',
    path: ['basePath'],
    kind: 'string',
    default: '',
    meaning: "Path between endpoint and operation paths (default: the document's server path)",
  },
  { name: 'HEALTH_PATH', path: ['healthPath'], kind: 'string', default: '', meaning: 'Path probed for health, e.g. /health' },
  { name: 'CONCURRENCY', path: ['concurrency'], kind: 'int', default: '', meaning: 'Jobs one worker runs at once for this service' },
  {
    name: 'MAX_QUEUE_DEPTH',
    path: ['maxQueueDepth'],
    kind: 'int',
    default: '10000',
    meaning: 'Waiting jobs beyond which the API answers OVERLOADED',
  },
];

/** Per agent: `MCP_AGENT_<ID>_<NAME>`, `<ID>` its id upper-cased with - as _ (see agentEnvMatch). */
export const AGENT_ENV: readonly EnvKey[] = [
  { name: 'RATE_LIMIT_RPM', path: ['requestsPerMinute'], kind: 'number', default: '', meaning: 'Requests per minute the agent may send' },
  { name: 'BURST_LIMIT', path: ['burstLimit'], kind: 'int', default: '', meaning: "The agent's token bucket capacity" },
  {
    name: 'MAX_IN_FLIGHT',
    path: ['maxInFlight'],
    kind: 'int',
    default: '',
    meaning: 'Requests the agent may have queued or running at once',
  },
  { name: 'WEIGHT', path: ['weight'], kind: 'number', default: '1', meaning: "The agent's share of a backed-up service's workers" },
];

const AGENT_VARIABLE = new RegExp(`^MCP_AGENT_(.+)_(${AGENT_ENV.map((k) => k.name).join('|')})$`);

/** `user-service` → `USER_SERVICE` (an agent id's part of its variables too). */
export function serviceEnvName(service: string): string {
  return service.toUpperCase().replace(/-/g, '_');
}

export interface EnvLoad {
  /** A partial config input (only what the environment sets). */
  input: Record<string, unknown>;
  /** Config path (dot-joined) → the variable that set it, to name variables in schema errors. */
  origins: Map<string, string>;
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

function convert(key: EnvKey, variable: string, raw: string, issues: ConfigIssue[]): unknown {
  const v = raw.trim();
  const bad = (message: string) => {
    issues.push({ source: variable, message: `${message} (got ${JSON.stringify(raw.length > 40 ? raw.slice(0, 40) + '…' : raw)})` });
    return undefined;
  };
  switch (key.kind) {
    case 'string':
      if (key.oneOf && !key.oneOf.includes(v)) return bad(`must be one of ${key.oneOf.join(', ')}`);
      return v;
    case 'int':
      return /^-?\d+$/.test(v) ? Number(v) : bad('must be a whole number');
    case 'number':
      return /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : bad('must be a number');
    case 'bool':
      if (TRUE.has(v.toLowerCase())) return true;
      if (FALSE.has(v.toLowerCase())) return false;
      return bad('must be true or false');
    case 'list':
      return entriesOf(v, ',');
    case 'apiKeys':
      return parseApiKeys(variable, v, issues);
    case 'toolsets':
      return parseToolsets(variable, v, issues);
  }
}

/** A list's entries, trimmed, the empty ones dropped. */
function entriesOf(raw: string, separator: ',' | '|'): string[] {
  return raw
    .split(separator)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** `name:grant|grant`, comma separated. */
function parseToolsets(variable: string, raw: string, issues: ConfigIssue[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  entriesOf(raw, ',').forEach((entry, i) => {
    const colon = entry.indexOf(':');
    const grants = entriesOf(entry.slice(colon + 1), '|');
    if (colon <= 0 || grants.length === 0) {
      issues.push({ source: variable, message: `entry ${i + 1} must be name:grant|grant (svc, svc.<operation glob>, svc.readOnly)` });
      return;
    }
    out[entry.slice(0, colon).trim()] = grants;
  });
  return out;
}

/**
 * `key:agentId[:grant|grant]` (a grant: `svc`, `svc.<operation glob>`, `svc.readOnly`, `@<toolset>`),
 * comma separated. The key itself never appears in an error.
 */
function parseApiKeys(variable: string, raw: string, issues: ConfigIssue[]): unknown[] {
  const out: unknown[] = [];
  entriesOf(raw, ',').forEach((entry, i) => {
    const parts = entry.split(':');
    if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) {
      issues.push({
        source: variable,
        message: `entry ${i + 1} must be key:agentId or key:agentId:grant|grant (svc, svc.<operation glob>, svc.readOnly)`,
      });
      return;
    }
    const services = parts[2] === undefined ? undefined : entriesOf(parts[2], '|');
    out.push({ key: parts[0], agentId: parts[1], ...(services && services.length > 0 ? { services } : {}) });
  });
  return out;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const p of path.slice(0, -1)) {
    const next = node[p];
    if (typeof next !== 'object' || next === null) node[p] = {};
    node = node[p] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

const present = (env: NodeJS.ProcessEnv, name: string): string | undefined => {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v;
};

/**
 * Reads every variable of the tables. Unset or empty variables leave the file's or the schema's
 * value alone. Throws ConfigError, naming each bad variable, when a value cannot be converted.
 */
export function loadEnvConfig(env: NodeJS.ProcessEnv, fileServices: readonly string[] = [], fileAgents: readonly string[] = []): EnvLoad {
  const input: Record<string, unknown> = {};
  const origins = new Map<string, string>();
  const issues: ConfigIssue[] = [];
  const take = (key: EnvKey, variable: string, base: string[]) => {
    const raw = present(env, variable);
    if (raw === undefined) return;
    const value = convert(key, variable, raw, issues);
    if (value === undefined) return;
    const path = [...base, ...key.path];
    setPath(input, path, value);
    origins.set(path.join('.'), variable);
  };

  for (const key of GATEWAY_ENV) {
    if (key.name === 'NODE_ENV') {
      // MCP_ENVIRONMENT wins; NODE_ENV counts only when it is one of ours (tools set it to other things).
      const explicit = present(env, 'MCP_ENVIRONMENT');
      if (explicit !== undefined) take(key, 'MCP_ENVIRONMENT', []);
      else if (key.oneOf?.includes(present(env, 'NODE_ENV') ?? '')) take(key, 'NODE_ENV', []);
      continue;
    }
    take(key, key.name, []);
  }

  const services = present(env, 'MCP_SERVICES');
  const seen = new Set<string>();
  if (services !== undefined) {
    const names = services
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const name of names) {
      if (seen.has(serviceEnvName(name))) {
        issues.push({
          source: 'MCP_SERVICES',
          message: `${name} maps to the same variables (MCP_SERVICE_${serviceEnvName(name)}_*) as another service`,
        });
        continue;
      }
      seen.add(serviceEnvName(name));
      setPath(input, ['services', name], {});
      origins.set(`services.${name}`, 'MCP_SERVICES');
      for (const key of SERVICE_ENV) take(key, `MCP_SERVICE_${serviceEnvName(name)}_${key.name}`, ['services', name]);
    }
  }
  // A service of the file, not in MCP_SERVICES, takes its MCP_SERVICE_<NAME>_* variables too: the
  // file is overridden by the environment. Two file services with one variable name take neither's.
  const fileByEnvName = new Map<string, string[]>();
  for (const name of fileServices) fileByEnvName.set(serviceEnvName(name), [...(fileByEnvName.get(serviceEnvName(name)) ?? []), name]);
  for (const [envName, names] of fileByEnvName) {
    if (seen.has(envName)) continue;
    const set = SERVICE_ENV.filter((key) => present(env, `MCP_SERVICE_${envName}_${key.name}`) !== undefined);
    if (set.length === 0) continue;
    if (names.length > 1) {
      issues.push({
        source: `MCP_SERVICE_${envName}_${set[0]!.name}`,
        message: `applies to more than one service of the file (${names.join(', ')}); name the one it is for in MCP_SERVICES`,
      });
      continue;
    }
    for (const key of set) take(key, `MCP_SERVICE_${envName}_${key.name}`, ['services', names[0]!]);
  }
  // An agent's variables go to the file's agent of that name, else to an agent named as written
  // (`MCP_AGENT_PLANNER_BOT_*`: PLANNER_BOT); an agent's quota is looked up by that name (agentQuotas).
  const fileAgentByEnvName = new Map(fileAgents.map((id) => [serviceEnvName(id), id]));
  for (const variable of Object.keys(env).sort()) {
    const m = AGENT_VARIABLE.exec(variable);
    if (!m) continue;
    const key = AGENT_ENV.find((k) => k.name === m[2])!;
    take(key, variable, ['agents', fileAgentByEnvName.get(m[1]!) ?? m[1]!]);
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return { input, origins };
}

/** `.env.example`, generated from the tables above (a test keeps the file in step). */
export function renderEnvExample(): string {
  const line = (k: EnvKey, name: string) => {
    const value = k.default || k.example || '';
    return `# ${k.meaning}${k.default ? ` (default: ${k.default})` : ''}\n# ${name}=${value}\n`;
  };
  const out: string[] = [
    '# MCP Gateway configuration. Every variable is optional unless marked required; the value shown\n',
    '# is the default (said so in the line above it), else an example. Generated from\n',
    '# libs/config/src/env.ts: run `npm run env:example` after changing it.\n',
    '# MCP_GATEWAY_CONFIG=path/to/gateway.yaml loads a YAML/JSON file first; these variables override it.\n\n',
    '# The MCP_ENVIRONMENT variable, when set, takes precedence over NODE_ENV.\n',
  ];
  for (const k of GATEWAY_ENV) out.push(line(k, k.name));
  out.push('\n# Services: a comma list; each NAME below is the service name upper-cased with - turned into _.\n');
  out.push('# MCP_SERVICES=users,order-service\n\n');
  out.push('# Per service (MCP_SERVICE_<NAME>_...):\n');
  for (const k of SERVICE_ENV) out.push(line(k, `MCP_SERVICE_<NAME>_${k.name}`));
  out.push('\n# Per agent (MCP_AGENT_<ID>_...; ID is the agent id upper-cased with - turned into _):\n');
  for (const k of AGENT_ENV) out.push(line(k, `MCP_AGENT_<ID>_${k.name}`));
  return out.join('');
}
