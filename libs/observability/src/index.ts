export { createLogger, REDACT_PATHS, type Logger, type LoggerSettings } from './logger';
export { childTraceparent, newCorrelationId, parseTraceparent, traceIdOf } from './trace';
export { Tracing, type GatewaySpan, type SpanKindName, type SpanOptions } from './tracing';
