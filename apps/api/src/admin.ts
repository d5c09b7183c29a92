import { timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import { describeIssues, GatewayError, SERVICE_NAME_PATTERN, type ServiceDefinition } from '@mcp-gateway/protocol';
import { ServiceConfigSchema, type GatewayConfig } from '@mcp-gateway/config';
import { loadServiceDefinition } from '@mcp-gateway/backends';
import { sha256 } from './auth';
import type { ApiDeps } from './deps';
import { sendError } from './http-errors';
import { publicEndpoint } from './services';

/**
 * Whether a request presents `MCP_ADMIN_TOKEN` (`Authorization: Bearer` or `X-Admin-Token`; with
 * `basic`, HTTP Basic with the token as the password), compared in constant time. Never, when no
 * token is configured.
 */
export function adminTokenCheck(config: GatewayConfig, options: { basic?: boolean } = {}) {
  const token = config.security.adminToken;
  const digest = token ? sha256(token) : undefined;
  return function presentsAdminToken(req: Request): boolean {
    if (!digest) return false;
    const header = req.get('authorization');
    let presented = req.get('x-admin-token') ?? header?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
    // A browser signs in with HTTP Basic: any user name, the admin token as the password.
    const basic = options.basic ? header?.match(/^Basic\s+(.+)$/i)?.[1] : undefined;
    if (!presented && basic) presented = Buffer.from(basic, 'base64').toString('utf8').split(':').slice(1).join(':');
    return presented ? timingSafeEqual(sha256(presented), digest) : false;
  };
}

/**
 * The admin endpoints (registration, agents' usage) answer only to `MCP_ADMIN_TOKEN` (see
 * adminTokenCheck). Without a configured token they are off.
 */
export function adminAuth(config: GatewayConfig, options: { basic?: boolean } = {}) {
  const presentsAdminToken = adminTokenCheck(config, options);
  const off = !config.security.adminToken;
  return function requireAdmin(req: Request, res: Response, next: NextFunction): void {
    if (off) return sendError(res, new GatewayError('FORBIDDEN', 'The admin endpoints are off: set MCP_ADMIN_TOKEN to enable them'));
    if (!presentsAdminToken(req)) {
      res.setHeader(
        'WWW-Authenticate',
        options.basic ? 'Basic realm="mcp-gateway-admin", charset="UTF-8"' : 'Bearer realm="mcp-gateway-admin"',
      );
      return sendError(res, new GatewayError('UNAUTHORIZED', 'The admin token is missing or wrong'));
    }
    next();
  };
}

const RegistrationBody = z
  .object({
    name: z.string().regex(SERVICE_NAME_PATTERN, 'service names are letters, digits, _ and -'),
    ttlSeconds: z.number().int().min(1).max(86_400).optional().describe('Expires unless PUT /mcp/services/:name/heartbeat renews it'),
  })
  .passthrough();

/** What a registration answers of an imported document; the definition endpoint has the notes in full. */
function documentSummary(doc: NonNullable<ServiceDefinition['document']>) {
  return {
    format: doc.format,
    ...(doc.title ? { title: doc.title } : {}),
    operationsInDocument: doc.operationsInDocument,
    filteredOut: doc.filteredOut,
    leftOut: doc.notes.filter((n) => n.change === 'left-out').length,
    warnings: doc.warnings ?? [],
  };
}

export function adminHandlers(deps: ApiDeps) {
  const { registry, registrations } = deps;

  /** POST /mcp/services — register (or replace) a service with the config schema; its definition must load. */
  async function register(req: Request, res: Response): Promise<void> {
    const head = RegistrationBody.safeParse(req.body);
    if (!head.success) {
      const details = describeIssues(head.error);
      throw new GatewayError('VALIDATION_ERROR', `Invalid registration: ${details[0]!.path}: ${details[0]!.message}`, { details });
    }
    const { name, ttlSeconds, ...rest } = head.data;
    if (registry.isStatic(name))
      throw new GatewayError('CONFLICT', `Service ${name} is defined in the configuration; it cannot be replaced at run time`);
    const parsed = ServiceConfigSchema.safeParse(rest);
    if (!parsed.success) {
      const details = describeIssues(parsed.error);
      throw new GatewayError('VALIDATION_ERROR', `Invalid service config: ${details[0]!.path}: ${details[0]!.message}`, { details });
    }
    // The definition (file or OpenAPI document) must load now; a broken one changes nothing.
    // Checked against its spec here, where the one who registers reads the warnings.
    const def = await loadServiceDefinition(name, parsed.data, { check: true }).catch((err: unknown) => {
      throw new GatewayError(
        'BACKEND_ERROR',
        `The definition of ${name} could not be loaded, nothing was changed: ${(err as Error).message}`,
      );
    });
    const existed = (await registrations.get(name)) !== undefined;
    const reg = await registrations.put(name, parsed.data, ttlSeconds);
    await registry.reload();
    res.status(existed ? 200 : 201).json({
      name,
      endpoint: publicEndpoint(parsed.data.endpoint),
      ...(reg.ttlSeconds ? { ttlSeconds: reg.ttlSeconds } : {}),
      registeredAt: reg.registeredAt,
      definitionSource: def.source,
      operations: def.operations.length,
      ...(def.document ? { document: documentSummary(def.document) } : {}),
    });
  }

  /** DELETE /mcp/services/:name */
  async function deregister(req: Request, res: Response): Promise<void> {
    const name = String(req.params.name);
    if (registry.isStatic(name))
      throw new GatewayError('CONFLICT', `Service ${name} is defined in the configuration; it cannot be removed at run time`);
    if (!(await registrations.delete(name))) throw new GatewayError('UNKNOWN_SERVICE', `No registered service ${name}`);
    await registry.reload();
    res.status(200).json({ name, removed: true });
  }

  /** PUT /mcp/services/:name/heartbeat — keeps a TTL registration alive. */
  async function heartbeat(req: Request, res: Response): Promise<void> {
    const name = String(req.params.name);
    const r = await registrations.heartbeat(name);
    if (r === 'missing') throw new GatewayError('UNKNOWN_SERVICE', `No registered service ${name} (unknown, or its registration expired)`);
    if (r === 'no_ttl') throw new GatewayError('CONFLICT', `Service ${name} was registered without ttlSeconds: it needs no heartbeat`);
    res.status(200).json({ name, renewed: true });
  }

  /** POST /mcp/services/:name/refresh — loads the definition again here and in every other process. */
  async function refresh(req: Request, res: Response): Promise<void> {
    const name = String(req.params.name);
    registry.require(name);
    const def = await registry.refresh(name);
    await registrations.announce({ name, kind: 'refresh' });
    res.status(200).json({ name, definitionSource: def.source, operations: def.operations.length });
  }

  return { register, deregister, heartbeat, refresh };
}
