export {
  createLogger,
  lazyChild,
  logScalars,
  REDACT_PATHS,
  sayWhileWaiting,
  type LazyLogger,
  type Logger,
  type LoggerSettings,
  type ScalarFields,
} from './logger';
export { childTraceparent, newCorrelationId, parseTraceparent, traceIdOf } from './trace';
export { Tracing, type GatewaySpan, type SpanKindName, type SpanOptions } from './tracing';
