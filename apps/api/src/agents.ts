import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { AGENT_ID_MAX_LENGTH, GatewayError } from '@mcp-gateway/protocol';
import { agentPolicies } from '@mcp-gateway/config';
import type { AgentUsageSnapshot, ServiceUsage } from '@mcp-gateway/metrics';
import type { AgentQuotaState } from '@mcp-gateway/resilience';
import { adminAuth, adminTokenCheck } from './admin';
import type { ApiDeps } from './deps';
import { sendError } from './http-errors';

/** GET /mcp/agents lists at most this many agents (the most recently active). */
export const AGENTS_LISTED_MAX = 1000;

/**
 * What GET /mcp/agents/:id/usage answers: the agent's usage per service and, in `quota`, its quotas
 * as they stand (its own, and per service the requests it has held there and its quota for it).
 */
export interface AgentUsageAnswer {
  agent: string;
  quota?: AgentQuotaState & { weight: number };
  services: Record<string, Partial<ServiceUsage> & { quota?: AgentQuotaState }>;
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

  const policies = agentPolicies(deps.config);

  /** The usage with the agent's quotas as they stand: over every service it used or has a quota for. */
  async function withQuotas(id: string, usage: AgentUsageSnapshot): Promise<AgentUsageAnswer> {
    const answer = usageAnswer(id, usage);
    const services = [...new Set([...Object.keys(usage.services), ...policies(id, '').quotaServices])].sort();
    // The agent's own quota is the same for every service: any name gives it.
    const limits = (service?: string) => (service ? policies(id, service).service : policies(id, '').own);
    const state = await deps.agentQuotas.state(id, services, limits);
    answer.quota = { ...state.own, weight: policies(id, '').weight };
    for (const service of services) answer.services[service] = { ...answer.services[service], quota: state.services[service] };
    return answer;
  }

  /** GET /mcp/agents/:id/usage */
  async function usage(req: Request, res: Response): Promise<void> {
    const id = String(req.params.id);
    if (id.length > AGENT_ID_MAX_LENGTH)
      throw new GatewayError('VALIDATION_ERROR', `Agent ids are at most ${AGENT_ID_MAX_LENGTH} characters`);
    res.status(200).json(await withQuotas(id, await deps.usage.read(id)));
  }

  /** GET /mcp/agents — the most recently active agents first. */
  async function list(_req: Request, res: Response): Promise<void> {
    const { agents, truncated } = await deps.usage.list(AGENTS_LISTED_MAX);
    res.status(200).json({ agents: agents.map((a) => usageAnswer(a.agent, a)), truncated });
  }

  return { adminOrSelf, usage, list };
}
