import { z } from 'zod';
import { OPERATION_NAME_PATTERN } from './request';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

const IDEMPOTENT_BY_DEFAULT: readonly HttpMethod[] = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'];

/** A JSON Schema object, kept as plain data (validated by ajv where it is used). */
export const JsonSchemaSchema = z.record(z.string(), z.unknown());
export type JsonSchema = z.infer<typeof JsonSchemaSchema>;

export const PARAMETER_LOCATIONS = ['path', 'query', 'header', 'cookie'] as const;
export const PARAMETER_STYLES = ['form', 'simple', 'label', 'matrix', 'spaceDelimited', 'pipeDelimited', 'deepObject'] as const;

/** One argument sent as an HTTP parameter, serialized as its OpenAPI `style`/`explode` say. */
export const ParameterBindingSchema = z
  .object({
    arg: z.string().min(1).max(256).describe('The argument (a property of the parameters schema)'),
    in: z.enum(PARAMETER_LOCATIONS),
    name: z.string().min(1).max(256).describe('The name the backend knows it by'),
    style: z.enum(PARAMETER_STYLES).optional(),
    explode: z.boolean().optional(),
    allowReserved: z.boolean().optional(),
    /** The parameter is described by `content: application/json`: its value is sent as JSON text. */
    json: z.boolean().optional(),
  })
  .strict();
export type ParameterBinding = z.infer<typeof ParameterBindingSchema>;

/** A value fixed by the definition (an OpenAPI path's `#Action=Describe` fragment), not an argument. */
export const FixedParameterSchema = z
  .object({ in: z.enum(PARAMETER_LOCATIONS), name: z.string().min(1).max(256), value: z.string().max(4096) })
  .strict();

/** How the request body is made: one argument holds it, or some arguments are its properties. */
export const BodyBindingSchema = z
  .object({
    mediaType: z.string().min(1).max(256).describe('Sent as Content-Type'),
    arg: z.string().min(1).max(256).optional().describe('The argument holding the whole body'),
    properties: z.array(z.string().min(1).max(256)).optional().describe('Arguments that are the properties of an object body'),
    binary: z.array(z.string().min(1).max(256)).optional().describe('Arguments given base64-encoded and sent as bytes'),
    rest: z.boolean().optional().describe('A free-form object body: every argument no parameter takes is one of its properties'),
    required: z.boolean().optional().describe('A body is sent even when no argument fills it'),
  })
  .strict();
export type BodyBinding = z.infer<typeof BodyBindingSchema>;

/** Where the service's API key goes for this operation (its OpenAPI apiKey security scheme). */
export const ApiKeyPlacementSchema = z.object({ in: z.enum(['header', 'query', 'cookie']), name: z.string().min(1).max(256) }).strict();
export type ApiKeyPlacement = z.infer<typeof ApiKeyPlacementSchema>;

/**
 * How an operation's arguments become an HTTP request (an imported OpenAPI operation has one). Without
 * it the plain rule holds: path placeholders, then the query (GET/DELETE/HEAD/OPTIONS) or a JSON object body.
 */
export const RequestBindingSchema = z
  .object({
    parameters: z.array(ParameterBindingSchema).max(1024).default([]),
    fixed: z.array(FixedParameterSchema).max(64).optional(),
    body: BodyBindingSchema.optional(),
    accept: z.string().max(1024).optional().describe('Sent as Accept: the media types the document lists for a success'),
    basePath: z.string().max(1024).optional().describe("The document's server path, put between the endpoint and the path"),
    apiKey: ApiKeyPlacementSchema.optional(),
  })
  .strict();
export type RequestBinding = z.output<typeof RequestBindingSchema>;

export const OperationDefinitionSchema = z
  .object({
    name: z.string().regex(OPERATION_NAME_PATTERN, 'must be an operation name (1-256 characters, no control characters)'),
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
     * Parameters that go in the query string whatever the method; the others of a POST/PUT/PATCH go
     * in the JSON body. (An imported operation says where each argument goes in `request`.)
     */
    query: z.array(z.string().min(1).max(256)).max(256).optional().describe('Parameters sent in the query string even for POST/PUT/PATCH'),
    idempotent: z.boolean().optional(),
    request: RequestBindingSchema.optional(),
    outputSchema: JsonSchemaSchema.optional().describe('JSON Schema of a success answer that is a JSON object'),
  })
  .strict();

export type OperationDefinitionInput = z.input<typeof OperationDefinitionSchema>;
export type OperationDefinition = z.output<typeof OperationDefinitionSchema>;

/** An operation that only reads: GET, HEAD or OPTIONS. */
export function isReadOnly(op: Pick<OperationDefinition, 'method'>): boolean {
  return op.method === 'GET' || op.method === 'HEAD' || op.method === 'OPTIONS';
}

export function isIdempotent(op: Pick<OperationDefinition, 'method' | 'idempotent'>): boolean {
  return op.idempotent ?? IDEMPOTENT_BY_DEFAULT.includes(op.method);
}

/** What importing a document changed or could not keep, for one operation. */
export interface DefinitionNote {
  /** `GET /pets/{id}` as the document has it. */
  where: string;
  /** The operation's name once imported; absent when it was left out. */
  operation?: string;
  change: 'renamed' | 'left-out' | 'parameter-renamed' | 'parameter-left-out';
  reason: string;
}

/** A service's operations and where they came from. */
export interface ServiceDefinition {
  service: string;
  source: 'config' | 'file' | 'openapi' | 'dynamic';
  operations: OperationDefinition[];
  /** An imported document: what it was, and what the import renamed or left out. */
  document?: {
    format: string;
    title?: string;
    operationsInDocument: number;
    /** Operations the service's include/exclude filter removed. */
    filteredOut: number;
    /** Where the document breaks its own spec (reported, not refused), when it was checked (at registration). */
    warnings?: string[];
    notes: DefinitionNote[];
  };
}
