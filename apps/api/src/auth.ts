import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { GatewayError } from '@mcp-gateway/protocol';
import type { GatewayConfig } from '@mcp-gateway/config';
import { sendError } from './http-errors';

export interface Agent {
  id: string;
  /** Services this agent may use; undefined = all. */
  services?: ReadonlySet<string>;
}

declare module 'express-serve-static-core' {
  interface Request {
    /** Set when inbound keys are configured and the caller presented a valid one. */
    agent?: Agent;
  }
}

interface StoredKey {
  digest: Buffer;
  agent: Agent;
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Inbound API keys (`MCP_GATEWAY_API_KEYS`): `Authorization: Bearer <key>` or `X-API-Key`. Keys are
 * kept only as SHA-256 digests and compared in constant time against every configured key.
 * Returns undefined when no keys are configured (anonymous access, refused in production by config).
 */
export function apiKeyAuth(config: GatewayConfig) {
  const keys: StoredKey[] = config.security.apiKeys.map((k) => ({
    digest: sha256(k.key),
    agent: { id: k.agentId, ...(k.services ? { services: new Set(k.services) } : {}) },
  }));
  if (keys.length === 0) return undefined;

  return function authenticate(req: Request, res: Response, next: NextFunction): void {
    if (req.path === '/mcp/health') return next();
    const header = req.get('authorization');
    const presented = header?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim() ?? req.get('x-api-key');
    if (!presented) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="mcp-gateway"');
      return sendError(res, new GatewayError('UNAUTHORIZED', 'An API key is required: Authorization: Bearer <key> or X-API-Key'));
    }
    const digest = sha256(presented);
    let found: Agent | undefined;
    for (const k of keys) if (timingSafeEqual(k.digest, digest)) found = k.agent;
    if (!found) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="mcp-gateway", error="invalid_token"');
      return sendError(res, new GatewayError('UNAUTHORIZED', 'The API key is not valid'));
    }
    req.agent = found;
    next();
  };
}

/** FORBIDDEN unless the caller's key may use the service. */
export function assertMayUse(req: Request, service: string): void {
  const allowed = req.agent?.services;
  if (allowed && !allowed.has(service)) {
    throw new GatewayError('FORBIDDEN', `This API key may not use service ${service}`);
  }
}

export function mayUse(req: Request, service: string): boolean {
  return !req.agent?.services || req.agent.services.has(service);
}
