import { z } from 'zod';

/** Service names double as queue names and env-var infixes: keep them simple. */
export const SERVICE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
/**
 * An operation's name as its definition gives it (an OpenAPI operationId such as `repos/get` or
 * `Get User`): any printable characters, no control characters.
 */
export const OPERATION_NAME_PATTERN = /^[^\x00-\x1f\x7f]{1,256}$/;
/** A dynamic service's operation becomes a URL segment (`POST {endpoint}/{operation}`): no `/`, no dot-only names. */
export const DYNAMIC_OPERATION_PATTERN = /^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,128}$/;
/**
 * Request ids become BullMQ job ids: no `:` and never all digits (BullMQ treats numeric ids as its own).
 */
export const REQUEST_ID_PATTERN = /^(?!\d+$)[A-Za-z0-9_.-]{1,128}$/;
/** Printable ASCII only: these values are echoed in headers, so no CR/LF can get through. */
const HEADER_SAFE = /^[\x21-\x7e]{1,128}$/;

/** The longest deadline a request may have (ms). */
export const MAX_TIMEOUT_MS = 3_600_000;

/**
 * The longest agent id: from the config, a request's `metadata.agentId` (inbound auth off) or a JWT's
 * `sub` (a longer one is refused). Ids are parts of Redis keys and metric labels.
 */
export const AGENT_ID_MAX_LENGTH = 128;

export const PRIORITIES = ['low', 'normal', 'high', 'critical'] as const;
export type Priority = (typeof PRIORITIES)[number];

export const RequestMetadataSchema = z
  .object({
    correlationId: z.string().regex(HEADER_SAFE, 'must be 1-128 printable ASCII characters without spaces').optional(),
    timeout: z.number().int().positive().max(MAX_TIMEOUT_MS).optional().describe('Deadline in ms from acceptance'),
    priority: z.enum(PRIORITIES).optional(),
    agentId: z.string().min(1).max(AGENT_ID_MAX_LENGTH).optional(),
  })
  .strict();

export const MCPRequestSchema = z
  .object({
    id: z.string().regex(REQUEST_ID_PATTERN, 'must be 1-128 characters of A-Z a-z 0-9 _ . - and not only digits').optional(),
    timestamp: z.union([z.string().max(64), z.number()]).optional(),
    service: z.string().regex(SERVICE_NAME_PATTERN, 'must be a service name (letters, digits, _ and -)'),
    operation: z.string().regex(OPERATION_NAME_PATTERN, 'must be an operation name (1-256 characters, no control characters)'),
    parameters: z.record(z.string(), z.unknown()).optional(),
    metadata: RequestMetadataSchema.optional(),
  })
  .strict();

export type RequestMetadata = z.infer<typeof RequestMetadataSchema>;
export type MCPRequest = z.infer<typeof MCPRequestSchema>;

/** zod issues as `path: message` strings, for VALIDATION_ERROR details. */
export function describeIssues(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.') || '(body)', message: i.message }));
}
