export { createLogger, REDACT_PATHS, type Logger, type LoggerSettings } from './logger';
export { childTraceparent, newCorrelationId, parseTraceparent, traceIdOf } from './trace';
