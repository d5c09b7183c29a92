import { ClaimCode, FinishCode, START_MISSING, decodeClaim, decodeFinish, decodeStart } from '@mcp-gateway/broker';

// The replies as ioredis hands them over (Lua false arrives as null).
describe("decoding the broker scripts' replies", () => {
  it('maps every claim code to its outcome, and refuses any other', () => {
    expect(decodeClaim([ClaimCode.Created, 'queued'], 'r')).toEqual({ kind: 'created' });
    expect(decodeClaim([ClaimCode.Joined, ['state', 'active', 'service', 's']], 'r')).toEqual({ kind: 'joined', state: 'active' });
    // An ended record's result is rebuilt from its fields (HGETALL's flat list).
    const ended = ['state', 'completed', 'correlationId', 'c', 'service', 's', 'data', '[1]', 'operation', 'op'];
    const meta = ['attempts', '1', 'queuedMs', '2', 'processingTime', '3', 'completedAt', 'T'];
    expect(decodeClaim([ClaimCode.Joined, [...ended, ...meta]], 'r')).toEqual({
      kind: 'joined',
      state: 'completed',
      resultJson:
        '{"id":"r","status":"success","data":[1],"metadata":{"correlationId":"c","service":"s","operation":"op","attempts":1,"queuedMs":2,"processingTime":3,"completedAt":"T"}}',
    });
    expect(decodeClaim([ClaimCode.Conflict], 'r')).toEqual({ kind: 'conflict' });
    expect(() => decodeClaim([7], 'r')).toThrow('claim.lua answered [7], which is none of its reply codes');
  });

  it('maps every finish code to its outcome, and refuses any other', () => {
    expect(decodeFinish(FinishCode.Stored)).toBe('stored');
    expect(decodeFinish(FinishCode.Refused)).toBe('refused');
    expect(decodeFinish(FinishCode.Missing)).toBe('missing');
    expect(() => decodeFinish(2)).toThrow('finish.lua answered 2, which is none of its reply codes');
  });

  it("reads a start: the first start time (now when none) and a previous run's mark", () => {
    expect(decodeStart(['active', '1000', null], 5000)).toEqual({ state: 'active', startedAt: 1000 });
    expect(decodeStart(['active', '1000', '2000'], 5000)).toEqual({ state: 'active', startedAt: 1000, markedBefore: 2000 });
    expect(decodeStart([START_MISSING, null, null], 5000)).toEqual({ state: 'missing', startedAt: 5000 });
  });
});
