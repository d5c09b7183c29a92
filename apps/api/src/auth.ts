import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { JWTPayload } from 'jose';
import { AGENT_ID_MAX_LENGTH, agentMayUse, agentScope, GatewayError, type Agent, type AgentScope } from '@mcp-gateway/protocol';
import type { GatewayConfig } from '@mcp-gateway/config';
import { sendError } from './http-errors';

declare module 'express-serve-static-core' {
  interface Request {
    /** Set when inbound auth is configured and the caller presented a valid credential. */
    agent?: Agent;
  }
}

interface StoredKey {
  digest: Buffer;
  agent: Agent;
}

/** Credentials are kept and compared only as SHA-256 digests (constant-time compare on equal lengths). */
export const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** Paths anyone may call: liveness, and the metrics scrape (no per-agent data in it). */
const OPEN_PATHS = new Set([
  '/mcp/health',
  '/metrics',
  '/.well-known/oauth-protected-resource',
  '/.well-known/oauth-protected-resource/mcp',
]);

/**
 * What a JWT may use, from its scopes: `service:<name>` a whole service (`service:*` every one),
 * `tool:<service>.<operation>` one operation (a glob, or `readOnly` for the read-only ones),
 * `toolset:<name>` the operations of a configured toolset.
 */
export function scopeFromToken(payload: JWTPayload, toolsets: Toolsets): AgentScope {
  const raw = payload.scope ?? payload.scp;
  const scopes = Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? raw.split(' ') : [];
  const grants: string[] = [];
  for (const scope of scopes) {
    // A whole service is never written with a dot: `service:users.x` grants nothing.
    if (scope.startsWith('service:') && !scope.includes('.')) grants.push(scope.slice('service:'.length));
    else if (scope.startsWith('tool:') && scope.includes('.')) grants.push(scope.slice('tool:'.length));
    else if (scope.startsWith('toolset:')) grants.push(`@${scope.slice('toolset:'.length)}`);
  }
  return agentScope(expandToolsets(grants, toolsets));
}

type Toolsets = GatewayConfig['toolsets'];

/** Grants with each `@<toolset>` replaced by the toolset's own (an unknown one grants nothing). */
export function expandToolsets(grants: readonly string[], toolsets: Toolsets): string[] {
  return grants.flatMap((g) => (g.startsWith('@') ? (Object.hasOwn(toolsets, g.slice(1)) ? toolsets[g.slice(1)]! : []) : [g]));
}

/**
 * Inbound auth for agents: API keys (`MCP_GATEWAY_API_KEYS`; kept only as SHA-256 digests and compared
 * in constant time against every key) and/or JWTs (`MCP_JWT_SECRET` or `MCP_JWT_JWKS_URL`, with issuer
 * and audience when set). Either arrives as `Authorization: Bearer` or `X-API-Key`.
 * Returns undefined when neither is configured (anonymous; refused in production by config).
 */
export function agentAuth(config: GatewayConfig) {
  const keys: StoredKey[] = config.security.apiKeys.map((k) => ({
    digest: sha256(k.key),
    agent: { id: k.agentId, via: 'api-key', ...(k.services ? agentScope(expandToolsets(k.services, config.toolsets)) : {}) },
  }));
  const verifyJwt = jwtVerifier(config.security.jwt);
  if (keys.length === 0 && !verifyJwt) return undefined;

  // MCP clients find how to authenticate from the protected-resource metadata (RFC 9728) named here.
  const metadataUrl = `${config.gatewayUrl.replace(/\/+$/, '')}/.well-known/oauth-protected-resource/mcp`;
  const challenge = (res: Response, error?: string) =>
    res.setHeader('WWW-Authenticate', `Bearer realm="mcp-gateway", resource_metadata="${metadataUrl}"${error ? `, error="${error}"` : ''}`);

  return function authenticate(req: Request, res: Response, next: NextFunction): void {
    if (OPEN_PATHS.has(req.path) || req.path.startsWith('/mcp/health/') || req.method === 'OPTIONS') return next();
    // The operators' console has its own guard (the admin token).
    if (req.path === '/' || req.path.startsWith('/dashboard') || req.path.startsWith('/admin/')) return next();
    const header = req.get('authorization');
    const presented = header?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim() ?? req.get('x-api-key');
    if (!presented) {
      challenge(res);
      return sendError(
        res,
        new GatewayError('UNAUTHORIZED', 'Credentials are required: Authorization: Bearer <key or token>, or X-API-Key'),
      );
    }
    const digest = sha256(presented);
    let found: Agent | undefined;
    for (const k of keys) if (timingSafeEqual(k.digest, digest)) found = k.agent;
    if (found) {
      req.agent = found;
      return next();
    }
    if (!verifyJwt || !JWT_SHAPE.test(presented)) {
      challenge(res, 'invalid_token');
      return sendError(res, new GatewayError('UNAUTHORIZED', 'The API key is not valid'));
    }
    verifyJwt(presented)
      .then((payload) => {
        if (!payload.sub) throw new GatewayError('UNAUTHORIZED', 'The token has no subject (sub): it names no agent');
        // The subject is the agent id: part of its usage keys, so bounded as configured ids are.
        if (payload.sub.length > AGENT_ID_MAX_LENGTH)
          throw new GatewayError('UNAUTHORIZED', `The token's subject (sub) is longer than ${AGENT_ID_MAX_LENGTH} characters`);
        req.agent = { id: payload.sub, via: 'jwt', ...scopeFromToken(payload, config.toolsets) };
        next();
      })
      .catch((err: unknown) => {
        challenge(res, 'invalid_token');
        sendError(res, err instanceof GatewayError ? err : new GatewayError('UNAUTHORIZED', 'The token was refused'));
      });
  };
}

/**
 * Verifies a JWT's signature, expiry, issuer and audience; undefined when JWTs are not accepted. jose is
 * loaded only then. A refused token rejects with UNAUTHORIZED naming the failed check (jose's message,
 * which never holds the token).
 */
function jwtVerifier(jwt: GatewayConfig['security']['jwt']): ((token: string) => Promise<JWTPayload>) | undefined {
  if (!jwt?.secret && !jwt?.jwksUrl) return undefined;
  const jose = require('jose') as typeof import('jose');
  const options = { ...(jwt.issuer ? { issuer: jwt.issuer } : {}), ...(jwt.audience ? { audience: jwt.audience } : {}) };
  const key = jwt.secret
    ? new TextEncoder().encode(jwt.secret)
    : jose.createRemoteJWKSet(new URL(jwt.jwksUrl!), { cooldownDuration: 30_000, timeoutDuration: 5_000 });
  return async (token) => {
    try {
      const { payload } =
        typeof key === 'function'
          ? await jose.jwtVerify(token, key, options)
          : await jose.jwtVerify(token, key, { ...options, algorithms: ['HS256', 'HS384', 'HS512'] });
      return payload;
    } catch (err) {
      throw new GatewayError(
        'UNAUTHORIZED',
        err instanceof jose.errors.JOSEError ? `The token was refused: ${err.message}` : 'The token was refused',
      );
    }
  };
}

/** Whether agents must present a credential (API keys or JWTs configured). */
export function authEnabled(config: GatewayConfig): boolean {
  return config.security.apiKeys.length > 0 || Boolean(config.security.jwt?.secret || config.security.jwt?.jwksUrl);
}

export function mayUse(req: Request, service: string): boolean {
  return agentMayUse(req.agent, service);
}

/** RFC 9728 protected-resource metadata for `/mcp` (served without auth). */
export function protectedResourceMetadata(config: GatewayConfig) {
  const base = config.gatewayUrl.replace(/\/+$/, '');
  return {
    resource: `${base}/mcp`,
    authorization_servers: config.security.jwt?.issuer ? [config.security.jwt.issuer] : [],
    bearer_methods_supported: ['header'],
    scopes_supported: ['service:*', ...Object.keys(config.services).map((s) => `service:${s}`)],
    resource_name: 'MCP Gateway',
  };
}
