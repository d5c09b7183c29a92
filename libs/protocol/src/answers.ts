import { z } from 'zod';
import { ERROR_CODES, type ErrorBody } from './errors';
import { REQUEST_STATES, type MCPResponse, type RequestStatus } from './response';

/**
 * The answers of the REST API as zod schemas: what the gateway's own API description
 * (`/openapi.json`) says each answer is, and what its test checks the live answers against. Each
 * matches the TypeScript type beside it (checked below, at compile time).
 */
export const ErrorBodySchema = z
  .object({
    code: z.enum(ERROR_CODES as [string, ...string[]]).describe('A code of the one error catalog'),
    message: z.string(),
    retryable: z.boolean().describe('Whether sending the same request again may succeed'),
    retryAfterMs: z.number().optional().describe('When to try again (also the Retry-After header, in seconds)'),
    details: z.unknown().optional().describe("The error's particulars: the invalid fields, the quota, the backend's answer…"),
  })
  .describe('An error: its code, a message, and whether and when to try again');

export const ResultMetadataSchema = z
  .object({
    correlationId: z.string(),
    service: z.string(),
    operation: z.string(),
    attempts: z.number().int().describe('Backend calls made (0 when none was)'),
    queuedMs: z.number().describe('From acceptance to the first time a worker took it'),
    processingTime: z.number().describe("The worker's time on it, retries and their waits included (ms)"),
    backendStatus: z.number().int().optional(),
    completedAt: z.string().describe('ISO 8601'),
    replayOf: z.string().optional().describe("A dead letter's replay: the id of the request it sent again"),
  })
  .describe('How the request went: its service and operation, attempts and times');

export const MCPResponseSchema = z
  .object({
    id: z.string(),
    status: z.enum(['success', 'error']),
    data: z.unknown().optional().describe("The backend's answer (success)"),
    error: ErrorBodySchema.optional(),
    metadata: ResultMetadataSchema,
  })
  .describe("A request's result: its backend's answer, or the error it ended with");

export const RequestStatusSchema = z
  .object({
    id: z.string(),
    state: z.enum(REQUEST_STATES),
    status: z.enum(['success', 'error']).optional(),
    data: z.unknown().optional(),
    error: ErrorBodySchema.optional(),
    metadata: ResultMetadataSchema.optional(),
  })
  .describe("Where a request is; once it has ended, its result's fields too");

export const AcceptedSchema = z
  .object({ id: z.string(), state: z.enum(REQUEST_STATES) })
  .describe('Accepted and not ended yet: poll the Location');

export const ErrorEnvelopeSchema = z
  .object({
    id: z.string().optional().describe('The request id, when the error is about one request'),
    status: z.literal('error'),
    error: ErrorBodySchema,
    metadata: z.object({ correlationId: z.string() }),
  })
  .describe('An error that is not a request result: bad input, no credential, an unknown id, Redis away…');

// Compile-time: each schema's output is assignable to the type the code uses, and the other way.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const checks: [
  Same<Omit<z.infer<typeof ErrorBodySchema>, 'code'>, Omit<ErrorBody, 'code'>>,
  Same<z.infer<typeof MCPResponseSchema>['metadata'], MCPResponse['metadata']>,
  Same<z.infer<typeof RequestStatusSchema>['state'], RequestStatus['state']>,
] = [true, true, true];
void checks;
