import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { AGENT_ID_MAX_LENGTH, GatewayError } from '@mcp-gateway/protocol';
import type { AgentUsageSnapshot, ServiceUsage } from '@mcp-gateway/metrics';
import { adminAuth, adminTokenCheck } from './admin';
import type { ApiDeps } from './deps';
import { sendError } from './http-errors';

/** GET /mcp/agents lists at most this many agents (the most recently active). */
export const AGENTS_LISTED_MAX = 1000;

/**
 * What GET /mcp/agents/:id/usage answers. The optional `quota` objects (the agent's, and per service)
 * are where per-agent quotas report their state; nothing fills them yet.
 */
export interface AgentUsageAnswer {
  agent: string;
  quota?: Record<string, unknown>;
  services: Record<string, ServiceUsage & { quota?: Record<string, unknown> }>;
}

function usageAnswer(agent: string, usage: AgentUsageSnapshot): AgentUsageAnswer {
  return { agent, services: usage.services };
}

/**
 * Agents' usage: `GET /mcp/agents/:id/usage` for the admin token or the agent itself,
 * `GET /mcp/agents` (every agent with usage) for the admin token only. `auth` is the inbound agent
 * auth (undefined when off): these routes sit before it, so the admin token is not taken for an
 * agent's key.
 */
export function agentHandlers(deps: ApiDeps, auth: RequestHandler | undefined) {
  const presentsAdminToken = adminTokenCheck(deps.config);
  const requireAdmin = adminAuth(deps.config);

  /** The admin token, else inbound auth and the agent whose usage it is; anyone else is FORBIDDEN. */
  function adminOrSelf(req: Request, res: Response, next: NextFunction): void {
    if (presentsAdminToken(req)) return next();
    // Inbound auth off: no caller can show it is the agent, so only the admin token opens it.
    if (!auth) return requireAdmin(req, res, next);
    void auth(req, res, () => {
      if (req.agent?.id === String(req.params.id)) return next();
      sendError(res, new GatewayError('FORBIDDEN', "An agent may read its own usage only (another's needs the admin token)"));
    });
  }

  /** GET /mcp/agents/:id/usage */
  async function usage(req: Request, res: Response): Promise<void> {
    const id = String(req.params.id);
    if (id.length > AGENT_ID_MAX_LENGTH)
      throw new GatewayError('VALIDATION_ERROR', `Agent ids are at most ${AGENT_ID_MAX_LENGTH} characters`);
    res.status(200).json(usageAnswer(id, await deps.usage.read(id)));
  }

  /** GET /mcp/agents — the most recently active agents first. */
  async function list(_req: Request, res: Response): Promise<void> {
    const { agents, truncated } = await deps.usage.list(AGENTS_LISTED_MAX);
    res.status(200).json({ agents: agents.map((a) => usageAnswer(a.agent, a)), truncated });
  }

  return { adminOrSelf, usage, list };
}
