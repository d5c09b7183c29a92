import type { Request } from 'express';

export interface WaitPreference {
  /** Answer 202 at once. */
  async: boolean;
  /** `Prefer: wait=N`: wait at most this long (ms), then 202. */
  waitMs?: number;
}

/** RFC 7240 `Prefer: respond-async` / `wait=N`, and `?wait=false`. */
export function parseWaitPreference(req: Request): WaitPreference {
  const pref: WaitPreference = { async: false };
  const header = req.get('prefer');
  // Most requests carry neither a Prefer header nor a query: then nothing is parsed.
  if (header === undefined && !req.url.includes('?')) return pref;
  for (const part of (header ?? '').split(/[,;]/)) {
    const [rawName, rawValue] = part.split('=').map((s) => s.trim().toLowerCase());
    if (rawName === 'respond-async') pref.async = true;
    if (rawName === 'wait' && rawValue !== undefined && /^\d+(\.\d+)?$/.test(rawValue)) pref.waitMs = Math.round(Number(rawValue) * 1000);
  }
  const q = req.query.wait;
  if (q === 'false' || q === '0') pref.async = true;
  // respond-async together with wait=N means: wait up to N, then 202 (RFC 7240 §4.3).
  if (pref.async && pref.waitMs !== undefined) pref.async = false;
  return pref;
}
