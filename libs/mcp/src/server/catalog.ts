import { agentMayUse, agentScopeKey, callableDefinition, type Agent } from '@mcp-gateway/protocol';
import type { ServiceRegistry } from '@mcp-gateway/registry';
import { toolsFor, type GatewayTool, type ToolTarget } from '../tools';

/** How long a computed tool list is reused when no registration changed. */
const TOOLS_TTL_MS = 5_000;
/** At most this many tool lists are kept (one per scope). */
const MAX_LISTS = 1000;

export interface Tools {
  tools: GatewayTool[];
  targets: Map<string, ToolTarget>;
}

/**
 * The tools an agent sees: the operations it may call, of the services it may use. One list per scope,
 * reused by every tools/list and tools/call of callers with the same scope; dropped when a
 * registration or a definition changes, and after TOOLS_TTL_MS (a definition that failed to load
 * comes back on its own).
 */
export class ToolCatalog {
  private readonly cache = new Map<string, { at: number; tools: Promise<Tools> }>();

  constructor(private readonly registry: ServiceRegistry) {}

  list(agent: Agent | undefined): Promise<Tools> {
    const key = agentScopeKey(agent);
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < TOOLS_TTL_MS) return hit.tools;
    const tools = this.build(agent);
    // Scopes come from tokens too, so their number is not bounded: neither is kept past MAX_LISTS.
    if (this.cache.size >= MAX_LISTS) this.cache.clear();
    this.cache.set(key, { at: Date.now(), tools });
    tools.catch(() => this.cache.delete(key));
    return tools;
  }

  /** Forgets every list (a registration or a definition changed). */
  clear(): void {
    this.cache.clear();
  }

  private async build(agent: Agent | undefined): Promise<Tools> {
    const defs = await Promise.all(
      this.registry
        .names()
        .filter((name) => agentMayUse(agent, name))
        .map(async (name) => {
          const definition = await this.registry.definition(name).catch(() => undefined);
          return definition
            ? { definition: callableDefinition(agent, definition), description: this.registry.get(name)?.description }
            : undefined;
        }),
    );
    return toolsFor(defs.filter((d): d is NonNullable<typeof d> => d !== undefined));
  }
}
