import { isoTime } from '../src';

describe('isoTime', () => {
  it('writes what Date#toISOString writes, for moments across seconds, days and years', () => {
    const moments = [0, 1, 9, 10, 99, 100, 999, 1000, 1001, Date.UTC(2026, 11, 7, 4, 5, 6, 7), Date.UTC(1999, 11, 31, 23, 59, 59, 999)];
    // Every millisecond of a few seconds in a row, and jumps back and forth between cached seconds.
    const start = Date.UTC(2026, 0, 1, 0, 0, 58, 990);
    for (let ms = start; ms < start + 3000; ms += 7) moments.push(ms, ms - 86_400_000);
    for (const ms of moments) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  it('writes moments before 1970, past year 9999 and between milliseconds as toISOString does', () => {
    for (const ms of [-1, -1001, -62_198_755_200_001, 253_402_300_800_000, 253_402_300_799_999, 1000.5, -0.5])
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });
});
