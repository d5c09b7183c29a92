import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { childTraceparent, parseTraceparent } from './trace';

export type SpanKindName = 'server' | 'client' | 'consumer' | 'producer' | 'internal';

const KINDS: Record<SpanKindName, SpanKind> = {
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  consumer: SpanKind.CONSUMER,
  producer: SpanKind.PRODUCER,
  internal: SpanKind.INTERNAL,
};

export interface SpanOptions {
  kind?: SpanKindName;
  /** The W3C traceparent this span continues (a caller's, or the job's). */
  parent?: string;
  /** Epoch ms, for spans recorded after the fact (time a job waited in its queue). */
  startTime?: number;
  attributes?: Record<string, string | number | boolean | undefined>;
}

export interface GatewaySpan {
  /** The traceparent to hand on: this span's context, or (tracing off) a new span id under the parent. */
  readonly traceparent: string;
  setAttributes(attributes: Record<string, string | number | boolean | undefined>): void;
  end(outcome?: { error?: string; endTime?: number }): void;
}

function contextOf(traceparent: string | undefined): Context {
  const tp = parseTraceparent(traceparent);
  if (!tp) return ROOT_CONTEXT;
  const [, traceId, spanId, flags] = tp.split('-') as [string, string, string, string];
  return trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: parseInt(flags, 16), isRemote: true });
}

function clean(attributes: Record<string, string | number | boolean | undefined> = {}): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined) out[k] = v;
  return out;
}

class OtelSpan implements GatewaySpan {
  readonly traceparent: string;
  constructor(private readonly span: Span) {
    const sc = span.spanContext();
    this.traceparent = `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags.toString(16).padStart(2, '0')}`;
  }
  setAttributes(attributes: Record<string, string | number | boolean | undefined>): void {
    this.span.setAttributes(clean(attributes));
  }
  end(outcome: { error?: string; endTime?: number } = {}): void {
    if (outcome.error) this.span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error });
    this.span.end(outcome.endTime);
  }
}

/** Tracing off: nothing is allocated beyond this object, and traceparents still flow. */
class NoSpan implements GatewaySpan {
  private tp?: string;
  constructor(private readonly parent: string | undefined) {}
  get traceparent(): string {
    return (this.tp ??= childTraceparent(this.parent));
  }
  setAttributes(): void {}
  end(): void {}
}

/**
 * OpenTelemetry spans for api → queue → worker → backend when OTEL_EXPORTER_OTLP_ENDPOINT is set;
 * otherwise a no-op whose only work is the traceparent string the gateway sends anyway.
 */
export class Tracing {
  private constructor(
    readonly enabled: boolean,
    private readonly tracer: Tracer | undefined,
    private readonly flush: () => Promise<void>,
  ) {}

  static readonly off = new Tracing(false, undefined, async () => undefined);

  /** Starts exporting spans (OTLP over HTTP/JSON) when the environment asks for it; one provider per process. */
  static fromEnv(serviceName: string, env: NodeJS.ProcessEnv = process.env): Tracing {
    if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return Tracing.off;
    if (current) return current;
    // Loaded only when tracing is on, so a gateway without it never pays for the SDK.
    const { NodeTracerProvider, BatchSpanProcessor } =
      require('@opentelemetry/sdk-trace-node') as typeof import('@opentelemetry/sdk-trace-node');
    const { OTLPTraceExporter } =
      require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
    const { resourceFromAttributes } = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
    const provider = new NodeTracerProvider({
      resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME ?? serviceName }),
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
    });
    current = new Tracing(true, provider.getTracer('mcp-gateway'), () => provider.forceFlush());
    return current;
  }

  startSpan(name: string, options: SpanOptions = {}): GatewaySpan {
    if (!this.tracer) return new NoSpan(options.parent);
    const span = this.tracer.startSpan(
      name,
      {
        kind: KINDS[options.kind ?? 'internal'],
        attributes: clean(options.attributes),
        ...(options.startTime ? { startTime: options.startTime } : {}),
      },
      contextOf(options.parent),
    );
    return new OtelSpan(span);
  }

  /** Sends what is buffered (before exit, or in tests). */
  forceFlush(): Promise<void> {
    return this.flush();
  }
}

let current: Tracing | undefined;
