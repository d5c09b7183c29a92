import type { RedisClient } from '@mcp-gateway/redis';
import { resilienceEventsChannel, resilienceKeys } from '@mcp-gateway/resilience';
import { testRedis } from '@mcp-gateway/testing';
import { eventually, startGateway, type Running } from './harness';

/**
 * The API's fast-fail readings: a reading less than 20 ms old lets fresh requests straight in (claim
 * and job in one write) while the circuit is closed and it has a token and room in the queue for
 * them; breaker news on the events channel retires it.
 */
let gw: Running;
let redis: RedisClient;

beforeAll(async () => {
  const operations = [{ name: 'get', method: 'GET', path: '/x' }];
  // No worker: jobs stay queued.
  gw = await startGateway(
    {
      services: {
        small: { endpoint: 'http://127.0.0.1:9', maxQueueDepth: 2, operations },
        big: { endpoint: 'http://127.0.0.1:9', operations },
        // Two tokens, then one a minute.
        scarce: { endpoint: 'http://127.0.0.1:9', rateLimit: { requestsPerMinute: 1, burstLimit: 2 }, operations },
      },
    },
    [],
  );
  redis = testRedis();
});

afterAll(async () => {
  redis.disconnect();
  await gw.close();
});

const service = (name: string) => gw.config.services[name]!;

// Each test holds the readings' clock still: a reading's 20 ms are not the machine's load to decide.
beforeEach(() => {
  const now = performance.now();
  gw.api.deps.fastFail.clock = () => now;
});

describe('fast-fail readings', () => {
  it('let fresh requests straight in while the queue has room for them, counting each job added since', async () => {
    const readings = gw.api.deps.fastFail;
    expect(readings.letsIn('small', service('small'))).toBe(false);
    expect(await readings.read('small', service('small'))).toMatchObject({ openWaitMs: 0, tokenWaitMs: 0, queueDepth: 0 });
    // A job checked on this reading (its claim went with the read) counts too.
    readings.added('small');
    expect([1, 2].map(() => readings.letsIn('small', service('small')))).toEqual([true, false]);
  });

  it('let nothing in once a reading is more than 20 ms old', async () => {
    const readings = gw.api.deps.fastFail;
    const at = readings.clock();
    await readings.read('big', service('big'));
    readings.clock = () => at + 21;
    expect(readings.letsIn('big', service('big'))).toBe(false);
  });

  it('let in no more fresh requests than the reading has tokens for', async () => {
    const readings = gw.api.deps.fastFail;
    expect(await readings.read('scarce', service('scarce'))).toEqual({ openWaitMs: 0, tokenWaitMs: 0, queueDepth: 0, spareTokens: 1 });
    expect([1, 2, 3].map(() => readings.letsIn('scarce', service('scarce')))).toEqual([true, true, false]);
  });

  it('retire a reading on breaker news of its service (heard on the events channel), and read an open circuit afresh', async () => {
    const readings = gw.api.deps.fastFail;
    const prefix = gw.config.redis.keyPrefix;
    await readings.read('big', service('big'));
    expect(readings.letsIn('big', service('big'))).toBe(true);
    // News of another service, and a message that is not news, leave it.
    readings.heard(JSON.stringify({ type: 'circuit', service: 'small' }));
    readings.heard('not json');
    expect(readings.letsIn('big', service('big'))).toBe(true);
    await redis.hset(resilienceKeys(prefix, 'big').breaker, { state: 'open', openedAt: Date.now() });
    await redis.publish(resilienceEventsChannel(prefix), JSON.stringify({ type: 'circuit', service: 'big', from: 'closed', to: 'open' }));
    await eventually(async () => (readings.letsIn('big', service('big')) ? undefined : true), 2000);
    // The next request reads again, finds the circuit open, and is refused at once.
    const refused = await gw.http.post('/mcp/request').send({ service: 'big', operation: 'get' });
    expect([refused.status, refused.body.error.code]).toEqual([503, 'CIRCUIT_OPEN']);
    expect(readings.letsIn('big', service('big'))).toBe(false);
  });
});
