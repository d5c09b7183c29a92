import type { MCPResponse, RequestState } from '@mcp-gateway/protocol';

/**
 * How a result is kept in its request's record: not as one JSON text, but as short fields beside
 * the record's own (`correlationId`, `service`), so that nothing is stored twice and a small result
 * keeps every value under Redis's listpack limit (64 bytes): the record then stays one compact
 * allocation instead of a hash table (docs/research/bench-costs.md). Its JSON is rebuilt from them,
 * the same bytes the worker published.
 */
export const RESULT_META_FIELDS = ['operation', 'attempts', 'queuedMs', 'processingTime', 'backendStatus', 'completedAt'] as const;
/** Every field a stored result uses: its body (`data` or `error`, JSON text), its metadata, and `result` (whole JSON, written before this layout). */
export const RESULT_FIELDS = ['data', 'error', ...RESULT_META_FIELDS, 'result'] as const;

type BodyField = 'data' | 'error';

/** A result split for storing: the JSON around its body, the body, and the metadata fields. */
export interface StoredResult {
  /** The result's JSON up to its body's value (or up to its metadata, when it has no body). */
  before: string;
  body?: { field: BodyField; json: string };
  /** The result's JSON after its body. */
  after: string;
  meta: Array<[string, string]>;
}

type MetaField = 'correlationId' | 'service' | (typeof RESULT_META_FIELDS)[number];
/** The metadata as the worker has it (numbers), or as the record keeps it (strings; null when absent). */
type MetaValues = { [K in MetaField]?: string | number | null };

/** The parts of a result's JSON around its body, from its metadata. */
function frame(id: string, status: MCPResponse['status'], bodyField: BodyField | undefined, m: MetaValues) {
  const backendStatus = m.backendStatus == null ? '' : `,"backendStatus":${m.backendStatus}`;
  const meta =
    `{"correlationId":${JSON.stringify(m.correlationId ?? '')},"service":${JSON.stringify(m.service ?? '')},` +
    `"operation":${JSON.stringify(m.operation ?? '')},"attempts":${m.attempts},"queuedMs":${m.queuedMs},` +
    `"processingTime":${m.processingTime}${backendStatus},"completedAt":${JSON.stringify(m.completedAt ?? '')}}`;
  const head = `{"id":${JSON.stringify(id)},"status":"${status}"`;
  return { before: bodyField ? `${head},"${bodyField}":` : head, after: `,"metadata":${meta}}` };
}

/** `dataJson`: the success's data as JSON text (the backend's answer as it came), used in place of `data`. */
export function storedResult(result: MCPResponse, dataJson?: string): StoredResult {
  const m = result.metadata;
  const meta: Array<[string, string]> = [
    ['operation', m.operation],
    ['attempts', String(m.attempts)],
    ['queuedMs', String(m.queuedMs)],
    ['processingTime', String(m.processingTime)],
    ...(m.backendStatus === undefined ? [] : [['backendStatus', String(m.backendStatus)] as [string, string]]),
    ['completedAt', m.completedAt],
  ];
  const body: StoredResult['body'] =
    result.status === 'error'
      ? { field: 'error', json: JSON.stringify(result.error ?? null) }
      : dataJson !== undefined
        ? { field: 'data', json: dataJson }
        : result.data !== undefined
          ? { field: 'data', json: JSON.stringify(result.data) }
          : undefined;
  return { ...frame(result.id, result.status, body?.field, m), ...(body ? { body } : {}), meta };
}

/** The JSON of a stored result, from its record's fields; undefined while the request has none. */
export function storedResultJson(id: string, state: RequestState, fields: Record<string, string | null | undefined>): string | undefined {
  if (fields.result) return fields.result;
  if (fields.completedAt == null) return undefined;
  const bodyField: BodyField | undefined = fields.error != null ? 'error' : fields.data != null ? 'data' : undefined;
  const { before, after } = frame(id, state === 'completed' ? 'success' : 'error', bodyField, fields);
  return `${before}${bodyField ? fields[bodyField] : ''}${after}`;
}
