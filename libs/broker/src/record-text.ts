import { isEnded, type MCPResponse, type RequestState } from '@mcp-gateway/protocol';

/**
 * A request's record is one string, so that a new request claims its id with one plain command
 * (`SET … NX GET`). Its state, body hash and agent (as a JSON string) come first, a line each, then:
 *   - while the request has not ended: the request, as JSON `{service, acceptedAt, deadline, correlationId}`;
 *   - once it has: its result's JSON without the id (the key holds it).
 * finish.lua writes the same owner lines (`RecordOwner`) after the final state.
 */
export const PENDING_STATE = 'queued';

interface RecordCommon {
  id: string;
  service: string;
  /** The body's hash: the same id with another body is a conflict. */
  hash: string;
  correlationId: string;
  /** Absent for an anonymous caller. */
  agentId?: string;
}

/** Not ended: where it is in its run (queued, running, waiting for a retry) is its job's to say. */
export interface PendingRecord extends RecordCommon {
  state: typeof PENDING_STATE;
  acceptedAt: number;
  deadline: number;
  result?: undefined;
}

export interface EndedRecord extends RecordCommon {
  state: 'completed' | 'failed' | 'cancelled';
  result: MCPResponse;
}

export type RequestRecord = PendingRecord | EndedRecord;

/** What a new request's record says. */
export type PendingFields = Omit<PendingRecord, 'state' | 'result'>;

/** Whose request a record is: the lines after its state, the same from its claim to its end. */
export interface RecordOwner {
  hash: string;
  agentId?: string;
}

/** The agent's line is its id as a JSON string (an id may hold a line break: a body's `agentId` when auth is off), or empty. */
export function ownerLines(o: RecordOwner): string {
  return `${o.hash}\n${o.agentId === undefined ? '' : JSON.stringify(o.agentId)}\n`;
}

export function pendingRecordText(r: PendingFields): string {
  const request = JSON.stringify({ service: r.service, acceptedAt: r.acceptedAt, deadline: r.deadline, correlationId: r.correlationId });
  return `${PENDING_STATE}\n${ownerLines(r)}${request}`;
}

/** A record's lines, split without parsing its JSON. */
export interface RecordLines {
  state: RequestState;
  hash: string;
  /** Empty for an anonymous caller. */
  agentId: string;
  /** The request's JSON (pending), or the result's without its id (ended). */
  rest: string;
}

export function recordLines(text: string): RecordLines {
  const a = text.indexOf('\n');
  const b = text.indexOf('\n', a + 1);
  const c = text.indexOf('\n', b + 1);
  const agentLine = text.slice(b + 1, c);
  return {
    state: text.slice(0, a) as RequestState,
    hash: text.slice(a + 1, b),
    agentId: agentLine === '' ? '' : (JSON.parse(agentLine) as string),
    rest: text.slice(c + 1),
  };
}

/** An ended record's result JSON, the id put back in front (the same bytes the worker published). */
export function resultJsonOf(id: string, lines: RecordLines): string {
  return `{"id":${JSON.stringify(id)},${lines.rest.slice(1)}`;
}

export function parseRecordText(id: string, text: string): RequestRecord {
  const lines = recordLines(text);
  const agent = lines.agentId ? { agentId: lines.agentId } : {};
  if (isEnded(lines.state)) {
    const result = JSON.parse(resultJsonOf(id, lines)) as MCPResponse;
    const m = result.metadata;
    return {
      id,
      state: lines.state as EndedRecord['state'],
      hash: lines.hash,
      service: m.service,
      correlationId: m.correlationId,
      ...agent,
      result,
    };
  }
  const r = JSON.parse(lines.rest) as Pick<PendingRecord, 'service' | 'acceptedAt' | 'deadline' | 'correlationId'>;
  return { id, state: PENDING_STATE, hash: lines.hash, ...r, ...agent };
}
