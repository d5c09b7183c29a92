import type { z } from 'zod';
import { OperationDefinitionSchema } from '@mcp-gateway/protocol';
import { ConfigError, type ConfigIssue } from './errors';
import { loadEnvConfig, SERVICE_ENV, serviceEnvName } from './env';
import { loadFileConfig } from './file';
import { GatewayConfigSchema, type GatewayConfig, type GatewayConfigInput } from './schema';

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Objects merge key by key; anything else (arrays included) from `over` replaces `base`. */
function deepMerge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isPlain(v) && isPlain(out[k]) ? deepMerge(out[k] as Plain, v) : v;
  return out;
}

function parse(input: unknown, nameOf: (path: string) => string): GatewayConfig {
  const result = GatewayConfigSchema.safeParse(input);
  if (result.success) return result.data;
  throw new ConfigError(toIssues(result.error, nameOf));
}

function toIssues(error: z.ZodError, nameOf: (path: string) => string): ConfigIssue[] {
  return error.issues.map((i) => {
    const path = i.path.map(String).join('.');
    return { source: nameOf(path) || '(config)', message: plainMessage(i) };
  });
}

/** zod's wording where it says less than it could: a missing value, and a key of a map (a service name) that breaks its rule. */
function plainMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && issue.input === undefined) return `is required (${issue.expected})`;
  if (issue.code === 'invalid_key') return `${JSON.stringify(issue.path.at(-1))}: ${issue.issues[0]?.message ?? issue.message}`;
  return issue.message;
}

/** Whether `base` holds the value at `path`, or an object under `within` that the value is missing from. */
function holds(base: Plain, path: string[], within: number): boolean {
  let node: unknown = base;
  for (let depth = 0; depth < path.length; depth++) {
    if (!isPlain(node) && !Array.isArray(node)) return depth > within;
    const next: unknown = (node as Plain)[path[depth]!];
    if (next === undefined) return depth > within;
    node = next;
  }
  return true;
}

/**
 * Names where a bad value at a config path came from: the variable that set it (or the closest
 * enclosing path set by one); else the file, when the file holds the value (or, under a service, the
 * object it is missing from); else, for a value a service declared in MCP_SERVICES is missing, the
 * MCP_SERVICE_<NAME>_* variable that would set it (and the file key, when there is a file).
 */
function sourceNamer(origins: Map<string, string>, file?: { name: string; content: Plain }) {
  return (path: string) => {
    const exact = origins.get(path);
    if (exact) return exact;
    for (let p = path; p.includes('.');) {
      p = p.slice(0, p.lastIndexOf('.'));
      const v = origins.get(p);
      if (v && v !== 'MCP_SERVICES') return v;
    }
    const inFile = file ? `${file.name}: ${path}` : path;
    const svc = /^services\.([^.]+)\.(.+)$/.exec(path);
    if (!svc || origins.get(`services.${svc[1]}`) !== 'MCP_SERVICES') return inFile;
    // services.<name>.…: what the file holds under the service is the file's.
    if (file && holds(file.content, path.split('.'), 2)) return inFile;
    const key = SERVICE_ENV.find((k) => k.path.join('.') === svc[2]);
    const variable = key ? `MCP_SERVICE_${serviceEnvName(svc[1]!)}_${key.name}` : `MCP_SERVICE_${serviceEnvName(svc[1]!)}_* (${svc[2]})`;
    return file ? `${variable} (or ${inFile})` : variable;
  };
}

/** `base` with the variables of `env` over it, key by key; errors name the variable or the file key. */
function withEnvOver(base: Plain, env: NodeJS.ProcessEnv, file?: string): GatewayConfig {
  const fileServices = isPlain(base.services) ? Object.keys(base.services) : [];
  const fileAgents = isPlain(base.agents) ? Object.keys(base.agents) : [];
  const { input, origins } = loadEnvConfig(env, fileServices, fileAgents);
  return parse(deepMerge(base, input), sourceNamer(origins, file === undefined ? undefined : { name: file, content: base }));
}

/**
 * Builds the one validated GatewayConfig from any source:
 *   GatewayConfigManager.createDevelopmentConfig()   the demo set-up of `npm run gateway:dev`
 *   GatewayConfigManager.fromObject({...})            the original README's object shape
 *   GatewayConfigManager.fromEnv(process.env)         environment variables only
 *   GatewayConfigManager.fromFile('gateway.yaml')     a YAML/JSON file only
 *   GatewayConfigManager.load(process.env)            MCP_GATEWAY_CONFIG file, then the environment over it
 */
export class GatewayConfigManager {
  private constructor(private readonly config: GatewayConfig) {}

  get(): GatewayConfig {
    return this.config;
  }

  static fromObject(input: GatewayConfig | GatewayConfigInput): GatewayConfig {
    return parse(input, (p) => p);
  }

  static fromFile(file: string): GatewayConfig {
    return parse(loadFileConfig(file), (p) => `${file}: ${p}`);
  }

  static fromEnv(env: NodeJS.ProcessEnv): GatewayConfig {
    return withEnvOver({}, env);
  }

  /**
   * `base` (a config object) with the variables of `env` over it, as `load` puts them over a file:
   * `npm run gateway:dev` passes its PORT this way, so a bad one is reported as `PORT`.
   */
  static withEnv(base: GatewayConfig | GatewayConfigInput, env: NodeJS.ProcessEnv): GatewayConfig {
    return withEnvOver(base as Plain, env);
  }

  /**
   * `defaultEnvironment` applies when neither MCP_ENVIRONMENT nor a NODE_ENV of ours says which:
   * the process entry points (`npm run gateway`, `start:api`, `start:worker`) pass 'production'.
   */
  static load(env: NodeJS.ProcessEnv, options: { defaultEnvironment?: GatewayConfig['environment'] } = {}): GatewayConfig {
    const file = env.MCP_GATEWAY_CONFIG?.trim();
    const base: Record<string, unknown> = file ? loadFileConfig(file) : {};
    if (options.defaultEnvironment && base.environment === undefined) base.environment = options.defaultEnvironment;
    return withEnvOver(base, env, file || undefined);
  }

  /** A holder for code that prefers an instance: `GatewayConfigManager.of(config).get()`. */
  static of(config: GatewayConfig): GatewayConfigManager {
    return new GatewayConfigManager(config);
  }

  /**
   * Development: one `demo` service (the built-in demo backend on 127.0.0.1:8090) with three
   * operations, generous limits, pretty defaults. `npm run gateway:dev` points it at its own demo backend.
   */
  static createDevelopmentConfig(overrides: GatewayConfigInput = {}): GatewayConfig {
    const operations = [
      {
        name: 'echo',
        description: 'Returns the parameters it was sent',
        method: 'POST',
        path: '/echo',
        parameters: { type: 'object', additionalProperties: true },
        idempotent: true,
      },
      {
        name: 'getItem',
        description: 'One item by id',
        method: 'GET',
        path: '/items/{id}',
        parameters: {
          type: 'object',
          properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
          required: ['id'],
          additionalProperties: false,
        },
      },
      {
        name: 'slow',
        description: 'Answers after ms milliseconds',
        method: 'GET',
        path: '/slow',
        parameters: { type: 'object', properties: { ms: { type: 'integer', minimum: 0, maximum: 60000 } }, additionalProperties: false },
      },
    ].map((o) => OperationDefinitionSchema.parse(o));
    return GatewayConfigManager.fromObject(
      deepMerge(
        {
          environment: 'development',
          gatewayUrl: 'http://localhost:8080',
          port: 8080,
          defaultTimeout: 30000,
          retryPolicy: { maxAttempts: 3, backoffStrategy: 'exponential', initialDelay: 200, maxDelay: 5000, jitter: true },
          services: {
            demo: {
              endpoint: 'http://127.0.0.1:8090',
              description: 'The built-in demo backend',
              rateLimit: { requestsPerMinute: 6000, burstLimit: 100 },
              circuitBreaker: { failureThreshold: 5, recoveryTimeout: 10000, halfOpenMaxCalls: 1 },
              operations,
              healthPath: '/health',
            },
          },
        },
        overrides as Plain,
      ),
    );
  }
}

/**
 * An API that serves in production must not be open: inbound keys (or at least an admin token for
 * the registration endpoints) are required unless MCP_ALLOW_ANONYMOUS=true says so on purpose.
 */
export function assertSafeToServe(config: GatewayConfig): void {
  const s = config.security;
  const agentAuth = s.apiKeys.length > 0 || Boolean(s.jwt?.secret || s.jwt?.jwksUrl);
  if (config.environment === 'production' && !agentAuth && !s.adminToken && !s.allowAnonymous) {
    throw new ConfigError([
      {
        source: 'MCP_GATEWAY_API_KEYS',
        message:
          'production refuses to serve without inbound keys: set MCP_GATEWAY_API_KEYS or MCP_JWT_SECRET / MCP_JWT_JWKS_URL (and MCP_ADMIN_TOKEN), or MCP_ALLOW_ANONYMOUS=true to run open on purpose',
      },
    ]);
  }
}
