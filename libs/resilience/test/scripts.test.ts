import { AdmitVerdict, TOKENS_NOT_READ, breakerMustRecord, decodeAdmit, decodeRecord } from '@mcp-gateway/resilience';

// The replies as ioredis hands them over: admit.lua leaves out what a verdict does not use.
describe("decoding the resilience scripts' replies", () => {
  it('maps every admit verdict to its admission, and refuses any other', () => {
    expect(decodeAdmit([AdmitVerdict.Admitted, 0, 'closed', 0, 4000, 0, 0, 3])).toEqual({
      admission: { verdict: 'admitted', state: 'closed', failures: 0, tokens: 4 },
      halfOpened: false,
      leased: 3,
    });
    expect(decodeAdmit([AdmitVerdict.Admitted, 0, 'half_open', 1, TOKENS_NOT_READ, 0, 2])).toEqual({
      admission: { verdict: 'admitted', state: 'half_open', failures: 2 },
      halfOpened: true,
      leased: 0,
    });
    expect(decodeAdmit([AdmitVerdict.CircuitOpen, 500, 'open', 0])).toEqual({
      admission: { verdict: 'circuit_open', waitMs: 500, state: 'open' },
      halfOpened: false,
      leased: 0,
    });
    expect(decodeAdmit([AdmitVerdict.RateLimited, 300, 'closed', 0, -500])).toEqual({
      admission: { verdict: 'rate_limited', waitMs: 300, state: 'closed', tokens: -0.5 },
      halfOpened: false,
      leased: 0,
    });
    expect(decodeAdmit([AdmitVerdict.Reserved, 100, 'closed', 0, -1500, 1100])).toEqual({
      admission: { verdict: 'reserved', waitMs: 100, state: 'closed', slotAt: 1100, tokens: -1.5 },
      halfOpened: false,
      leased: 0,
    });
    // A reserved token not due yet: the bucket is not read.
    expect(decodeAdmit([AdmitVerdict.Reserved, 60, 'closed', 0, TOKENS_NOT_READ, 1100]).admission).toEqual({
      verdict: 'reserved',
      waitMs: 60,
      state: 'closed',
      slotAt: 1100,
    });
    expect(() => decodeAdmit([0, 0, 'closed', 0])).toThrow('admit.lua answered verdict 0, which is none of its verdicts');
  });

  it('reads a record by name', () => {
    expect(decodeRecord(['closed', 'open', 3])).toEqual({ before: 'closed', after: 'open', failures: 3 });
  });
});

describe('which outcomes the breaker must hear of', () => {
  const admitted = (state: 'closed' | 'half_open', failures: number) => ({ verdict: 'admitted' as const, state, failures });

  it('on a breaker closed at admission: failures, and successes when failures were counted', () => {
    expect(breakerMustRecord('success', admitted('closed', 0))).toBe(false);
    expect(breakerMustRecord('success', admitted('closed', 1))).toBe(true);
    // A half-open trial's success is what closes the circuit.
    expect(breakerMustRecord('success', admitted('half_open', 0))).toBe(true);
    expect(breakerMustRecord('failure', admitted('closed', 0))).toBe(true);
    // Neutral frees a trial permit: only a half-open breaker has any.
    expect(breakerMustRecord('neutral', admitted('closed', 2))).toBe(false);
    expect(breakerMustRecord('neutral', admitted('half_open', 0))).toBe(true);
  });
});
