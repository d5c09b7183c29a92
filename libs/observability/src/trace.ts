import { randomBytes, randomUUID } from 'node:crypto';

/** W3C trace context: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** The header normalised to version 00, or undefined when it is not a valid traceparent. */
export function parseTraceparent(header: string | undefined): string | undefined {
  const m = TRACEPARENT.exec((header ?? '').trim().toLowerCase());
  if (!m) return undefined;
  const [, version, traceId, parentId, flags, rest] = m;
  if (version === 'ff' || traceId === ZERO_TRACE || parentId === ZERO_SPAN) return undefined;
  // Version 00 has exactly four fields; later versions may append more, which we drop.
  if (version === '00' && rest !== undefined) return undefined;
  return `00-${traceId}-${parentId}-${flags}`;
}

/** Random ids come from a pool refilled 4 KB at a time: one `randomBytes` call per ~500 span ids, not one each. */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let used = 0;
function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    pool = randomBytes(POOL_BYTES);
    used = 0;
  }
  const hex = pool.toString('hex', used, used + bytes);
  used += bytes;
  return hex;
}

/** A new span under `parent` (same trace, new span id, same flags), or the root of a new sampled trace. */
export function childTraceparent(parent?: string): string {
  const valid = parseTraceparent(parent);
  const spanId = randomHex(8);
  if (valid) return `00-${valid.slice(3, 35)}-${spanId}-${valid.slice(53, 55)}`;
  return `00-${randomHex(16)}-${spanId}-01`;
}

export function traceIdOf(traceparent: string | undefined): string | undefined {
  return parseTraceparent(traceparent)?.split('-')[1];
}

export function newCorrelationId(): string {
  return randomUUID();
}
