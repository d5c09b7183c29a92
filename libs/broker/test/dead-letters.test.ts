import type { RedisClient } from '@mcp-gateway/redis';
import { BrokerKeys, DeadLetters, deadLetterOf, type DeadLetter } from '@mcp-gateway/broker';
import { testRedis, uniquePrefix } from '@mcp-gateway/testing';

/**
 * The worker keeps a failure's dead letter in the same write as its result, before the caller hears
 * of it; when the request had ended elsewhere first (swept, cancelled), it takes its own back and
 * leaves the one that did end it.
 */
let redis: RedisClient;
let letters: DeadLetters;

beforeEach(() => {
  redis = testRedis();
  letters = new DeadLetters(redis, new BrokerKeys(uniquePrefix('dl')), { maxPerService: 10, maxAgeHours: 1 });
});

afterEach(() => redis.quit());

const letter = (code: string, failedAt = Date.now()): DeadLetter =>
  deadLetterOf(
    {
      id: 'r1',
      service: 'orders',
      operation: 'charge',
      parameters: {},
      correlationId: 'c',
      acceptedAt: failedAt - 10,
      deadline: failedAt + 1000,
      priority: 'normal',
    },
    { error: { code, message: code }, metadata: { attempts: 1 } } as never,
    failedAt,
  );

describe('a dead letter kept beside the result', () => {
  it("keeps the sweep's letter when the worker's comes second, and withdraws only its own", async () => {
    const swept = letter('TIMEOUT');
    expect(await letters.add(swept)).toBe(true);
    const worker = letter('BACKEND_ERROR');
    expect(await letters.add(worker, true)).toBe(false);
    expect(await letters.withdraw(worker)).toBe(false);
    expect((await letters.get(['orders'], 'r1'))?.error.code).toBe('TIMEOUT');
  });

  it("takes back the worker's own letter when the request ended elsewhere, unless the sweep's replaced it", async () => {
    const worker = letter('BACKEND_ERROR');
    expect(await letters.add(worker, true)).toBe(true);
    expect(await letters.withdraw(worker)).toBe(true);
    expect(await letters.get(['orders'], 'r1')).toBeUndefined();
    expect(await letters.count('orders')).toBe(0);
    await letters.add(worker, true);
    await letters.add(letter('TIMEOUT'));
    expect(await letters.withdraw(worker)).toBe(false);
    expect((await letters.get(['orders'], 'r1'))?.error.code).toBe('TIMEOUT');
  });
});
