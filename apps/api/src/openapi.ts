import { z } from 'zod';
import { ServiceConfigSchema, type GatewayConfig } from '@mcp-gateway/config';
import { BulkReplaySchema, FilterSchema, ReplaySchema } from './dead-letters';
import {
  AcceptedSchema,
  ERROR_CATALOG,
  ErrorBodySchema,
  ErrorEnvelopeSchema,
  MCPRequestSchema,
  MCPResponseSchema,
  OperationDefinitionSchema,
  RequestStatusSchema,
  ResultMetadataSchema,
  type ErrorCode,
} from '@mcp-gateway/protocol';

/**
 * The gateway's own REST API described as OpenAPI 3.1 (`GET /openapi.json`). Bodies and answers are
 * the zod schemas that validate them (protocol's request and answers, the config's service schema),
 * converted by zod; the routes, their parameters and which error codes each can answer are listed
 * here. A test checks every route of the app is here and every live answer fits it.
 */

/** The answers of the other routes, as the handlers build them (extra fields allowed where they only inform). */
const HealthSchema = z.object({
  status: z.enum(['healthy', 'degraded', 'unhealthy']),
  redis: z.enum(['up', 'down']),
  workers: z.object({ count: z.number().int() }),
  services: z.record(
    z.string(),
    z.object({ status: z.string(), circuit: z.string(), workers: z.number().int(), lastCheck: z.string() }).loose(),
  ),
});

const ProbeSchema = z.object({ status: z.string() });

const ServiceSummarySchema = z
  .object({
    name: z.string(),
    registered: z.boolean().describe('Registered at run time (not from the configuration)'),
    endpoint: z.string(),
    description: z.string().optional(),
    status: z.string(),
    circuit: z.string(),
    queueDepth: z.number().int(),
    operations: z.number().int().describe('Operations the caller may call'),
    definitionSource: z.string(),
  })
  .loose();

const ServiceDefinitionSchema = z.object({
  service: z.string(),
  source: z.enum(['config', 'file', 'openapi', 'dynamic']),
  operations: z.array(OperationDefinitionSchema),
  document: z.object({}).loose().optional().describe('An imported document: its format, and what the import renamed or left out'),
});

const ServiceMetricsSchema = z.object({
  service: z.string(),
  circuit: z.object({ state: z.string(), failures: z.number(), successes: z.number() }).loose(),
  rateLimiter: z.object({ tokens: z.number(), capacity: z.number(), refillPerSecond: z.number() }),
  queue: z.object({ waiting: z.number(), active: z.number(), delayed: z.number(), completed: z.number(), failed: z.number() }),
  latency: z.object({ p50: z.number().nullable(), p95: z.number().nullable(), p99: z.number().nullable(), window: z.number() }),
  counts: z.record(z.string(), z.number()),
});

const RegistrationSchema = ServiceConfigSchema.extend({
  name: z.string().describe('The service name (letters, digits, _ and -)'),
  ttlSeconds: z.number().int().min(1).max(86_400).optional().describe('Expires unless its heartbeat renews it'),
});

const RegisteredSchema = z.object({ name: z.string() }).loose();

const QuotaStateSchema = z.object({
  requestsPerMinute: z.number().optional(),
  burstLimit: z.number().optional(),
  maxInFlight: z.number().optional(),
  inFlight: z.number().int().describe('Requests held: queued, waiting for a retry or running'),
  tokens: z.number().optional().describe('Tokens left when the quota has a rate'),
});

const ServiceUsageSchema = z.object({
  requests: z.number().int().optional(),
  outcomes: z.record(z.string(), z.number()).optional(),
  backendMs: z.object({ total: z.number(), mean: z.number().nullable(), calls: z.number() }).optional(),
  quota: QuotaStateSchema.optional(),
});

const AgentUsageSchema = z.object({
  agent: z.string(),
  quota: QuotaStateSchema.extend({ weight: z.number() }).optional(),
  services: z.record(z.string(), ServiceUsageSchema),
});

const AgentListSchema = z.object({
  agents: z.array(z.object({ agent: z.string(), services: z.record(z.string(), ServiceUsageSchema) })),
  truncated: z.boolean(),
});

const DeadLetterSchema = z
  .object({
    id: z.string().describe('The failed request'),
    service: z.string(),
    operation: z.string(),
    parameters: z.record(z.string(), z.unknown()),
    agentId: z.string().optional(),
    correlationId: z.string(),
    timeoutMs: z.number().optional().describe('Its deadline from acceptance: its replays keep it'),
    priority: z.string().optional(),
    replayOf: z.string().optional(),
    error: ErrorBodySchema,
    attempts: z.number().int(),
    acceptedAt: z.number(),
    failedAt: z.number(),
    replays: z.array(
      z
        .object({ id: z.string(), at: z.number(), state: z.string().optional(), error: z.string().optional() })
        .describe('A replay: its request id, when, and (reading one dead letter) where it is now'),
    ),
  })
  .describe('A request that failed for a reason that may pass later, kept for replay');

const DeadLetterListSchema = z.object({ deadLetters: z.array(DeadLetterSchema), truncated: z.boolean() });
const ReplayedSchema = z.object({ id: z.string(), replay: z.object({ id: z.string(), state: z.string() }) });
const BulkReplayedSchema = z.object({
  replayed: z.array(ReplayedSchema),
  refused: z.array(z.object({ id: z.string(), error: ErrorBodySchema })),
});

const ResourceMetadataSchema = z
  .object({ resource: z.string(), authorization_servers: z.array(z.string()), bearer_methods_supported: z.array(z.string()) })
  .loose();

/** Every schema of the document, by the name its references use. */
const SCHEMAS = {
  Request: MCPRequestSchema,
  ErrorBody: ErrorBodySchema,
  ResultMetadata: ResultMetadataSchema,
  QuotaState: QuotaStateSchema,
  Result: MCPResponseSchema,
  RequestStatus: RequestStatusSchema,
  Accepted: AcceptedSchema,
  Error: ErrorEnvelopeSchema,
  Health: HealthSchema,
  Probe: ProbeSchema,
  ServiceSummary: ServiceSummarySchema,
  ServiceDefinition: ServiceDefinitionSchema,
  ServiceMetrics: ServiceMetricsSchema,
  Registration: RegistrationSchema,
  Registered: RegisteredSchema,
  AgentUsage: AgentUsageSchema,
  AgentList: AgentListSchema,
  ProtectedResourceMetadata: ResourceMetadataSchema,
  DeadLetter: DeadLetterSchema,
  DeadLetterList: DeadLetterListSchema,
  Replayed: ReplayedSchema,
  BulkReplayed: BulkReplayedSchema,
  Replay: ReplaySchema,
  BulkReplay: BulkReplaySchema,
};
type SchemaName = keyof typeof SCHEMAS;

/** The components' JSON Schemas (2020-12, OpenAPI 3.1's dialect), each referring to the others by $ref. */
function componentSchemas(): Record<string, unknown> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(SCHEMAS)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    // Bodies as a caller writes them: fields with defaults are optional.
    io: 'input',
    uri: (id) => `#/components/schemas/${id}`,
    unrepresentable: 'any',
  });
  for (const s of Object.values(schemas) as Record<string, unknown>[]) {
    delete s.$schema;
    delete s.$id;
  }
  return schemas;
}

const ref = (name: SchemaName) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: SchemaName) => ({ 'application/json': { schema: ref(name) } });

/** The answers of errors by status, each naming the codes it can carry. */
function errors(codes: ErrorCode[], schema: SchemaName = 'Error'): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(ERROR_CATALOG[code].status, [...(byStatus.get(ERROR_CATALOG[code].status) ?? []), code]);
  return Object.fromEntries(
    [...byStatus].map(([status, of]) => [
      String(status),
      {
        description: of.join(', '),
        ...(status === 429 || status === 503
          ? { headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'Seconds' } } }
          : {}),
        content: schema === 'Error' ? json('Error') : { 'application/json': { schema: { anyOf: [ref('Error'), ref(schema)] } } },
      },
    ]),
  );
}

const query = (name: string, description: string, schema: object = { type: 'string' }) => ({
  name,
  in: 'query',
  required: false,
  schema,
  description,
});
/** A filter of dead letters as query parameters: the properties of the schema that validates it. */
const FILTER = Object.entries(
  (
    z.toJSONSchema(FilterSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as {
      properties: Record<string, { description?: string }>;
    }
  ).properties,
).map(([name, schema]) => ({
  name,
  in: 'query',
  required: false,
  schema,
  ...(schema.description ? { description: schema.description } : {}),
}));
const path = (name: string, description: string) => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });
const header = (name: string, description: string) => ({ name, in: 'header', required: false, schema: { type: 'string' }, description });
const AGENT = [{ agentKey: [] }, { agentJwt: [] }, {}];
const ADMIN = [{ adminToken: [] }, { adminBearer: [] }];
/** The admin token as the console's pages send it too (HTTP Basic). */
const CONSOLE_ADMIN = [...ADMIN, { adminBasic: [] }];
/** Redis away: every route that reads the shared state can answer it. */
const AWAY: ErrorCode[] = ['UNAVAILABLE', 'INTERNAL_ERROR'];

function paths(): Record<string, unknown> {
  const requestId = path('id', 'The request id');
  const serviceName = path('name', 'The service name');
  return {
    '/mcp/request': {
      post: {
        operationId: 'submitRequest',
        summary: 'Send a request to a service operation',
        description:
          "Validated, then queued; the answer waits for the result unless `Prefer: respond-async` (202 at once) or `Prefer: wait=N` (202 after N seconds). A result that is an error answers with its code's status.",
        security: AGENT,
        parameters: [
          header('Prefer', '`respond-async`, or `wait=N` (seconds)'),
          header('X-Correlation-ID', 'Kept with the request and sent to the backend'),
          header('traceparent', 'W3C trace context'),
        ],
        requestBody: { required: true, content: json('Request') },
        responses: {
          '200': { description: 'The result', headers: { 'Content-Location': { schema: { type: 'string' } } }, content: json('Result') },
          '202': {
            description: 'Accepted: poll the Location',
            headers: { Location: { schema: { type: 'string' } } },
            content: json('Accepted'),
          },
          ...errors(
            [
              'VALIDATION_ERROR',
              'UNAUTHORIZED',
              'FORBIDDEN',
              'UNKNOWN_SERVICE',
              'UNKNOWN_OPERATION',
              'CONFLICT',
              'CANCELLED',
              'PAYLOAD_TOO_LARGE',
              'RATE_LIMITED',
              'INTERNAL_ERROR',
              'BACKEND_ERROR',
              'CIRCUIT_OPEN',
              'OVERLOADED',
              'UNAVAILABLE',
              'TIMEOUT',
            ],
            'Result',
          ),
        },
      },
    },
    '/mcp/requests/{id}': {
      get: {
        operationId: 'getRequest',
        summary: "A request's state, and its result once it has ended",
        security: AGENT,
        parameters: [requestId, header('Prefer', '`wait=N`: wait up to N seconds (at most 60) for it to end')],
        responses: {
          '200': { description: 'Its state', content: json('RequestStatus') },
          ...errors(['VALIDATION_ERROR', 'UNAUTHORIZED', 'NOT_FOUND', ...AWAY]),
        },
      },
      delete: {
        operationId: 'cancelRequest',
        summary: 'Cancel a request that has not ended',
        security: AGENT,
        parameters: [requestId],
        responses: {
          '200': { description: 'Cancelled: its result', content: json('RequestStatus') },
          ...errors(['VALIDATION_ERROR', 'UNAUTHORIZED', 'NOT_FOUND', 'CONFLICT', ...AWAY]),
        },
      },
    },
    '/mcp/services': {
      get: {
        operationId: 'listServices',
        summary: 'The services the caller may use',
        security: AGENT,
        responses: {
          '200': {
            description: 'Services',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: { services: { type: 'array', items: ref('ServiceSummary') } },
                  required: ['services'],
                },
              },
            },
          },
          ...errors(['UNAUTHORIZED', ...AWAY]),
        },
      },
      post: {
        operationId: 'registerService',
        summary: 'Register (or replace) a service at run time',
        security: ADMIN,
        requestBody: { required: true, content: json('Registration') },
        responses: {
          '200': { description: 'Replaced', content: json('Registered') },
          '201': { description: 'Registered', content: json('Registered') },
          ...errors(['VALIDATION_ERROR', 'UNAUTHORIZED', 'FORBIDDEN', 'CONFLICT', 'PAYLOAD_TOO_LARGE', ...AWAY]),
        },
      },
    },
    '/mcp/services/{name}': {
      delete: {
        operationId: 'deregisterService',
        summary: 'Remove a service registered at run time (its waiting requests end)',
        security: ADMIN,
        parameters: [serviceName],
        responses: {
          '200': { description: 'Removed', content: json('Registered') },
          ...errors(['UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND', 'CONFLICT', ...AWAY]),
        },
      },
    },
    '/mcp/services/{name}/heartbeat': {
      put: {
        operationId: 'renewService',
        summary: "Renew a registration's TTL",
        security: ADMIN,
        parameters: [serviceName],
        responses: {
          '200': { description: 'Renewed', content: json('Registered') },
          ...errors(['UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND', ...AWAY]),
        },
      },
    },
    '/mcp/services/{name}/refresh': {
      post: {
        operationId: 'refreshService',
        summary: "Load a service's definition again (its OpenAPI document, its file)",
        security: ADMIN,
        parameters: [serviceName],
        responses: {
          '200': { description: 'Reloaded', content: json('Registered') },
          ...errors(['UNAUTHORIZED', 'FORBIDDEN', 'UNKNOWN_SERVICE', 'BACKEND_ERROR', ...AWAY]),
        },
      },
    },
    '/mcp/services/{name}/definition': {
      get: {
        operationId: 'getServiceDefinition',
        summary: "A service's operations (those the caller may call)",
        security: AGENT,
        parameters: [serviceName],
        responses: {
          '200': { description: 'Its definition', content: json('ServiceDefinition') },
          ...errors(['UNAUTHORIZED', 'UNKNOWN_SERVICE', 'BACKEND_ERROR', ...AWAY]),
        },
      },
    },
    '/mcp/services/{name}/metrics': {
      get: {
        operationId: 'getServiceMetrics',
        summary: "A service's circuit, rate limiter, queue and latency (the same from every replica)",
        security: AGENT,
        parameters: [serviceName],
        responses: {
          '200': { description: 'Its numbers', content: json('ServiceMetrics') },
          ...errors(['UNAUTHORIZED', 'UNKNOWN_SERVICE', ...AWAY]),
        },
      },
    },
    '/mcp/agents': {
      get: {
        operationId: 'listAgents',
        summary: "Every agent's usage (the most recently active first, at most 1,000)",
        security: ADMIN,
        responses: { '200': { description: 'Agents', content: json('AgentList') }, ...errors(['UNAUTHORIZED', 'FORBIDDEN', ...AWAY]) },
      },
    },
    '/mcp/agents/{id}/usage': {
      get: {
        operationId: 'getAgentUsage',
        summary: "An agent's usage and quotas per service (the admin token, or the agent itself)",
        security: [...ADMIN, { agentKey: [] }, { agentJwt: [] }],
        parameters: [path('id', 'The agent id')],
        responses: {
          '200': { description: 'Its usage', content: json('AgentUsage') },
          ...errors(['VALIDATION_ERROR', 'UNAUTHORIZED', 'FORBIDDEN', ...AWAY]),
        },
      },
    },
    '/mcp/dead-letters': {
      get: {
        operationId: 'listDeadLetters',
        summary: 'Failed requests kept for replay, newest first',
        security: CONSOLE_ADMIN,
        parameters: FILTER,
        responses: {
          '200': { description: 'Dead letters', content: json('DeadLetterList') },
          ...errors(['VALIDATION_ERROR', 'UNAUTHORIZED', 'FORBIDDEN', ...AWAY]),
        },
      },
      delete: {
        operationId: 'purgeDeadLetters',
        summary: 'Delete the dead letters the filter keeps (all=true for every one)',
        security: CONSOLE_ADMIN,
        parameters: [...FILTER.filter((p) => p.name !== 'limit'), query('all', '`true`: every dead letter')],
        responses: {
          '200': {
            description: 'How many went',
            content: {
              'application/json': { schema: { type: 'object', properties: { removed: { type: 'integer' } }, required: ['removed'] } },
            },
          },
          ...errors(['VALIDATION_ERROR', 'UNAUTHORIZED', 'FORBIDDEN', ...AWAY]),
        },
      },
    },
    '/mcp/dead-letters/replay': {
      post: {
        operationId: 'replayDeadLetters',
        summary: 'Replay the dead letters a filter keeps, oldest first (each a new request recording replayOf)',
        security: CONSOLE_ADMIN,
        requestBody: { required: true, content: json('BulkReplay') },
        responses: {
          '200': { description: 'Sent, and refused', content: json('BulkReplayed') },
          ...errors(['VALIDATION_ERROR', 'UNAUTHORIZED', 'FORBIDDEN', ...AWAY]),
        },
      },
    },
    '/mcp/dead-letters/{id}': {
      get: {
        operationId: 'getDeadLetter',
        summary: 'One dead letter, with where its replays are now',
        security: CONSOLE_ADMIN,
        parameters: [requestId],
        responses: {
          '200': { description: 'The dead letter', content: json('DeadLetter') },
          ...errors(['UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND', ...AWAY]),
        },
      },
      delete: {
        operationId: 'deleteDeadLetter',
        summary: 'Delete one dead letter',
        security: CONSOLE_ADMIN,
        parameters: [requestId],
        responses: {
          '200': { description: 'Deleted', content: { 'application/json': { schema: { type: 'object' } } } },
          ...errors(['UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND', ...AWAY]),
        },
      },
    },
    '/mcp/dead-letters/{id}/replay': {
      post: {
        operationId: 'replayDeadLetter',
        summary: "Send a dead letter's request again, as a new request of its agent",
        description: 'A request whose outcome is unknown (a non-idempotent call that may have been carried out) needs `force: true`.',
        security: CONSOLE_ADMIN,
        parameters: [requestId],
        requestBody: { required: true, content: json('Replay') },
        responses: {
          '202': {
            description: 'Sent: poll the Location',
            headers: { Location: { schema: { type: 'string' } } },
            content: json('Replayed'),
          },
          ...errors([
            'VALIDATION_ERROR',
            'UNAUTHORIZED',
            'FORBIDDEN',
            'NOT_FOUND',
            'UNKNOWN_SERVICE',
            'UNKNOWN_OPERATION',
            'CONFLICT',
            'RATE_LIMITED',
            'CIRCUIT_OPEN',
            'OVERLOADED',
            ...AWAY,
          ]),
        },
      },
    },
    '/mcp/health': {
      get: {
        operationId: 'health',
        summary: 'Redis, workers and each service',
        responses: {
          '200': { description: 'Up', content: json('Health') },
          '503': { description: 'Redis cannot be reached', content: json('Health') },
        },
      },
    },
    '/mcp/health/live': {
      get: {
        operationId: 'live',
        summary: 'Liveness: the process serves',
        responses: { '200': { description: 'Live', content: json('Probe') } },
      },
    },
    '/mcp/health/ready': {
      get: {
        operationId: 'ready',
        summary: 'Readiness: not stopping, and Redis answers',
        responses: {
          '200': { description: 'Ready', content: json('Probe') },
          '503': { description: 'Stopping, or Redis unreachable', content: json('Probe') },
        },
      },
    },
    '/mcp': mcpEndpoint('The MCP endpoint (Streamable HTTP): every callable operation is a tool'),
    '/mcp/{toolset}': mcpEndpoint("A toolset's MCP endpoint: the toolset's operations only", [path('toolset', 'A configured toolset')]),
    '/metrics': {
      get: {
        operationId: 'metrics',
        summary: 'Prometheus metrics of this process',
        responses: { '200': { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    '/.well-known/oauth-protected-resource': resourceMetadata(
      'resourceMetadata',
      'Protected resource metadata (RFC 9728) of the MCP endpoint',
    ),
    '/.well-known/oauth-protected-resource/mcp': resourceMetadata('resourceMetadataOfMcp', 'The same, at the path of the MCP endpoint'),
    '/openapi.json': {
      get: {
        operationId: 'openapi',
        summary: 'This document',
        responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } },
      },
    },
    '/docs': htmlPage('docs', 'A reference page of this document'),
    '/admin/queues': htmlPage('queues', 'The BullMQ queue UI, read-only (its own pages and API below this path)'),
    '/': { get: { operationId: 'home', summary: 'Redirects to the console', responses: { '302': { description: 'To /dashboard' } } } },
    '/dashboard': htmlPage('dashboard', "The operators' console (the admin token, by HTTP Basic)"),
    '/dashboard/dead-letters': htmlPage('deadLettersPage', "The console's dead letters: filters, replay, delete"),
    '/dashboard/series': {
      get: {
        operationId: 'dashboardSeries',
        summary: "The last hour of every service, a minute a point (the console's charts)",
        security: CONSOLE_ADMIN,
        responses: {
          '200': { description: 'Points per service', content: { 'application/json': { schema: { type: 'object' } } } },
          ...errors(['UNAUTHORIZED', 'FORBIDDEN', ...AWAY]),
        },
      },
    },
    '/dashboard/status': {
      get: {
        operationId: 'dashboardStatus',
        summary: "The console's live data",
        security: CONSOLE_ADMIN,
        responses: {
          '200': { description: 'Services, queues and agents', content: { 'application/json': { schema: { type: 'object' } } } },
          ...errors(['UNAUTHORIZED', 'FORBIDDEN', ...AWAY]),
        },
      },
    },
  };
}

/** GET, POST and DELETE of an MCP endpoint: JSON-RPC, answered as JSON or an SSE stream. */
function mcpEndpoint(summary: string, parameters: unknown[] = []) {
  const answers = {
    '200': {
      description: 'A JSON-RPC answer, as JSON or as a text/event-stream',
      content: { 'application/json': { schema: { type: 'object' } }, 'text/event-stream': { schema: { type: 'string' } } },
    },
    '202': { description: 'A notification or response was taken' },
    '400': { description: 'Not a valid MCP message, or an unsupported protocol version' },
    '401': { description: 'No valid credential', content: json('Error') },
    '403': { description: 'The Origin or Host is not allowed (MCP_CORS_ORIGINS, MCP_ALLOWED_HOSTS)' },
    '404': { description: 'Unknown session (2025-era clients), or unknown toolset' },
  };
  const op = (method: string, text: string) => ({
    operationId: `mcp${method}${parameters.length ? 'Toolset' : ''}`,
    summary: `${summary}: ${text}`,
    security: AGENT,
    parameters: [...parameters, header('Mcp-Session-Id', '2025-era session'), header('Mcp-Protocol-Version', 'The protocol version')],
    responses: answers,
  });
  return {
    post: {
      ...op('Post', 'a JSON-RPC message'),
      requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
    },
    get: op('Get', 'the server-to-client stream of a 2025-era session'),
    delete: op('Delete', 'ends a 2025-era session'),
  };
}

function resourceMetadata(operationId: string, summary: string) {
  return { get: { operationId, summary, responses: { '200': { description: 'Metadata', content: json('ProtectedResourceMetadata') } } } };
}

function htmlPage(id: string, summary: string) {
  return {
    get: {
      operationId: id,
      summary,
      ...(id === 'dashboard' ? { security: [{ adminBasic: [] }] } : {}),
      responses: {
        '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } },
        ...(id === 'dashboard' ? errors(['UNAUTHORIZED', 'FORBIDDEN']) : {}),
      },
    },
  };
}

/** The document, for this gateway's public URL. */
export function openApiDocument(config: Pick<GatewayConfig, 'gatewayUrl'>, version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'MCP Gateway',
      version,
      description:
        'One JSON request (service, operation, parameters) in; the gateway validates it, queues it, holds the backend to its limits, retries what is safe, signs the call and answers one result or one error. Errors carry a code of one catalog (`ErrorBody.code`).',
    },
    servers: [{ url: config.gatewayUrl }],
    paths: paths(),
    components: {
      schemas: componentSchemas(),
      securitySchemes: {
        agentKey: {
          type: 'apiKey',
          in: 'header',
          name: 'X-API-Key',
          description: 'An inbound key (MCP_GATEWAY_API_KEYS); also as `Authorization: Bearer`',
        },
        agentJwt: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'An agent JWT: `sub` is the agent, scopes what it may use',
        },
        adminToken: { type: 'apiKey', in: 'header', name: 'X-Admin-Token', description: 'MCP_ADMIN_TOKEN' },
        adminBearer: { type: 'http', scheme: 'bearer', description: 'MCP_ADMIN_TOKEN as a Bearer token' },
        adminBasic: { type: 'http', scheme: 'basic', description: 'Any user name, MCP_ADMIN_TOKEN as the password' },
      },
    },
  };
}
