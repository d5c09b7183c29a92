import { EventEmitter } from 'node:events';
import { subscribe, unsubscribe, type RedisClient } from '@mcp-gateway/redis';
import { GatewayError, type OperationDefinition, type ServiceDefinition } from '@mcp-gateway/protocol';
import {
  ConfigError,
  effectiveServiceRetryPolicy,
  serviceEnvName,
  type GatewayConfig,
  type RetryPolicy,
  type ServiceConfig,
} from '@mcp-gateway/config';
import { findOperation, loadServiceDefinition } from '@mcp-gateway/backends';
import type { RegistrationStore, RegistryMessage } from './registrations';

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

export interface RegistryChange {
  name: string;
  kind: 'added' | 'updated' | 'removed';
}

/**
 * The services this process knows: the static config, plus run-time registrations from Redis when
 * attached (kept current through the changes channel and a sweep, so every process sees a change
 * within a second). Definitions load once per service and are cached; a refresh that fails keeps
 * the previous definition. Emits 'change' (RegistryChange) when the set of services changes, and
 * 'definition' (the service's name) when a refresh loaded a service's definition again.
 */
export class ServiceRegistry extends EventEmitter {
  private readonly slots = new Map<string, DefinitionSlot>();
  private readonly retryFailedAfterMs: number;
  private dynamic = new Map<string, ServiceConfig>();
  private store?: RegistrationStore;
  private subscriber?: RedisClient;
  private sweepTimer?: NodeJS.Timeout;
  private reloading?: Promise<void>;
  private reloadAgain = false;
  private readonly onMessage = (channel: string, message: string) => {
    if (!this.store || channel !== this.store.channel) return;
    let msg: RegistryMessage;
    try {
      msg = JSON.parse(message) as RegistryMessage;
    } catch {
      return;
    }
    if (msg.kind === 'refresh') {
      this.refresh(msg.name).catch(() => undefined);
      return;
    }
    void this.reload();
  };

  constructor(
    private readonly config: GatewayConfig,
    private readonly options: RegistryOptions = {},
  ) {
    super();
    this.retryFailedAfterMs = options.retryFailedAfterMs ?? 10_000;
  }

  /** Follows the run-time registrations: loads them now, then on every announcement and every `sweepMs`. */
  async attach(store: RegistrationStore, subscriber: RedisClient, sweepMs = 500): Promise<void> {
    this.store = store;
    this.subscriber = subscriber;
    await subscribe(subscriber, [store.channel], this.onMessage);
    await this.reload();
    this.sweepTimer = setInterval(() => void this.reload(), sweepMs);
    this.sweepTimer.unref();
  }

  async detach(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.subscriber) await unsubscribe(this.subscriber, [this.store!.channel], this.onMessage).catch(() => undefined);
    this.store = undefined;
    this.subscriber = undefined;
  }

  /** Reads the registrations and applies the difference (one reload at a time; a request during one runs after it). */
  reload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        await this.applyRegistrations().catch(() => undefined);
      } while (this.reloadAgain);
    })().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async applyRegistrations(): Promise<void> {
    if (!this.store) return;
    const regs = await this.store.list();
    const next = new Map<string, ServiceConfig>();
    for (const r of regs) if (!this.isStatic(r.name)) next.set(r.name, r.config);
    const changes: RegistryChange[] = [];
    for (const [name, cfg] of next) {
      const before = this.dynamic.get(name);
      if (!before) changes.push({ name, kind: 'added' });
      else if (JSON.stringify(before) !== JSON.stringify(cfg)) changes.push({ name, kind: 'updated' });
    }
    for (const name of this.dynamic.keys()) if (!next.has(name)) changes.push({ name, kind: 'removed' });
    this.dynamic = next;
    for (const c of changes) {
      if (c.kind !== 'added') this.slots.delete(c.name);
      // Load the definition now, so a later refresh that fails still has one to keep.
      if (c.kind !== 'removed') void this.definition(c.name).catch(() => undefined);
      this.emit('change', c);
    }
  }

  isStatic(name: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.config.services, name);
  }

  names(): string[] {
    return [...Object.keys(this.config.services), ...[...this.dynamic.keys()].sort()];
  }

  get(name: string): ServiceConfig | undefined {
    return this.isStatic(name) ? this.config.services[name] : this.dynamic.get(name);
  }

  require(name: string): ServiceConfig {
    const svc = this.get(name);
    if (!svc) throw new GatewayError('UNKNOWN_SERVICE', `Unknown service: ${name}`, { details: { known: this.names() } });
    return svc;
  }

  /** The retry policy in force for a service: its own keys over the gateway's. */
  retryPolicy(name: string): RetryPolicy {
    return effectiveServiceRetryPolicy(this.config.retryPolicy, this.get(name));
  }

  /**
   * Loads every definition now, so the first request does not pay for it. A failure is reported and
   * tried again later (an OpenAPI URL's backend may be starting too), except a definition file of the
   * configuration that cannot be read or is invalid: a bad value, it stops the process (ConfigError).
   */
  async init(): Promise<void> {
    await Promise.all(this.names().map((n) => this.definition(n).catch(() => undefined)));
    const issues = Object.entries(this.config.services)
      .filter(([name, svc]) => svc.definitionFile !== undefined && this.slots.get(name)?.error)
      .map(([name]) => ({
        source: `services.${name}.definitionFile (MCP_SERVICE_${serviceEnvName(name)}_DEFINITION)`,
        message: this.slots.get(name)!.error!.message,
      }));
    if (issues.length > 0) throw new ConfigError(issues);
  }

  async definition(name: string): Promise<ServiceDefinition> {
    const svc = this.require(name);
    let slot = this.slots.get(name);
    if (!slot) this.slots.set(name, (slot = {}));
    if (slot.definition) return slot.definition;
    if (slot.error && slot.failedAt !== undefined && Date.now() - slot.failedAt < this.retryFailedAfterMs)
      throw this.definitionError(name, slot.error);
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

  /**
   * Loads the definition again (e.g. the backend's OpenAPI document changed). On failure the
   * previous definition stays in use and the error is thrown.
   */
  async refresh(name: string): Promise<ServiceDefinition> {
    const svc = this.require(name);
    let def: ServiceDefinition;
    try {
      def = await loadServiceDefinition(name, svc);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.options.onDefinitionError?.(name, e);
      throw this.definitionError(name, e);
    }
    this.slots.set(name, { definition: def });
    this.emit('definition', name);
    return def;
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

  /**
   * The operation and its metric label, when the service's definition is in memory and has it: what
   * `operation` and `operationLabel` would give, without a promise (a worker asks on every job).
   * Undefined otherwise: `operation` then loads the definition or says what is wrong.
   */
  operationNow(service: string, operation: string): { op: OperationDefinition; label: string } | undefined {
    const def = this.slots.get(service)?.definition;
    const op = def && findOperation(def, operation);
    return op ? { op, label: labelOf(def, op) } : undefined;
  }

  /**
   * The operation as a metric label, kept bounded: its name, `_dynamic` for any operation of a service
   * without a definition (callers choose those names), `_unknown` when it cannot be resolved.
   */
  async operationLabel(service: string, operation: string): Promise<string> {
    try {
      const def = await this.definition(service);
      // Even a name no operation can be made of: the label says which kind of service it was.
      if (def.source === 'dynamic') return DYNAMIC_LABEL;
      return labelOf(def, await this.operation(service, operation));
    } catch {
      return '_unknown';
    }
  }

  private definitionError(name: string, err: Error): GatewayError {
    // A file's path and contents are the gateway's business: the caller is told where to look, the log says what failed.
    if (this.get(name)?.definitionFile !== undefined) {
      return new GatewayError('INTERNAL_ERROR', `The definition file of service ${name} could not be loaded; the gateway's log says why`);
    }
    return new GatewayError('BACKEND_ERROR', `The definition of service ${name} could not be loaded: ${err.message}`, { retryable: true });
  }
}

/** Any operation of a service without a definition: callers choose those names, so they share one label. */
const DYNAMIC_LABEL = '_dynamic';

/** An operation's metric label: its name, or DYNAMIC_LABEL on a service without a definition. */
function labelOf(def: ServiceDefinition, op: OperationDefinition): string {
  return def.source === 'dynamic' ? DYNAMIC_LABEL : op.name;
}
