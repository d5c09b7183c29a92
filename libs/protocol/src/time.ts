/** The last second isoTime formatted, and its text up to the milliseconds (`YYYY-MM-DDTHH:MM:SS.`). */
let cachedSecond = Number.NaN;
let cachedPrefix = '';

/**
 * A moment (epoch milliseconds) as `Date#toISOString` writes it, e.g. `2026-12-07T04:05:06.007Z`.
 * Results and log lines stamp one per request, and `toISOString` is slow enough to show there
 * (docs/research/bench-costs.md, session 18): the text up to the second is formatted once per second
 * and the milliseconds appended.
 */
export function isoTime(moment: number): string {
  // Whole milliseconds, cut toward zero as Date cuts them.
  const ms = Math.trunc(moment);
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    const text = new Date(second * 1000).toISOString();
    // Outside years 0–9999 toISOString writes a signed six-digit year: not worth a cache.
    if (text.length !== 24) return new Date(ms).toISOString();
    cachedSecond = second;
    cachedPrefix = text.slice(0, 20);
  }
  const milli = ms - second * 1000;
  return `${cachedPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}
