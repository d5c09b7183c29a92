import { FinishCode, PENDING_STATE, decodeFinish, parseRecordText, pendingRecordText } from '@mcp-gateway/broker';

describe("a record's text and the finish script's replies", () => {
  it('reads back a pending record as written, the agent only when there is one', () => {
    const pending = { id: 'r', hash: 'h1', service: 's', acceptedAt: 1000, deadline: 6000, correlationId: 'c\nd' };
    expect(parseRecordText('r', pendingRecordText(pending))).toEqual({ ...pending, state: PENDING_STATE });
    expect(parseRecordText('r', pendingRecordText({ ...pending, agentId: 'planner' }))).toEqual({
      ...pending,
      agentId: 'planner',
      state: PENDING_STATE,
    });
    // An agent id is any string (a body's agentId when auth is off): its line break does not end its line.
    expect(parseRecordText('r', pendingRecordText({ ...pending, agentId: 'a\nb' }))).toMatchObject({ agentId: 'a\nb', service: 's' });
  });

  it('reads an ended record: its result with the id put back, service and correlation id from its metadata', () => {
    const result = '{"status":"success","data":[1],"metadata":{"correlationId":"c","service":"s","operation":"op","attempts":1}}';
    expect(parseRecordText('r', `completed\nh1\n"planner"\n${result}`)).toEqual({
      id: 'r',
      state: 'completed',
      hash: 'h1',
      agentId: 'planner',
      service: 's',
      correlationId: 'c',
      result: { id: 'r', ...(JSON.parse(result) as object) },
    });
  });

  it('maps every finish code to its outcome, and refuses any other', () => {
    expect(decodeFinish(FinishCode.Stored)).toBe('stored');
    expect(decodeFinish(FinishCode.Refused)).toBe('refused');
    expect(decodeFinish(FinishCode.Missing)).toBe('missing');
    expect(() => decodeFinish(2)).toThrow('finish.lua answered 2, which is none of its reply codes');
  });
});
