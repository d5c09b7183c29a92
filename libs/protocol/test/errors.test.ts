import { GatewayError } from '@mcp-gateway/protocol';

describe('GatewayError', () => {
  it('a RATE_LIMITED or CIRCUIT_OPEN error always says when to try again, 1 s unless its raiser knows better', () => {
    expect(new GatewayError('RATE_LIMITED').toBody().retryAfterMs).toBe(1000);
    expect(new GatewayError('CIRCUIT_OPEN', 'open').toBody().retryAfterMs).toBe(1000);
    expect(new GatewayError('RATE_LIMITED', 'wait', { retryAfterMs: 4200 }).toBody().retryAfterMs).toBe(4200);
    // Other codes carry one only when given.
    expect(new GatewayError('BACKEND_ERROR').toBody()).not.toHaveProperty('retryAfterMs');
  });
});
