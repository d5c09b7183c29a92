import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  agentPolicies,
  severalAgents,
  assertSafeToServe,
  ConfigError,
  effectiveRetryPolicy,
  GatewayConfigManager,
  GATEWAY_ENV,
  redactConfig,
  redactUrl,
  renderEnvExample,
  SERVICE_ENV,
  type GatewayConfig,
} from '@mcp-gateway/config';

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const get = (obj: unknown, p: string[]): unknown => p.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);

/** A valid value per variable, and what it becomes in the config. */
const SAMPLES: Record<string, [string, unknown]> = {
  ENDPOINT: ['http://users.internal:3000/v1', 'http://users.internal:3000/v1'],
  DESCRIPTION: ['User records', 'User records'],
  TIMEOUT: ['4500', 4500],
  AUTH_TYPE: ['oauth2', 'oauth2'],
  TOKEN: ['tok-123', 'tok-123'],
  API_KEY: ['key-123', 'key-123'],
  API_KEY_HEADER: ['api_key', 'api_key'],
  USERNAME: ['svc-user', 'svc-user'],
  PASSWORD: ['svc-pass', 'svc-pass'],
  ACCESS_TOKEN: ['at-1', 'at-1'],
  REFRESH_TOKEN: ['rt-1', 'rt-1'],
  TOKEN_URL: ['http://auth.internal/token', 'http://auth.internal/token'],
  CLIENT_ID: ['client-1', 'client-1'],
  CLIENT_SECRET: ['secret-1', 'secret-1'],
  SCOPE: ['users:read', 'users:read'],
  RATE_LIMIT_RPM: ['90.5', 90.5],
  BURST_LIMIT: ['7', 7],
  CB_FAILURE_THRESHOLD: ['3', 3],
  CB_RECOVERY_TIMEOUT: ['1500', 1500],
  CB_HALF_OPEN_MAX_CALLS: ['2', 2],
  RETRY_MAX_ATTEMPTS: ['4', 4],
  RETRY_BACKOFF: ['linear', 'linear'],
  RETRY_INITIAL_DELAY: ['25', 25],
  RETRY_MAX_DELAY: ['900', 900],
  RETRY_JITTER: ['false', false],
  OPENAPI_URL: ['http://users.internal:3000/openapi.json', 'http://users.internal:3000/openapi.json'],
  DEFINITION: ['/etc/mcp/users.yaml', '/etc/mcp/users.yaml'],
  INCLUDE: ['tag:users, method:GET', ['tag:users', 'method:GET']],
  EXCLUDE: ['users/delete*', ['users/delete*']],
  BASE_PATH: ['/api/v3', '/api/v3'],
  HEALTH_PATH: ['/healthz', '/healthz'],
  CONCURRENCY: ['12', 12],
  MAX_QUEUE_DEPTH: ['250', 250],
};

describe('configuration from the environment', () => {
  it('maps every MCP_SERVICE_<NAME>_* key of the table to its place in the config', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(SERVICE_ENV.map((k) => k.name).sort());
    const env: NodeJS.ProcessEnv = { MCP_SERVICES: 'user-service' };
    for (const [suffix, [raw]] of Object.entries(SAMPLES)) env[`MCP_SERVICE_USER_SERVICE_${suffix}`] = raw;
    const cfg = GatewayConfigManager.fromEnv(env);
    const svc = cfg.services['user-service'];
    for (const key of SERVICE_ENV) expect([key.name, get(svc, key.path)]).toEqual([key.name, SAMPLES[key.name]![1]]);
  });

  it('takes any RFC 9110 token as an API key header (api_key), and refuses what is not one, naming the variable', () => {
    const env = (header: string) => ({
      MCP_SERVICES: 'petstore',
      MCP_SERVICE_PETSTORE_ENDPOINT: 'http://p',
      MCP_SERVICE_PETSTORE_AUTH_TYPE: 'api-key',
      MCP_SERVICE_PETSTORE_API_KEY: 'k',
      MCP_SERVICE_PETSTORE_API_KEY_HEADER: header,
    });
    expect(GatewayConfigManager.fromEnv(env('api_key')).services.petstore!.auth.credentials.headerName).toBe('api_key');
    expect(() => GatewayConfigManager.fromEnv(env('X Key'))).toThrow(/MCP_SERVICE_PETSTORE_API_KEY_HEADER.*RFC 9110 token/);
    expect(() => GatewayConfigManager.fromEnv(env('a:b'))).toThrow(/MCP_SERVICE_PETSTORE_API_KEY_HEADER/);
  });

  it('reads the gateway-wide keys and leaves unset ones at their defaults', () => {
    const cfg = GatewayConfigManager.fromEnv({
      REDIS_URL: 'redis://cache:6380',
      PORT: '9000',
      MCP_GATEWAY_URL: 'https://gw.example.com',
      MCP_DEFAULT_TIMEOUT: '12000',
      MCP_RETRY_MAX_ATTEMPTS: '5',
      MCP_RETRY_BACKOFF: 'linear',
      MCP_RETRY_JITTER: 'no',
      MCP_CORS_ORIGINS: 'https://a.example, https://b.example',
      WORKER_CONCURRENCY: '3',
      MCP_SERVICES: 'users',
      MCP_SERVICE_USERS_ENDPOINT: 'http://u',
      WORKER_SERVICES: 'users',
      MCP_GATEWAY_API_KEYS: 'long-key-aaaa:planner,long-key-bbbb:billing:users|orders',
      NODE_ENV: 'production',
    });
    expect(cfg).toMatchObject({
      environment: 'production',
      port: 9000,
      gatewayUrl: 'https://gw.example.com',
      defaultTimeout: 12000,
      redis: { url: 'redis://cache:6380', keyPrefix: 'mcp' },
      retryPolicy: { maxAttempts: 5, backoffStrategy: 'linear', jitter: false, initialDelay: 1000, maxDelay: 10000 },
      cors: { origins: ['https://a.example', 'https://b.example'] },
      worker: { concurrency: 3, services: ['users'], lockMs: 10000 },
      shutdownGraceMs: 10000,
      security: {
        apiKeys: [
          { key: 'long-key-aaaa', agentId: 'planner' },
          { key: 'long-key-bbbb', agentId: 'billing', services: ['users', 'orders'] },
        ],
      },
    });
    expect(cfg.services.users).toMatchObject({
      rateLimit: { requestsPerMinute: 600, burstLimit: 50 },
      maxQueueDepth: 10000,
      auth: { type: 'none' },
    });
    // NODE_ENV values that are not ours are ignored; MCP_ENVIRONMENT wins over NODE_ENV.
    expect(GatewayConfigManager.fromEnv({ NODE_ENV: 'staging' }).environment).toBe('development');
    expect(GatewayConfigManager.fromEnv({ NODE_ENV: 'production', MCP_ENVIRONMENT: 'test' }).environment).toBe('test');
  });

  it.each([
    [
      { MCP_SERVICES: 'users', MCP_SERVICE_USERS_ENDPOINT: 'http://u', MCP_SERVICE_USERS_TIMEOUT: 'soon' },
      'MCP_SERVICE_USERS_TIMEOUT',
      'whole number',
    ],
    [{ MCP_SERVICES: 'users', MCP_SERVICE_USERS_ENDPOINT: 'ftp://u' }, 'MCP_SERVICE_USERS_ENDPOINT', 'http'],
    [{ MCP_SERVICES: 'users' }, 'MCP_SERVICE_USERS_ENDPOINT', ''],
    [
      { MCP_SERVICES: 'users', MCP_SERVICE_USERS_ENDPOINT: 'http://u', MCP_SERVICE_USERS_BURST_LIMIT: '0' },
      'MCP_SERVICE_USERS_BURST_LIMIT',
      '',
    ],
    [
      { MCP_SERVICES: 'users', MCP_SERVICE_USERS_ENDPOINT: 'http://u', MCP_SERVICE_USERS_AUTH_TYPE: 'digest' },
      'MCP_SERVICE_USERS_AUTH_TYPE',
      'one of',
    ],
    [
      {
        MCP_SERVICES: 'users',
        MCP_SERVICE_USERS_ENDPOINT: 'http://u',
        MCP_SERVICE_USERS_AUTH_TYPE: 'basic',
        MCP_SERVICE_USERS_PASSWORD: 'p',
      },
      'MCP_SERVICE_USERS_USERNAME',
      'required',
    ],
    [
      { MCP_SERVICES: 'users', MCP_SERVICE_USERS_ENDPOINT: 'http://u', MCP_SERVICE_USERS_AUTH_TYPE: 'bearer' },
      'MCP_SERVICE_USERS_TOKEN',
      'required',
    ],
    [
      { MCP_SERVICES: 'users', MCP_SERVICE_USERS_ENDPOINT: 'http://u', MCP_SERVICE_USERS_RETRY_JITTER: 'maybe' },
      'MCP_SERVICE_USERS_RETRY_JITTER',
      'true or false',
    ],
    [{ PORT: '70000' }, 'PORT', ''],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL', 'redis://'],
    [{ REDIS_CLUSTER_NODES: 'redis://a:7000,10.0.0.2:7000' }, 'REDIS_CLUSTER_NODES', 'redis://'],
    [{ REDIS_CLUSTER_NODES: 'redis://a:7000/2' }, 'REDIS_CLUSTER_NODES', 'no database'],
    [{ REDIS_SENTINELS: 'sentinel-1' }, 'REDIS_SENTINELS', 'host:port'],
    [{ REDIS_CLUSTER_NODES: 'redis://a:7000', REDIS_SENTINELS: 's:26379' }, 'REDIS_CLUSTER_NODES', 'not both'],
    [{ REDIS_WAIT_REPLICAS: '-1' }, 'REDIS_WAIT_REPLICAS', ''],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', 'one of'],
    [{ MCP_GATEWAY_API_KEYS: 'only-a-key' }, 'MCP_GATEWAY_API_KEYS', 'key:agentId'],
    [{ MCP_CORS_ORIGINS: '*', NODE_ENV: 'production' }, 'MCP_CORS_ORIGINS', 'production'],
    [{ WORKER_SERVICES: 'ghost' }, 'WORKER_SERVICES', 'ghost'],
    // Records of requests still open at their deadline must outlive the sweep's grace (2 x lock + 5 s) and its interval.
    [{ MCP_RESULT_TTL_SECONDS: '20' }, 'MCP_RESULT_TTL_SECONDS', 'at least 30 s'],
    [
      { MCP_SERVICES: 'users', MCP_SERVICE_USERS_ENDPOINT: 'http://u', MCP_SERVICE_USERS_CB_RECOVERY_TIMEOUT: '0' },
      'MCP_SERVICE_USERS_CB_RECOVERY_TIMEOUT',
      '100',
    ],
  ])('a bad value stops start-up naming the variable (%#)', (env, variable, words) => {
    const err = errorOf(() => GatewayConfigManager.fromEnv(env));
    expect(err.issues.map((i) => i.source)).toContain(variable);
    expect(err.message).toContain(variable);
    expect(err.message).toContain(words);
  });

  it('takes a Redis Cluster, or Sentinels with their group and password, and replicas to wait for', () => {
    const cluster = GatewayConfigManager.fromEnv({
      REDIS_CLUSTER_NODES: 'redis://:pw@10.0.0.1:7000, rediss://10.0.0.2:7000',
      REDIS_WAIT_REPLICAS: '1',
    });
    expect(cluster.redis).toMatchObject({ clusterNodes: ['redis://:pw@10.0.0.1:7000', 'rediss://10.0.0.2:7000'], waitReplicas: 1 });
    expect(cluster.redis.sentinel).toBeUndefined();
    const sentinel = GatewayConfigManager.fromEnv({ REDIS_SENTINELS: 's1:26379,s2:26380', REDIS_SENTINEL_PASSWORD: 'sentinel-secret' });
    expect(sentinel.redis.sentinel).toEqual({ sentinels: ['s1:26379', 's2:26380'], name: 'mymaster', password: 'sentinel-secret' });
    expect(GatewayConfigManager.fromEnv({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'queues' }).redis.sentinel?.name).toBe(
      'queues',
    );
    // The sentinels' password and a seed's are secrets in a config dump.
    const dump = JSON.stringify(redactConfig({ ...cluster, redis: { ...cluster.redis, sentinel: sentinel.redis.sentinel } }));
    expect(dump).not.toContain('sentinel-secret');
    expect(dump).not.toContain(':pw@');
  });

  it('takes a short result TTL when the worker lock makes the sweep grace shorter still', () => {
    expect(GatewayConfigManager.fromEnv({ MCP_RESULT_TTL_SECONDS: '12', WORKER_LOCK_MS: '1000' }).results.ttlSeconds).toBe(12);
  });

  it('says which service name breaks the rule, and that a missing value is required', () => {
    const name = errorOf(() => GatewayConfigManager.fromEnv({ MCP_SERVICES: 'bad.name', MCP_SERVICE_BAD_NAME_ENDPOINT: 'http://x' }));
    expect(name.issues).toEqual([{ source: 'MCP_SERVICES', message: '"bad.name": service names are letters, digits, _ and -' }]);
    const missing = errorOf(() => GatewayConfigManager.fromEnv({ MCP_SERVICES: 'nep' }));
    expect(missing.issues).toEqual([{ source: 'MCP_SERVICE_NEP_ENDPOINT', message: 'is required (string)' }]);
  });

  it('never puts an inbound key into an error message', () => {
    const err = errorOf(() => GatewayConfigManager.fromEnv({ MCP_GATEWAY_API_KEYS: 'short:agent' }));
    expect(err.message).toContain('MCP_GATEWAY_API_KEYS');
    expect(err.message).not.toContain('short');
  });
});

describe('configuration from a file, and the file under the environment', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcp-config-'));

  it('reads YAML and JSON; the environment overrides the file key by key', () => {
    const yamlFile = path.join(dir, 'gateway.yaml');
    writeFileSync(
      yamlFile,
      [
        'defaultTimeout: 5000',
        'services:',
        '  users:',
        '    endpoint: http://users:3000',
        '    definitionFile: defs/users.yaml',
        '    rateLimit: { requestsPerMinute: 120, burstLimit: 10 }',
      ].join('\n'),
    );
    const fromFile = GatewayConfigManager.fromFile(yamlFile);
    expect(fromFile.services.users).toMatchObject({ endpoint: 'http://users:3000', definitionFile: path.join(dir, 'defs/users.yaml') });
    const merged = GatewayConfigManager.load({
      MCP_GATEWAY_CONFIG: yamlFile,
      MCP_DEFAULT_TIMEOUT: '7000',
      MCP_SERVICES: 'users',
      MCP_SERVICE_USERS_BURST_LIMIT: '3',
    });
    expect(merged.defaultTimeout).toBe(7000);
    expect(merged.services.users!.rateLimit).toEqual({ requestsPerMinute: 120, burstLimit: 3 });
    expect(merged.services.users!.endpoint).toBe('http://users:3000');

    const jsonFile = path.join(dir, 'gateway.json');
    writeFileSync(jsonFile, JSON.stringify({ services: { orders: { endpoint: 'http://orders' } } }));
    expect(Object.keys(GatewayConfigManager.fromFile(jsonFile).services)).toEqual(['orders']);
  });

  it('a service of the file takes its MCP_SERVICE_<NAME>_* variables without being listed in MCP_SERVICES', () => {
    const file = path.join(dir, 'limits.yaml');
    writeFileSync(
      file,
      [
        'services:',
        '  rl-svc:',
        '    endpoint: http://rl',
        '    rateLimit: { requestsPerMinute: 60, burstLimit: 2 }',
        '  other:',
        '    endpoint: http://other',
      ].join('\n'),
    );
    const merged = GatewayConfigManager.load({
      MCP_GATEWAY_CONFIG: file,
      MCP_SERVICE_RL_SVC_RATE_LIMIT_RPM: '6000',
      MCP_SERVICE_RL_SVC_BURST_LIMIT: '100',
    });
    expect(merged.services['rl-svc']!.rateLimit).toEqual({ requestsPerMinute: 6000, burstLimit: 100 });
    expect(merged.services['rl-svc']!.endpoint).toBe('http://rl');
    // Only the services it names: no variable, no change, and no service made from a variable alone.
    expect(merged.services.other!.rateLimit).toEqual(GatewayConfigManager.load({ MCP_GATEWAY_CONFIG: file }).services.other!.rateLimit);
    expect(Object.keys(merged.services).sort()).toEqual(['other', 'rl-svc']);
    // A bad one is named by its variable.
    const bad = errorOf(() => GatewayConfigManager.load({ MCP_GATEWAY_CONFIG: file, MCP_SERVICE_OTHER_TIMEOUT: 'soon' }));
    expect(bad.issues.map((i) => i.source)).toEqual(['MCP_SERVICE_OTHER_TIMEOUT']);
    // Two services of the file with one variable name: the variable is refused, not given to either.
    writeFileSync(file, ['services:', '  a-b: { endpoint: http://ab }', '  a_b: { endpoint: http://a_b }'].join('\n'));
    const twice = errorOf(() => GatewayConfigManager.load({ MCP_GATEWAY_CONFIG: file, MCP_SERVICE_A_B_TIMEOUT: '100' }));
    expect(twice.issues[0]).toMatchObject({ source: 'MCP_SERVICE_A_B_TIMEOUT' });
    expect(twice.issues[0]!.message).toContain('a-b, a_b');
  });

  it('names the file and the key of a bad value, and a missing file by its variable', () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'services:\n  users:\n    endpoint: http://u\n    timeout: -3\n');
    const err = errorOf(() => GatewayConfigManager.load({ MCP_GATEWAY_CONFIG: bad }));
    expect(err.message).toContain(`${bad}: services.users.timeout`);
    const missing = errorOf(() => GatewayConfigManager.load({ MCP_GATEWAY_CONFIG: path.join(dir, 'nope.yaml') }));
    expect(missing.issues[0]!.source).toBe('MCP_GATEWAY_CONFIG');
    writeFileSync(bad, 'services: [unclosed');
    expect(errorOf(() => GatewayConfigManager.fromFile(bad)).message).toContain('not valid YAML/JSON');
  });

  it('a service in MCP_SERVICES and in the file: a bad value is blamed on the variable only when the variable set it', () => {
    const file = path.join(dir, 'both.yaml');
    writeFileSync(
      file,
      ['services:', '  users:', '    timeout: -5', '    operations:', '      - { name: get, method: FETCH, path: /u }'].join('\n'),
    );
    const env = { MCP_GATEWAY_CONFIG: file, MCP_SERVICES: 'users', MCP_SERVICE_USERS_ENDPOINT: 'http://u' };
    const fromFile = errorOf(() => GatewayConfigManager.load(env))
      .issues.map((i) => i.source)
      .sort();
    expect(fromFile).toEqual([`${file}: services.users.operations.0.method`, `${file}: services.users.timeout`]);
    // The variable over the file's value: the variable is named.
    const fromEnv = errorOf(() => GatewayConfigManager.load({ ...env, MCP_SERVICE_USERS_TIMEOUT: '-7' }));
    expect(fromEnv.issues.map((i) => i.source)).toContain('MCP_SERVICE_USERS_TIMEOUT');
    expect(fromEnv.issues.map((i) => i.source)).not.toContain(`${file}: services.users.timeout`);
    // Missing from both: the variable that would set it, and where in the file it would go.
    writeFileSync(file, 'defaultTimeout: 5000\n');
    const missing = errorOf(() => GatewayConfigManager.load({ MCP_GATEWAY_CONFIG: file, MCP_SERVICES: 'users' }));
    expect(missing.issues.map((i) => i.source)).toEqual([`MCP_SERVICE_USERS_ENDPOINT (or ${file}: services.users.endpoint)`]);
  });
});

describe('an object with environment variables over it (gateway:dev)', () => {
  it('takes the variables given over the object, and names a bad one', () => {
    const dev = GatewayConfigManager.createDevelopmentConfig();
    expect(GatewayConfigManager.withEnv(dev, { PORT: '9191' }).port).toBe(9191);
    expect(GatewayConfigManager.withEnv(dev, {}).port).toBe(8080);
    expect(GatewayConfigManager.withEnv(dev, {}).services.demo).toEqual(dev.services.demo);
    for (const [port, words] of [
      ['soon', 'whole number'],
      ['70000', '65535'],
    ] as const) {
      const err = errorOf(() => GatewayConfigManager.withEnv(dev, { PORT: port }));
      expect(err.issues.map((i) => i.source)).toEqual(['PORT']);
      expect(err.message).toContain(words);
    }
  });
});

describe('programmatic configuration', () => {
  it('accepts the original README object shape', () => {
    const cfg = GatewayConfigManager.fromObject({
      gatewayUrl: 'http://localhost:8080',
      defaultTimeout: 30000,
      retryPolicy: { maxAttempts: 3, backoffStrategy: 'exponential', initialDelay: 1000, maxDelay: 10000, jitter: true },
      services: {
        'user-service': {
          endpoint: 'http://localhost:3001',
          auth: { type: 'bearer', credentials: { token: 'your-token' } },
          rateLimit: { requestsPerMinute: 100, burstLimit: 10 },
          timeout: 5000,
          circuitBreaker: { failureThreshold: 5, recoveryTimeout: 30000, halfOpenMaxCalls: 3 },
        },
      },
    });
    expect(cfg.services['user-service']!.circuitBreaker.halfOpenMaxCalls).toBe(3);
    expect(cfg.redis).toEqual({ url: 'redis://127.0.0.1:6379', keyPrefix: 'mcp', clusterNodes: [], waitReplicas: 0 });
    expect(
      errorOf(() => GatewayConfigManager.fromObject({ services: { u: { endpoint: 'http://u', bogus: 1 } as never } })).message,
    ).toContain('services.u');
  });

  it('a service retry policy overrides the gateway one key by key', () => {
    const cfg = GatewayConfigManager.fromObject({
      retryPolicy: { maxAttempts: 4, backoffStrategy: 'linear', initialDelay: 100, maxDelay: 1000, jitter: true },
      services: { a: { endpoint: 'http://a', retryPolicy: { maxAttempts: 1, jitter: false } }, b: { endpoint: 'http://b' } },
    });
    expect(effectiveRetryPolicy(cfg, 'a')).toEqual({
      maxAttempts: 1,
      backoffStrategy: 'linear',
      initialDelay: 100,
      maxDelay: 1000,
      jitter: false,
    });
    expect(effectiveRetryPolicy(cfg, 'b')).toEqual(cfg.retryPolicy);
  });

  it('createDevelopmentConfig gives the demo service with its operations', () => {
    const cfg = GatewayConfigManager.createDevelopmentConfig();
    expect(cfg.environment).toBe('development');
    expect(cfg.services.demo!.operations!.map((o) => o.name)).toEqual(['echo', 'getItem', 'slow']);
    expect(GatewayConfigManager.createDevelopmentConfig({ port: 9999 }).port).toBe(9999);
  });
});

describe('production safety and secrets', () => {
  const prod = (security: Record<string, unknown>) => GatewayConfigManager.fromObject({ environment: 'production', security } as never);

  it('refuses to serve production open unless told to', () => {
    expect(() => assertSafeToServe(prod({}))).toThrow(/MCP_GATEWAY_API_KEYS/);
    expect(() => assertSafeToServe(prod({ allowAnonymous: true }))).not.toThrow();
    expect(() => assertSafeToServe(prod({ apiKeys: [{ key: 'k-0123456789', agentId: 'a' }] }))).not.toThrow();
    expect(() => assertSafeToServe(GatewayConfigManager.fromObject({}))).not.toThrow();
  });

  it('redactConfig hides credentials, keys, tokens and URL passwords', () => {
    const cfg: GatewayConfig = GatewayConfigManager.fromObject({
      redis: { url: 'redis://:hunter2-redis@cache:6379' },
      security: { apiKeys: [{ key: 'inbound-key-123', agentId: 'a' }], adminToken: 'admin-token-0123456789' },
      services: {
        u: { endpoint: 'http://x:pw-in-url@u/?key=q-secret', auth: { type: 'bearer', credentials: { token: 'bearer-secret' } } },
      },
    });
    const text = JSON.stringify(redactConfig(cfg));
    for (const secret of ['hunter2-redis', 'inbound-key-123', 'admin-token-0123456789', 'pw-in-url', 'q-secret', 'bearer-secret'])
      expect(text).not.toContain(secret);
    expect(text).toContain('"agentId":"a"');
  });

  it("redactUrl hides a URL's password (or a lone user name: a token) and query, and leaves a URL without them as it is", () => {
    expect(redactUrl('redis://ops:hunter2@cache:6379/0')).toBe('redis://ops:[REDACTED]@cache:6379/0');
    expect(redactUrl('https://ghp_token123@api.test/v1')).toBe('https://[REDACTED]@api.test/v1');
    expect(redactUrl('https://api.test/v1?key=q-secret')).toBe('https://api.test/v1');
    expect(redactUrl('redis://cache:6379')).toBe('redis://cache:6379');
    // Not parseable as a URL: whatever stands before an @ still goes.
    expect(redactUrl('redis://:hunter 2@[cache')).toBe('redis://[REDACTED]@[cache');
  });
});

describe('.env.example', () => {
  it('is the generated list of every variable with its default and meaning', () => {
    const file = readFileSync(path.join(__dirname, '../../../.env.example'), 'utf8');
    expect(file).toBe(renderEnvExample());
    for (const k of GATEWAY_ENV) expect(file).toContain(`${k.name}=`);
    for (const k of SERVICE_ENV) expect(file).toContain(`MCP_SERVICE_<NAME>_${k.name}=`);
    for (const v of ['MCP_SERVICES=', 'MCP_ENVIRONMENT']) expect(file).toContain(v);
  });
});

describe('the environment a process runs in', () => {
  it('entry points default to production unless MCP_ENVIRONMENT, NODE_ENV or the file says otherwise', () => {
    expect(GatewayConfigManager.load({}, { defaultEnvironment: 'production' }).environment).toBe('production');
    expect(GatewayConfigManager.load({ NODE_ENV: 'development' }, { defaultEnvironment: 'production' }).environment).toBe('development');
    expect(GatewayConfigManager.load({ MCP_ENVIRONMENT: 'test' }, { defaultEnvironment: 'production' }).environment).toBe('test');
    expect(GatewayConfigManager.load({}).environment).toBe('development');
  });
});

describe('agent quotas and fair-queue weights', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcp-agents-'));

  it('reads defaults for every agent and MCP_AGENT_<ID>_* for one, found by its id upper-cased with - as _', () => {
    const cfg = GatewayConfigManager.fromEnv({
      MCP_AGENT_RATE_LIMIT_RPM: '120',
      MCP_AGENT_MAX_IN_FLIGHT: '20',
      MCP_AGENT_PLANNER_BOT_RATE_LIMIT_RPM: '30',
      MCP_AGENT_PLANNER_BOT_BURST_LIMIT: '4',
      MCP_AGENT_PLANNER_BOT_WEIGHT: '2.5',
      MCP_FAIR_QUEUES: 'false',
    });
    expect(cfg.agentDefaults).toEqual({ requestsPerMinute: 120, maxInFlight: 20 });
    expect(cfg.fairQueues).toBe(false);
    const policy = agentPolicies(cfg);
    // planner-bot: its own rate and burst over the defaults; the default cap on requests in flight.
    expect(policy('planner-bot', 'users')).toEqual({
      own: { requestsPerMinute: 30, burstLimit: 4, maxInFlight: 20 },
      service: undefined,
      weight: 2.5,
      quotaServices: [],
    });
    // Any other agent: the defaults, a burst of 5 s of its rate.
    expect(policy('someone', 'users')).toEqual({
      own: { requestsPerMinute: 120, burstLimit: 10, maxInFlight: 20 },
      service: undefined,
      weight: 1,
      quotaServices: [],
    });
    // No default set: no quota.
    expect(agentPolicies(GatewayConfigManager.fromEnv({}))('someone', 'users')).toEqual({
      own: undefined,
      service: undefined,
      weight: 1,
      quotaServices: [],
    });
  });

  it("takes an agent's quota per service from the file, and its variables over the file's", () => {
    const file = path.join(dir, 'agents.yaml');
    writeFileSync(
      file,
      ['agents:', '  planner-bot:', '    maxInFlight: 50', '    weight: 1', '    services:', '      users: { requestsPerMinute: 60 }'].join(
        '\n',
      ),
    );
    const cfg = GatewayConfigManager.load({ MCP_GATEWAY_CONFIG: file, MCP_AGENT_PLANNER_BOT_WEIGHT: '3' });
    expect(cfg.agents).toEqual({ 'planner-bot': { maxInFlight: 50, weight: 3, services: { users: { requestsPerMinute: 60 } } } });
    const policy = agentPolicies(cfg);
    expect(policy('planner-bot', 'users')).toEqual({
      own: { requestsPerMinute: undefined, burstLimit: undefined, maxInFlight: 50 },
      service: { requestsPerMinute: 60, burstLimit: 5, maxInFlight: undefined },
      weight: 3,
      quotaServices: ['users'],
    });
    expect(policy('planner-bot', 'billing').service).toBeUndefined();
  });

  it("takes the operating guide's three agents as written, and its environment-only form to the same quotas", () => {
    const guide = readFileSync(path.join(__dirname, '../../../docs/operating.md'), 'utf8');
    const section = guide.slice(guide.indexOf('Three agents in a config file'));
    const yaml = /```yaml\n([\s\S]+?)```/.exec(section)![1]!;
    const file = path.join(dir, 'three-agents.yaml');
    writeFileSync(file, yaml);
    const keys = /`MCP_GATEWAY_API_KEYS=([^`]+)`/.exec(section)![1]!.replace(/<(\w+) key>/g, (_, who: string) => `${who}-key-0123456789`);
    const cfg = GatewayConfigManager.load({
      MCP_GATEWAY_CONFIG: file,
      MCP_GATEWAY_API_KEYS: keys,
      MCP_ADMIN_TOKEN: 'admin-token-0123456789',
    });
    expect(cfg.security.apiKeys.map((k) => [k.agentId, k.services])).toEqual([
      ['planner', undefined],
      ['support-bot', ['@support']],
      ['nightly-batch', ['github.readOnly']],
    ]);
    const fromFile = agentPolicies(cfg);
    expect(fromFile('planner', 'github')).toEqual({
      own: { requestsPerMinute: 300, burstLimit: 60, maxInFlight: 50 },
      service: { requestsPerMinute: undefined, burstLimit: undefined, maxInFlight: 5 },
      weight: 1,
      quotaServices: ['github'],
    });
    expect(fromFile('support-bot', 'users')).toEqual({
      own: { requestsPerMinute: 120, burstLimit: 10, maxInFlight: 20 },
      service: undefined,
      weight: 2,
      quotaServices: [],
    });
    expect(fromFile('nightly-batch', 'github').weight).toBe(0.1);
    // The environment-only form: every variable the guide lists, giving the same quotas (per service excepted).
    const variables = Object.fromEntries(
      [...section.slice(section.indexOf('by environment alone')).matchAll(/`(MCP_AGENT_\w+)=([\d.]+)`/g)].map((m) => [m[1]!, m[2]!]),
    );
    expect(Object.keys(variables)).toHaveLength(8);
    const fromEnv = agentPolicies(GatewayConfigManager.fromEnv(variables));
    for (const [agent, service] of [
      ['planner', 'users'],
      ['support-bot', 'users'],
      ['nightly-batch', 'github'],
      ['someone-else', 'users'],
    ] as const)
      expect(fromEnv(agent, service)).toEqual({ ...fromFile(agent, service), service: undefined, quotaServices: [] });
  });

  it('knows when inbound auth can name one agent only: then fair queues have nothing to share', () => {
    const keys = (spec: string) => GatewayConfigManager.fromEnv({ MCP_GATEWAY_API_KEYS: spec });
    expect(severalAgents(keys('key-one-0123456789:solo,key-two-0123456789:solo:users'))).toBe(false);
    expect(severalAgents(keys('key-one-0123456789:solo,key-two-0123456789:other'))).toBe(true);
    // JWT subjects are any number of agents; with inbound auth off the body names the agent.
    expect(
      severalAgents(GatewayConfigManager.fromEnv({ MCP_GATEWAY_API_KEYS: 'key-one-0123456789:solo', MCP_JWT_SECRET: 'x'.repeat(32) })),
    ).toBe(true);
    expect(severalAgents(GatewayConfigManager.fromEnv({}))).toBe(true);
  });

  it('gives an agent that sets its own rate a burst from that rate, and takes 0 as no limit over a default', () => {
    const cfg = GatewayConfigManager.fromEnv({
      MCP_AGENT_RATE_LIMIT_RPM: '60',
      MCP_AGENT_BURST_LIMIT: '10',
      MCP_AGENT_MAX_IN_FLIGHT: '5',
      MCP_AGENT_FAST_RATE_LIMIT_RPM: '6000',
      MCP_AGENT_FREE_RATE_LIMIT_RPM: '0',
      MCP_AGENT_FREE_MAX_IN_FLIGHT: '0',
    });
    const policy = agentPolicies(cfg);
    expect(policy('fast', 'users').own).toEqual({ requestsPerMinute: 6000, burstLimit: 500, maxInFlight: 5 });
    expect(policy('free', 'users').own).toBeUndefined();
    expect(policy('anyone', 'users').own).toEqual({ requestsPerMinute: 60, burstLimit: 10, maxInFlight: 5 });
    expect(() => GatewayConfigManager.fromEnv({ MCP_AGENT_BOT_WEIGHT: '0.001' })).toThrow(/MCP_AGENT_BOT_WEIGHT/);
  });

  it('names the variable of a bad value, and refuses two agents of the file that one variable name would mean', () => {
    expect(() => GatewayConfigManager.fromEnv({ MCP_AGENT_BOT_MAX_IN_FLIGHT: 'many' })).toThrow(
      /MCP_AGENT_BOT_MAX_IN_FLIGHT.*whole number/,
    );
    expect(() => GatewayConfigManager.fromEnv({ MCP_AGENT_BOT_WEIGHT: '0' })).toThrow(/MCP_AGENT_BOT_WEIGHT/);
    expect(() => GatewayConfigManager.fromObject({ agents: { 'a-b': { weight: 2 }, a_b: { weight: 1 } } })).toThrow(
      /maps to the same MCP_AGENT_A_B_\* variables as a-b/,
    );
  });
});
