import { answerError } from '@mcp-gateway/broker';
import { GatewayError } from '@mcp-gateway/protocol';

describe('how a Redis error is answered', () => {
  it.each([
    'CLUSTERDOWN The cluster is down',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no',
    "READONLY You can't write against a read only replica.",
    'LOADING Redis is loading the dataset in memory',
    "Cluster isn't ready and enableOfflineQueue options is false",
    'Failed to refresh slots cache.',
    'Too many Cluster redirections. Last error: Error: Connection is closed.',
    'connect ECONNREFUSED 127.0.0.1:6379',
    'Command timed out',
  ])('a failover or an unreachable Redis (%s) is 503 UNAVAILABLE with Retry-After, never a 500', (message) => {
    const e = answerError(new Error(message));
    expect([e.code, e.retryAfterMs]).toEqual(['UNAVAILABLE', 1000]);
    // What Redis said is not in the answer, only in its cause (for the log).
    expect(e.message).not.toContain(message);
    expect((e.cause as Error).message).toBe(message);
  });

  it('keeps a real bug a 500, and a gateway error as it is', () => {
    expect(answerError(new Error("Cannot read properties of undefined (reading 'id')")).code).toBe('INTERNAL_ERROR');
    expect(answerError(new Error('ERR wrong number of arguments for command')).code).toBe('INTERNAL_ERROR');
    const own = new GatewayError('NOT_FOUND', 'No request with id x');
    expect(answerError(own)).toBe(own);
  });
});
