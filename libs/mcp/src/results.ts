import type { ValidateFunction } from 'ajv';
import type { ErrorBody, MCPResponse } from '@mcp-gateway/protocol';

export type ToolContent =
  | { type: 'text'; text: string }
  | { type: 'image' | 'audio'; data: string; mimeType: string }
  | { type: 'resource'; resource: { uri: string; mimeType: string; blob: string } };

export interface ToolResult {
  content: ToolContent[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
  _meta?: Record<string, unknown>;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Words an LLM can act on: what happened, whether and when to try again. */
export function describeError(error: ErrorBody): string {
  // A sentence of its own, so that the advice after it does not run on from it.
  const head = `${error.code}: ${error.message}`;
  const parts = [/[.!?]$/.test(head) ? head : `${head}.`];
  const circuit = isPlainObject(error.details) && typeof error.details.circuit === 'string' ? error.details.circuit : undefined;
  if (circuit) parts.push(`The backend's circuit breaker is ${circuit.replace('_', '-')}.`);
  if (error.retryAfterMs !== undefined) parts.push(`Retry after ${Math.max(1, Math.ceil(error.retryAfterMs / 1000))} s.`);
  else parts.push(error.retryable ? 'It may succeed if retried.' : 'Retrying the same call will not help.');
  return parts.join(' ');
}

/** An error as a tool result (`isError`), carrying the code, retryAfterMs and breaker state as data. */
export function errorResult(error: ErrorBody, requestId?: string): ToolResult {
  const circuit = isPlainObject(error.details) && typeof error.details.circuit === 'string' ? error.details.circuit : undefined;
  return {
    isError: true,
    content: [{ type: 'text', text: describeError(error) }],
    structuredContent: {
      error: {
        code: error.code,
        message: error.message,
        retryable: error.retryable,
        ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
        ...(circuit ? { circuit } : {}),
        ...(error.details !== undefined ? { details: error.details } : {}),
      },
      ...(requestId ? { requestId } : {}),
    },
  };
}

/** A binary answer as the worker keeps it: `{mediaType, base64}` and nothing else. */
function binaryAnswer(data: unknown): { mediaType: string; base64: string } | undefined {
  if (!isPlainObject(data) || Object.keys(data).length !== 2) return undefined;
  const { mediaType, base64 } = data;
  return typeof mediaType === 'string' && /^[\w.+-]+\/[\w.+-]+$/.test(mediaType) && typeof base64 === 'string'
    ? { mediaType, base64 }
    : undefined;
}

/** Bytes as MCP content: an image or audio block, else an embedded resource with its media type. */
function binaryContent(id: string, answer: { mediaType: string; base64: string }): ToolContent {
  const kind = answer.mediaType.split('/')[0];
  if (kind === 'image' || kind === 'audio') return { type: kind, data: answer.base64, mimeType: answer.mediaType };
  return {
    type: 'resource',
    resource: { uri: `mcp-gateway://requests/${encodeURIComponent(id)}/result`, mimeType: answer.mediaType, blob: answer.base64 },
  };
}

let validators: { ajv: import('ajv').default; compiled: WeakMap<object, ValidateFunction> } | undefined;

/** Why `data` does not match a tool's outputSchema, or undefined when it does (formats are annotations). */
export function outputSchemaProblem(schema: Record<string, unknown>, data: unknown): string | undefined {
  if (!validators) {
    const Ajv2020 = (require('ajv/dist/2020') as { default: new (o: object) => import('ajv').default }).default;
    validators = { ajv: new Ajv2020({ strict: false, validateFormats: false, logger: false }), compiled: new WeakMap() };
  }
  let fn = validators.compiled.get(schema);
  if (!fn) {
    try {
      fn = validators.ajv.compile(schema);
    } catch {
      return undefined;
    }
    validators.compiled.set(schema, fn);
  }
  if (fn(data)) return undefined;
  const e = fn.errors?.[0];
  return e ? `${e.instancePath || '(answer)'} ${e.message ?? 'is invalid'}` : 'it is invalid';
}

/**
 * A gateway result as a tool result: JSON as structuredContent and as text, text answers (XML, CSV,
 * …) as they came, bytes as image, audio or resource content with their media type. With the tool's
 * `outputSchema`: an answer that breaks it is an error result holding the answer as text, since a
 * client checks structuredContent against the schema and would refuse the whole result.
 */
export function toolResult(result: MCPResponse, outputSchema?: Record<string, unknown>): ToolResult {
  const _meta = {
    'mcp-gateway/request': { id: result.id, attempts: result.metadata.attempts, backendStatus: result.metadata.backendStatus },
  };
  if (result.status !== 'success' || result.error) {
    const error = result.error ?? { code: 'INTERNAL_ERROR' as const, message: 'The request ended without a result', retryable: true };
    return { ...errorResult(error, result.id), _meta };
  }
  const data = result.data;
  const bytes = binaryAnswer(data);
  if (bytes) return { content: [binaryContent(result.id, bytes)], _meta };
  const problem = outputSchema ? outputSchemaProblem(outputSchema, isPlainObject(data) ? data : { result: data ?? null }) : undefined;
  if (problem) {
    const text = `The backend answered, but its answer does not match the operation's documented output schema (${problem}). The answer as it came: ${JSON.stringify(data)}`;
    return { isError: true, content: [{ type: 'text', text }], _meta };
  }
  return {
    content: [{ type: 'text', text: data === undefined ? 'null' : typeof data === 'string' ? data : JSON.stringify(data) }],
    structuredContent: isPlainObject(data) ? data : { result: data ?? null },
    _meta,
  };
}
