import { GatewayError, type OperationDefinition, type ServiceDefinition } from '@mcp-gateway/protocol';
import type { GatewayConfig, ServiceConfig } from '@mcp-gateway/config';
import { findOperation, loadServiceDefinition } from '@mcp-gateway/backends';

interface DefinitionSlot {
  definition?: ServiceDefinition;
  error?: Error;
  failedAt?: number;
  loading?: Promise<ServiceDefinition>;
}

export interface RegistryOptions {
  /** A definition that failed to load (OpenAPI down) is tried again after this long. */
  retryFailedAfterMs?: number;
  onDefinitionError?: (service: string, error: Error) => void;
}

/**
 * The services this process knows and their operation definitions. Today: the static config;
 * run-time registrations join here later. Definitions load once and are cached.
 */
export class ServiceRegistry {
  private readonly slots = new Map<string, DefinitionSlot>();
  private readonly retryFailedAfterMs: number;

  constructor(
    private readonly config: GatewayConfig,
    private readonly options: RegistryOptions = {},
  ) {
    this.retryFailedAfterMs = options.retryFailedAfterMs ?? 10_000;
  }

  names(): string[] {
    return Object.keys(this.config.services);
  }

  get(name: string): ServiceConfig | undefined {
    return Object.prototype.hasOwnProperty.call(this.config.services, name) ? this.config.services[name] : undefined;
  }

  require(name: string): ServiceConfig {
    const svc = this.get(name);
    if (!svc) throw new GatewayError('UNKNOWN_SERVICE', `Unknown service: ${name}`, { details: { known: this.names() } });
    return svc;
  }

  /** Loads every definition now, so the first request does not pay for it; failures are reported, not thrown. */
  async init(): Promise<void> {
    await Promise.all(this.names().map((n) => this.definition(n).catch(() => undefined)));
  }

  async definition(name: string): Promise<ServiceDefinition> {
    const svc = this.require(name);
    let slot = this.slots.get(name);
    if (!slot) this.slots.set(name, (slot = {}));
    if (slot.definition) return slot.definition;
    if (slot.error && slot.failedAt !== undefined && Date.now() - slot.failedAt < this.retryFailedAfterMs) throw this.definitionError(name, slot.error);
    const current = slot;
    current.loading ??= loadServiceDefinition(name, svc)
      .then((def) => {
        current.definition = def;
        current.error = undefined;
        return def;
      })
      .catch((err: unknown) => {
        current.error = err instanceof Error ? err : new Error(String(err));
        current.failedAt = Date.now();
        this.options.onDefinitionError?.(name, current.error);
        throw this.definitionError(name, current.error);
      })
      .finally(() => {
        current.loading = undefined;
      });
    return current.loading;
  }

  /** The operation, or UNKNOWN_SERVICE / UNKNOWN_OPERATION. */
  async operation(service: string, operation: string): Promise<OperationDefinition> {
    const def = await this.definition(service);
    const op = findOperation(def, operation);
    if (!op) {
      throw new GatewayError('UNKNOWN_OPERATION', `Service ${service} has no operation ${operation}`, {
        details: { operations: def.operations.map((o) => o.name) },
      });
    }
    return op;
  }

  private definitionError(name: string, err: Error): GatewayError {
    return new GatewayError('BACKEND_ERROR', `The definition of service ${name} could not be loaded: ${err.message}`, { retryable: true });
  }
}
