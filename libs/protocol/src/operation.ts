import { z } from 'zod';
import { OPERATION_NAME_PATTERN } from './request';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

const IDEMPOTENT_BY_DEFAULT: readonly HttpMethod[] = ['GET', 'HEAD', 'PUT', 'DELETE'];

/** A JSON Schema object, kept as plain data (validated by ajv where it is used). */
export const JsonSchemaSchema = z.record(z.string(), z.unknown());
export type JsonSchema = z.infer<typeof JsonSchemaSchema>;

export const OperationDefinitionSchema = z
  .object({
    name: z.string().regex(OPERATION_NAME_PATTERN, 'must be an operation name (letters, digits, _ . -)'),
    description: z.string().max(4096).default(''),
    method: z
      .string()
      .transform((m) => m.toUpperCase())
      .pipe(z.enum(HTTP_METHODS))
      .default('POST'),
    path: z
      .string()
      .startsWith('/', 'must start with /')
      .refine((p) => !/(^|\/)\.\.?(\/|$)/.test(p) && !p.includes('//') && !/[?#\s]/.test(p), {
        message: 'must be a plain path: no . or .. segments, //, ?, # or spaces',
      }),
    parameters: JsonSchemaSchema.default({ type: 'object' }),
    /**
     * Parameters that go in the query string whatever the method (an OpenAPI `in: query` parameter of
     * a POST, say); the others of a POST/PUT/PATCH go in the JSON body.
     */
    query: z.array(z.string().min(1).max(256)).max(256).optional().describe('Parameters sent in the query string even for POST/PUT/PATCH'),
    idempotent: z.boolean().optional(),
  })
  .strict();

export type OperationDefinitionInput = z.input<typeof OperationDefinitionSchema>;
export type OperationDefinition = z.output<typeof OperationDefinitionSchema>;

export function isIdempotent(op: Pick<OperationDefinition, 'method' | 'idempotent'>): boolean {
  return op.idempotent ?? IDEMPOTENT_BY_DEFAULT.includes(op.method);
}

/** A service's operations and where they came from. */
export interface ServiceDefinition {
  service: string;
  source: 'config' | 'file' | 'openapi' | 'dynamic';
  operations: OperationDefinition[];
}
