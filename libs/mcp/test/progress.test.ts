import { Broker, type GatewayJobData } from '@mcp-gateway/broker';
import type { RedisClient } from '@mcp-gateway/redis';
import { testRedis, uniquePrefix } from '@mcp-gateway/testing';
import { reportProgress } from '../src/server/progress';

let redis: RedisClient;
let broker: Broker;

beforeEach(() => {
  redis = testRedis();
  broker = new Broker({ redis, keyPrefix: uniquePrefix('prog'), resultTtlSeconds: 60 });
});

afterEach(async () => {
  await broker.close();
  redis.disconnect();
});

function job(id: string): GatewayJobData {
  const now = Date.now();
  return {
    id,
    service: 'svc',
    operation: 'op',
    parameters: {},
    correlationId: 'c-1',
    traceparent: '',
    acceptedAt: now,
    deadline: now + 30_000,
    priority: 'normal',
  };
}

describe('progress notifications', () => {
  it('report the place in the queue, then the end, and stop polling once the job has ended, stopped or not', async () => {
    await broker.submit(job('p-1'), 'h', { maxAttempts: 1 });
    const messages: string[] = [];
    const reads = jest.spyOn(broker, 'status');
    const stop = reportProgress(redis, broker, {
      jobId: 'p-1',
      service: 'svc',
      progressToken: 't',
      notify: async (n) => void messages.push(String(n.params.message)),
    });
    for (let i = 0; i < 50 && !messages.length; i++) await new Promise((r) => setTimeout(r, 20));
    expect(messages).toEqual(['waiting in the queue (position 1)']);
    expect(await broker.cancel('p-1')).toMatchObject({ state: 'cancelled' });
    for (let i = 0; i < 60 && messages.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(messages).toEqual(['waiting in the queue (position 1)', 'cancelled']);
    // Its caller has not stopped it (as if its tools/call never returned): no more reads all the same.
    const readsAtEnd = reads.mock.calls.length;
    await new Promise((r) => setTimeout(r, 1200));
    expect(reads.mock.calls.length).toBe(readsAtEnd);
    stop();
  });
});
