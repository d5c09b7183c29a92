import type { MCPResponse, RequestState } from '@mcp-gateway/protocol';

/**
 * A result's JSON, written from its parts (no copied object per result), and read back from a record
 * of the layout before records were text: a hash whose result was short fields beside the record's
 * own (`correlationId`, `service`), or one `result` field before that.
 */
export const RESULT_META_FIELDS = ['operation', 'attempts', 'queuedMs', 'processingTime', 'backendStatus', 'completedAt'] as const;
/** Every field a stored result uses: its body (`data` or `error`, JSON text), its metadata, and `result` (whole JSON, written before this layout). */
export const RESULT_FIELDS = ['data', 'error', ...RESULT_META_FIELDS, 'result'] as const;

type BodyField = 'data' | 'error';

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
export function resultJson(result: MCPResponse, dataJson?: string): string {
  const m = result.metadata;
  const body: { field: BodyField; json: string } | undefined =
    result.status === 'error'
      ? { field: 'error', json: JSON.stringify(result.error ?? null) }
      : dataJson !== undefined
        ? { field: 'data', json: dataJson }
        : result.data !== undefined
          ? { field: 'data', json: JSON.stringify(result.data) }
          : undefined;
  const { before, after } = frame(result.id, result.status, body?.field, m);
  return `${before}${body ? body.json : ''}${after}`;
}

/** The JSON of a result stored in the hash layout, from its fields; undefined while the request has none. */
export function legacyResultJson(id: string, state: RequestState, fields: Record<string, string | null | undefined>): string | undefined {
  if (fields.result) return fields.result;
  if (fields.completedAt == null) return undefined;
  const bodyField: BodyField | undefined = fields.error != null ? 'error' : fields.data != null ? 'data' : undefined;
  const { before, after } = frame(id, state === 'completed' ? 'success' : 'error', bodyField, fields);
  return `${before}${bodyField ? fields[bodyField] : ''}${after}`;
}
