/**
 * The one catalog of gateway error codes: HTTP status, whether a caller may retry, and the default
 * message. Every error the gateway returns (REST body, MCP tool result, stored result) uses a code
 * from here. JSON-RPC wire errors on `/mcp` are a separate concern and never use these codes.
 */
export const ERROR_CATALOG = {
  VALIDATION_ERROR: { status: 400, retryable: false, message: 'The request is not valid' },
  UNAUTHORIZED: { status: 401, retryable: false, message: 'Authentication is required' },
  FORBIDDEN: { status: 403, retryable: false, message: 'Not allowed' },
  NOT_FOUND: { status: 404, retryable: false, message: 'Not found' },
  UNKNOWN_SERVICE: { status: 404, retryable: false, message: 'Unknown service' },
  UNKNOWN_OPERATION: { status: 404, retryable: false, message: 'Unknown operation' },
  CONFLICT: { status: 409, retryable: false, message: 'Conflict' },
  CANCELLED: { status: 409, retryable: false, message: 'The request was cancelled' },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false, message: 'The request body is too large' },
  RATE_LIMITED: { status: 429, retryable: true, message: 'Rate limit exceeded' },
  INTERNAL_ERROR: { status: 500, retryable: false, message: 'Internal gateway error' },
  BACKEND_ERROR: { status: 502, retryable: false, message: 'The backend answered with an error' },
  CIRCUIT_OPEN: { status: 503, retryable: true, message: 'The backend is failing; its circuit is open' },
  OVERLOADED: { status: 503, retryable: true, message: 'The service queue is full' },
  UNAVAILABLE: { status: 503, retryable: true, message: 'The gateway cannot reach its queue (Redis)' },
  TIMEOUT: { status: 504, retryable: true, message: 'The request did not complete before its deadline' },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOG;
export const ERROR_CODES = Object.keys(ERROR_CATALOG) as ErrorCode[];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CATALOG, value);
}

/**
 * The codes whose answer always says when to try again (`Retry-After`, and `retryAfterMs` in the
 * body), with the wait assumed when whoever raised the error knows no better.
 */
const DEFAULT_RETRY_AFTER_MS: Partial<Record<ErrorCode, number>> = { RATE_LIMITED: 1000, CIRCUIT_OPEN: 1000 };

export function httpStatusFor(code: ErrorCode): number {
  return ERROR_CATALOG[code].status;
}

/** The error object as callers see it in a result body. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  retryable: boolean;
  /** When trying again makes sense (RATE_LIMITED, CIRCUIT_OPEN, …); also sent as `Retry-After`. */
  retryAfterMs?: number;
  details?: unknown;
}

export interface GatewayErrorOptions {
  details?: unknown;
  /** When the caller may try again (429 / 503); becomes `Retry-After`. */
  retryAfterMs?: number;
  /** Overrides the catalog's retryable flag (e.g. a 502 from a 503 backend answer). */
  retryable?: boolean;
  cause?: unknown;
}

export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly code: ErrorCode;
  readonly details?: unknown;
  readonly retryAfterMs?: number;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message?: string, options: GatewayErrorOptions = {}) {
    super(message ?? ERROR_CATALOG[code].message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.retryAfterMs = options.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS[code];
    this.retryable = options.retryable ?? ERROR_CATALOG[code].retryable;
  }

  get status(): number {
    return httpStatusFor(this.code);
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.retryAfterMs !== undefined) body.retryAfterMs = this.retryAfterMs;
    if (this.details !== undefined) body.details = this.details;
    return body;
  }
}

/** Structural guard: works across package copies where `instanceof` would not. */
export function isGatewayError(err: unknown): err is GatewayError {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as { name?: unknown }).name === 'GatewayError' &&
    isErrorCode((err as { code?: unknown }).code)
  );
}

/** Any thrown value as a GatewayError; unknown failures become INTERNAL_ERROR without leaking text. */
export function toGatewayError(err: unknown): GatewayError {
  if (isGatewayError(err)) return err;
  return new GatewayError('INTERNAL_ERROR', undefined, { cause: err });
}
