import type { MCPResponse, RequestState } from '@mcp-gateway/protocol';

/**
 * A result's JSON, written from its parts (no copied object per result), and read back from a record
 * of the layout before records were text: a hash whose result was short fields beside the record's
 * own (`correlationId`, `service`), or one `result` field before that.
 */
export const RESULT_META_FIELDS = ['operation', 'attempts', 'queuedMs', 'processingTime', 'backendStatus', 'completedAt'] as const;

type BodyField = 'data' | 'error';

type MetaField = 'correlationId' | 'service' | 'replayOf' | (typeof RESULT_META_FIELDS)[number];
/** The metadata as the worker has it (numbers), or as the record keeps it (strings; null when absent). */
type MetaValues = { [K in MetaField]?: string | number | null };

/** The parts of a result's JSON around its body, from its metadata: its id's, then the rest's. */
function frame(id: string, status: MCPResponse['status'], bodyField: BodyField | undefined, m: MetaValues) {
  const backendStatus = m.backendStatus == null ? '' : `,"backendStatus":${m.backendStatus}`;
  const replayOf = m.replayOf == null ? '' : `,"replayOf":${JSON.stringify(m.replayOf)}`;
  const meta =
    `{"correlationId":${JSON.stringify(m.correlationId ?? '')},"service":${JSON.stringify(m.service ?? '')},` +
    `"operation":${JSON.stringify(m.operation ?? '')},"attempts":${m.attempts},"queuedMs":${m.queuedMs},` +
    `"processingTime":${m.processingTime}${backendStatus},"completedAt":${JSON.stringify(m.completedAt ?? '')}${replayOf}}`;
  const statusField = `"status":"${status}"`;
  return {
    idHead: `{"id":${JSON.stringify(id)},`,
    before: bodyField ? `${statusField},"${bodyField}":` : statusField,
    after: `,"metadata":${meta}}`,
  };
}

/**
 * A result's JSON in two parts, as finish.lua takes them: up to and including its id (`{"id":…,`),
 * which only the message carries, and the rest, which the record keeps. `dataJson`: the success's
 * data as JSON text (the backend's answer as it came), used in place of `data`.
 */
export function resultJsonParts(result: MCPResponse, dataJson?: string): { head: string; rest: string } {
  const m = result.metadata;
  const body: { field: BodyField; json: string } | undefined =
    result.status === 'error'
      ? { field: 'error', json: JSON.stringify(result.error ?? null) }
      : dataJson !== undefined
        ? { field: 'data', json: dataJson }
        : result.data !== undefined
          ? { field: 'data', json: JSON.stringify(result.data) }
          : undefined;
  const { idHead, before, after } = frame(result.id, result.status, body?.field, m);
  return { head: idHead, rest: `${before}${body ? body.json : ''}${after}` };
}

/** The JSON of a result stored in the hash layout, from its fields; undefined while the request has none. */
export function legacyResultJson(id: string, state: RequestState, fields: Record<string, string | null | undefined>): string | undefined {
  if (fields.result) return fields.result;
  if (fields.completedAt == null) return undefined;
  const bodyField: BodyField | undefined = fields.error != null ? 'error' : fields.data != null ? 'data' : undefined;
  const { idHead, before, after } = frame(id, state === 'completed' ? 'success' : 'error', bodyField, fields);
  return `${idHead}${before}${bodyField ? fields[bodyField] : ''}${after}`;
}
