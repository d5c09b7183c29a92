export { createLogger, lazyChild, REDACT_PATHS, type LazyLogger, type Logger, type LoggerSettings } from './logger';
export { childTraceparent, newCorrelationId, parseTraceparent, traceIdOf } from './trace';
export { Tracing, type GatewaySpan, type SpanKindName, type SpanOptions } from './tracing';
