import { z } from 'zod';
import { serviceEnvName } from './env';
import { AGENT_ID_MAX_LENGTH, OperationDefinitionSchema, SERVICE_NAME_PATTERN } from '@mcp-gateway/protocol';

/**
 * The one GatewayConfig schema. Every source (environment, file, programmatic object) ends here.
 * Field descriptions and defaults live beside the fields; `.env.example` is generated from them.
 */

const ms = (description: string) => z.number().int().nonnegative().describe(description);

/** An RFC 9110 token: what an HTTP header name may be (`api_key` is one). */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/;

const selectors = (what: string) =>
  z
    .array(z.string().min(1).max(512))
    .max(1000)
    .optional()
    .describe(`${what}: tag:<glob>, method:<METHOD> or a glob on the operation name (repos/*)`);

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//i.test(u), { message: 'must be an http:// or https:// URL' });

const retryFields = {
  maxAttempts: z.number().int().min(1).max(20).describe('Attempts in all, the first included'),
  backoffStrategy: z.enum(['linear', 'exponential']).describe('linear: d·n; exponential: d·2^(n-1)'),
  initialDelay: ms('Delay before the first retry (ms)'),
  maxDelay: ms('Cap on any retry delay (ms)'),
  jitter: z.boolean().describe('Full jitter: a random delay between 0 and the computed one'),
};

export const RetryPolicySchema = z
  .object({
    maxAttempts: retryFields.maxAttempts.default(3),
    backoffStrategy: retryFields.backoffStrategy.default('exponential'),
    initialDelay: retryFields.initialDelay.default(1000),
    maxDelay: retryFields.maxDelay.default(10000),
    jitter: retryFields.jitter.default(true),
  })
  .strict();

/** A service's override: only the keys it sets (no defaults, so the gateway's fill the rest). */
export const ServiceRetryPolicySchema = z
  .object({
    maxAttempts: retryFields.maxAttempts.optional(),
    backoffStrategy: retryFields.backoffStrategy.optional(),
    initialDelay: retryFields.initialDelay.optional(),
    maxDelay: retryFields.maxDelay.optional(),
    jitter: retryFields.jitter.optional(),
  })
  .strict();
export type RetryPolicy = z.output<typeof RetryPolicySchema>;

export const AUTH_TYPES = ['none', 'bearer', 'api-key', 'basic', 'oauth2'] as const;
export type AuthType = (typeof AUTH_TYPES)[number];

export const AuthCredentialsSchema = z
  .object({
    token: z.string().min(1).optional().describe('bearer: the token'),
    apiKey: z.string().min(1).optional().describe('api-key: the key'),
    headerName: z
      .string()
      .regex(HEADER_NAME, "must be an HTTP header name (an RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~)")
      .optional()
      .describe("api-key: header carrying the key (default: where the OpenAPI document's apiKey scheme says, else X-API-Key)"),
    username: z
      .string()
      .min(1)
      .max(256)
      .refine((u) => !u.includes(':'), { message: 'must not contain :' })
      .optional()
      .describe('basic: the user name'),
    password: z.string().min(1).optional().describe('basic: the password'),
    accessToken: z.string().min(1).optional().describe('oauth2: current access token'),
    refreshToken: z.string().min(1).optional().describe('oauth2: refresh token'),
    tokenUrl: httpUrl.optional().describe('oauth2: token endpoint'),
    clientId: z.string().min(1).optional().describe('oauth2: client id'),
    clientSecret: z.string().min(1).optional().describe('oauth2: client secret'),
    scope: z.string().min(1).optional().describe('oauth2: scope'),
  })
  .strict();
export type AuthCredentials = z.output<typeof AuthCredentialsSchema>;

export const AuthConfigSchema = z
  .object({
    type: z.enum(AUTH_TYPES).default('none'),
    credentials: AuthCredentialsSchema.default({}),
  })
  .strict()
  .superRefine((auth, ctx) => {
    const c = auth.credentials;
    const need = (field: keyof AuthCredentials) => {
      if (!c[field]) ctx.addIssue({ code: 'custom', path: ['credentials', field], message: `is required for auth type ${auth.type}` });
    };
    if (auth.type === 'bearer') need('token');
    if (auth.type === 'api-key') need('apiKey');
    if (auth.type === 'basic') {
      need('username');
      need('password');
    }
    if (auth.type === 'oauth2') {
      if (!c.accessToken && !(c.tokenUrl && c.clientId)) {
        ctx.addIssue({
          code: 'custom',
          path: ['credentials'],
          message: 'oauth2 needs accessToken, or tokenUrl with clientId (client credentials)',
        });
      }
      if (c.refreshToken && !c.tokenUrl) need('tokenUrl');
    }
  });
export type AuthConfig = z.output<typeof AuthConfigSchema>;

export const RateLimitSchema = z
  .object({
    requestsPerMinute: z.number().positive().max(6_000_000).default(600).describe('Token refill: requestsPerMinute/60 per second'),
    burstLimit: z.number().int().positive().max(1_000_000).default(50).describe('Token bucket capacity'),
  })
  .strict();

export const CircuitBreakerSchema = z
  .object({
    failureThreshold: z.number().int().positive().max(10_000).default(5).describe('Consecutive counted failures that open the circuit'),
    // Not 0: while a trial is out, the jobs waiting on it look again every recoveryTimeout at most.
    recoveryTimeout: ms('Time open before half-opening (ms)').min(100).default(30000),
    halfOpenMaxCalls: z.number().int().positive().max(1000).default(1).describe('Trial calls allowed while half-open, across all workers'),
  })
  .strict();

export const ServiceConfigSchema = z
  .object({
    endpoint: httpUrl.describe('Base URL of the backend'),
    description: z.string().max(4096).optional(),
    timeout: z.number().int().positive().max(3_600_000).optional().describe('Default request deadline for this service (ms)'),
    auth: AuthConfigSchema.default({ type: 'none', credentials: {} }),
    rateLimit: RateLimitSchema.default({ requestsPerMinute: 600, burstLimit: 50 }),
    circuitBreaker: CircuitBreakerSchema.default({ failureThreshold: 5, recoveryTimeout: 30000, halfOpenMaxCalls: 1 }),
    retryPolicy: ServiceRetryPolicySchema.optional().describe('Overrides the gateway retry policy for this service, key by key'),
    operations: z.array(OperationDefinitionSchema).optional().describe('Inline operation definitions'),
    definitionFile: z
      .string()
      .min(1)
      .optional()
      .describe('Path of a definition file: YAML/JSON {operations: [...]} or an OpenAPI document'),
    openapiUrl: httpUrl.optional().describe('URL of the backend OpenAPI document (3.x or Swagger 2.0, JSON or YAML)'),
    include: selectors('Operations served, when set (others are left out)'),
    exclude: selectors('Operations left out'),
    basePath: z
      .string()
      .regex(/^(\/[^?#\s]*)?$/, 'must be empty or a path starting with /')
      .refine((p) => !/(^|\/)\.\.?(\/|$)/.test(p), { message: 'must not have . or .. segments' })
      .optional()
      .describe(
        "Path between the endpoint and each operation's path; default: the OpenAPI document's server path, unless the endpoint already ends with it",
      ),
    healthPath: z.string().startsWith('/').optional().describe('Path probed for health'),
    concurrency: z.number().int().positive().max(1000).optional().describe('Jobs one worker runs at once for this service'),
    maxQueueDepth: z
      .number()
      .int()
      .positive()
      .max(10_000_000)
      .default(10000)
      .describe('Waiting jobs beyond which the API answers OVERLOADED'),
  })
  .strict();
export type ServiceConfigInput = z.input<typeof ServiceConfigSchema>;
export type ServiceConfig = z.output<typeof ServiceConfigSchema>;

/** A toolset's name: the last segment of its MCP endpoint, `/mcp/<name>`. */
export const TOOLSET_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Paths under /mcp that are the gateway's own, not toolsets. */
export const RESERVED_MCP_PATHS = ['request', 'requests', 'services', 'health', 'agents', 'dead-letters'];

/** An agent id as inbound auth gives it (an API key's agentId, a JWT's sub). */
const agentId = z.string().min(1).max(AGENT_ID_MAX_LENGTH);

export const ApiKeySchema = z
  .object({
    key: z.string().min(8, 'must be at least 8 characters'),
    agentId,
    services: z
      .array(z.string().min(1))
      .optional()
      .describe('What this key may use: `svc` (a service), `svc.<operation glob>`, `svc.readOnly`, `@<toolset>`; all when absent'),
  })
  .strict();
export type ApiKeyConfig = z.output<typeof ApiKeySchema>;

/** An agent's quota, shared by every replica; a limit left unset is no limit. */
export const AgentQuotaSchema = z
  .object({
    requestsPerMinute: z
      .number()
      .min(0)
      .max(6_000_000)
      .optional()
      .describe("Requests the agent may send per minute (token refill); 0: no limit, over a default's"),
    burstLimit: z
      .number()
      .int()
      .positive()
      .max(1_000_000)
      .optional()
      .describe("Token bucket capacity; default: 5 s of the agent's own requestsPerMinute (at least 1), else the defaults'"),
    maxInFlight: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .optional()
      .describe("Requests the agent may have queued or running at once; 0: no limit, over a default's"),
  })
  .strict();
export type AgentQuota = z.output<typeof AgentQuotaSchema>;

export const AgentConfigSchema = AgentQuotaSchema.extend({
  weight: z
    .number()
    .min(0.01)
    .max(1000)
    .optional()
    .describe("The agent's share of a backed-up service's workers against other agents' (default 1)"),
  services: z
    .record(z.string().regex(SERVICE_NAME_PATTERN, 'service names are letters, digits, _ and -'), AgentQuotaSchema)
    .optional()
    .describe("Quotas of the agent's use of one service, besides its own"),
}).strict();
export type AgentConfig = z.output<typeof AgentConfigSchema>;

export const GatewayConfigSchema = z
  .object({
    environment: z.enum(['development', 'production', 'test']).default('development'),
    gatewayUrl: httpUrl.default('http://localhost:8080').describe('Public base URL of the gateway'),
    port: z.number().int().min(0).max(65535).default(8080),
    host: z.string().default('0.0.0.0'),
    defaultTimeout: z.number().int().positive().max(3_600_000).default(30000).describe('Default request deadline (ms)'),
    retryPolicy: RetryPolicySchema.default({
      maxAttempts: 3,
      backoffStrategy: 'exponential',
      initialDelay: 1000,
      maxDelay: 10000,
      jitter: true,
    }),
    services: z
      .record(z.string().regex(SERVICE_NAME_PATTERN, 'service names are letters, digits, _ and -'), ServiceConfigSchema)
      .default({}),
    redis: z
      .object({
        url: z
          .string()
          .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
          .default('redis://127.0.0.1:6379'),
        keyPrefix: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ and - only')
          .default('mcp'),
        clusterNodes: z
          .array(z.string().regex(/^rediss?:\/\/[^/]+\/?$/, 'must be a redis:// or rediss:// URL of one node (no database)'))
          .default([])
          .describe('Seed nodes of a Redis Cluster; when given, every connection is a cluster client and `url` is not used'),
        sentinel: z
          .object({
            sentinels: z
              .array(z.string().regex(/^[^\s:/]+:\d{1,5}$/, 'must be host:port'))
              .min(1)
              .describe('Sentinels to ask for the current primary'),
            name: z.string().min(1).default('mymaster').describe('The monitored primary group'),
            password: z.string().optional().describe("The sentinels' own password (the primary's is in `url`)"),
          })
          .strict()
          .optional(),
        waitReplicas: z
          .number()
          .int()
          .min(0)
          .max(16)
          .default(0)
          .describe('Replicas that must acknowledge each write a promise rests on before the gateway acts on it (WAIT)'),
      })
      .strict()
      .refine((r) => !(r.clusterNodes.length > 0 && r.sentinel), {
        message: 'give either cluster nodes or sentinels, not both',
        path: ['clusterNodes'],
      })
      .default({ url: 'redis://127.0.0.1:6379', keyPrefix: 'mcp', clusterNodes: [], waitReplicas: 0 }),
    results: z
      .object({
        ttlSeconds: z.number().int().positive().default(3600).describe('How long results (and idempotency keys) are kept'),
      })
      .strict()
      .default({ ttlSeconds: 3600 }),
    deadLetters: z
      .object({
        maxPerService: z
          .number()
          .int()
          .min(0)
          .max(1_000_000)
          .default(1000)
          .describe('Most dead letters kept per service, the oldest dropped first (0: none are kept)'),
        maxAgeHours: z
          .number()
          .positive()
          .max(24 * 365)
          .default(168)
          .describe('How long a dead letter is kept (hours)'),
      })
      .strict()
      .default({ maxPerService: 1000, maxAgeHours: 168 }),
    limits: z
      .object({
        maxBodyBytes: z.number().int().positive().default(1_048_576).describe('Largest accepted request body'),
      })
      .strict()
      .default({ maxBodyBytes: 1_048_576 }),
    cors: z
      .object({ origins: z.array(z.string()).default([]) })
      .strict()
      .default({ origins: [] }),
    toolsets: z
      .record(
        z
          .string()
          .regex(TOOLSET_NAME_PATTERN, 'toolset names are letters, digits, _ and -')
          .refine((name) => !RESERVED_MCP_PATHS.includes(name.toLowerCase()), {
            message: `is a path of the gateway's own (${RESERVED_MCP_PATHS.join(', ')})`,
          }),
        z.array(z.string().min(1)).min(1),
      )
      .default({})
      .describe('Named sets of operations (grants as in API keys), each served at /mcp/<name> and bindable to a key as @<name>'),
    agentDefaults: AgentQuotaSchema.default({}).describe("Every agent's quota, limit by limit, where the agent sets none of its own"),
    agents: z.record(agentId, AgentConfigSchema).default({}).describe('Quotas and fair-queue weights per agent id'),
    fairQueues: z
      .boolean()
      .default(true)
      .describe("Share a backed-up service's workers among the agents that have work queued (round-robin, by weight)"),
    security: z
      .object({
        apiKeys: z.array(ApiKeySchema).default([]),
        adminToken: z.string().min(16, 'must be at least 16 characters').optional(),
        allowAnonymous: z.boolean().default(false),
        jwt: z
          .object({
            secret: z.string().min(32, 'must be at least 32 characters (HS256)').optional(),
            jwksUrl: httpUrl.optional(),
            issuer: z.string().min(1).optional(),
            audience: z.string().min(1).optional(),
          })
          .strict()
          .refine((j) => !(j.secret && j.jwksUrl), { message: 'set either secret or jwksUrl, not both' })
          .optional()
          .describe('Agent JWTs: sub is the agent, scopes service:<name> (or service:*) the services it may use'),
      })
      .strict()
      .default({ apiKeys: [], allowAnonymous: false }),
    worker: z
      .object({
        services: z.array(z.string()).optional().describe('Service queues this worker serves; all when absent'),
        concurrency: z.number().int().positive().max(1000).default(10).describe('Default jobs per service per worker'),
        lockMs: z
          .number()
          .int()
          .min(1000)
          .max(600_000)
          .default(10000)
          .describe("Job lock: a dead worker's jobs are taken over after this long"),
        metricsPort: z.number().int().min(0).max(65535).optional().describe('Port of the worker /metrics endpoint (none when unset)'),
        leaseMaxTokens: z
          .number()
          .int()
          .min(0)
          .max(10_000)
          .default(32)
          .describe('Most rate-limit tokens a worker leases per service to admit calls without Redis (0: no leasing)'),
        leaseMs: z.number().int().min(1).max(1000).default(500).describe('How long a worker may spend a lease (ms, at most 1000)'),
      })
      .strict()
      .default({ concurrency: 10, lockMs: 10000, leaseMaxTokens: 32, leaseMs: 500 }),
    shutdownGraceMs: ms('How long a stopping process lets in-flight work finish (API: sync waits; worker: active jobs)').default(10000),
    mcp: z
      .object({
        taskAfterMs: z
          .number()
          .int()
          .min(0)
          .max(3_600_000)
          .default(1000)
          .describe('A 2026-07-28 tools/call from a client that takes tasks becomes a task when it has not ended after this long (ms)'),
        streamAfterMs: z
          .number()
          .int()
          .min(100)
          .max(3_600_000)
          .default(10_000)
          .describe(
            'A 2025-era MCP answer still pending after this long becomes an SSE stream kept alive by comments, so idle proxies do not cut it (ms)',
          ),
        allowedHosts: z
          .array(z.string().min(1))
          .default([])
          // As the SDK's check reads a Host header: lower case, an IPv6 address in brackets.
          .transform((hosts) => hosts.map((h) => (h.includes(':') && !h.startsWith('[') ? `[${h}]` : h).toLowerCase()))
          .describe('Host names (no port) the MCP endpoint answers to; any when empty, except on a loopback listener without auth'),
      })
      .strict()
      .default({ taskAfterMs: 1000, streamAfterMs: 10_000, allowedHosts: [] }),
    health: z
      .object({
        intervalMs: z
          .number()
          .int()
          .min(100)
          .max(3_600_000)
          .default(10000)
          .describe('How often each service healthPath is probed (by one process at a time)'),
      })
      .strict()
      .default({ intervalMs: 10000 }),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    if (cfg.environment === 'production' && cfg.cors.origins.includes('*')) {
      ctx.addIssue({ code: 'custom', path: ['cors', 'origins'], message: '* is not allowed in production' });
    }
    for (const [i, key] of cfg.security.apiKeys.entries()) {
      for (const grant of key.services ?? []) {
        if (grant.startsWith('@') && !Object.hasOwn(cfg.toolsets, grant.slice(1)))
          ctx.addIssue({
            code: 'custom',
            path: ['security', 'apiKeys', i, 'services'],
            message: `names unknown toolset ${grant.slice(1)}`,
          });
      }
    }
    const byEnvName = new Map<string, string>();
    for (const id of Object.keys(cfg.agents)) {
      const other = byEnvName.get(serviceEnvName(id));
      if (other !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['agents', id],
          message: `maps to the same MCP_AGENT_${serviceEnvName(id)}_* variables as ${other}`,
        });
      byEnvName.set(serviceEnvName(id), id);
    }
    for (const name of cfg.worker.services ?? []) {
      if (!cfg.services[name]) ctx.addIssue({ code: 'custom', path: ['worker', 'services'], message: `names unknown service ${name}` });
    }
    const latest = overdueGraceMs(cfg.worker.lockMs) + OVERDUE_SWEEP_EVERY_MS;
    if (cfg.results.ttlSeconds * 1000 < latest) {
      ctx.addIssue({
        code: 'custom',
        path: ['results', 'ttlSeconds'],
        message: `must be at least ${Math.ceil(latest / 1000)} s: a request still open at its deadline is ended up to ${latest} ms after it (2 x the worker lock + 5 s, then the next sweep), and its record must outlive that`,
      });
    }
  });

/**
 * How long after its deadline the API's sweep ends a request that is still open: long enough for a
 * dead worker's job to be taken over (its lock, twice) and finish.
 */
export function overdueGraceMs(lockMs: number): number {
  return 2 * lockMs + 5000;
}

/** How often the API sweeps for requests past their deadline and grace. */
export const OVERDUE_SWEEP_EVERY_MS = 5000;

export type GatewayConfigInput = z.input<typeof GatewayConfigSchema>;
export type GatewayConfig = z.output<typeof GatewayConfigSchema>;

/** The retry policy in force for a service: its own keys over the gateway's. */
export function effectiveRetryPolicy(config: GatewayConfig, service: string): RetryPolicy {
  return effectiveServiceRetryPolicy(config.retryPolicy, config.services[service]);
}

/** The same for a service config that may not be in the static config (a run-time registration). */
export function effectiveServiceRetryPolicy(gateway: RetryPolicy, service: ServiceConfig | undefined): RetryPolicy {
  const own = Object.fromEntries(Object.entries(service?.retryPolicy ?? {}).filter(([, v]) => v !== undefined));
  return { ...gateway, ...own };
}
