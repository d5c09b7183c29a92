import { jobOptions, type GatewayJobData } from '@mcp-gateway/broker';

const job = (priority: GatewayJobData['priority'], tier?: number): GatewayJobData => ({
  id: 'r1',
  service: 'users',
  operation: 'getUser',
  parameters: {},
  correlationId: 'c',
  traceparent: 't',
  acceptedAt: 0,
  deadline: 1,
  priority,
  ...(tier === undefined ? {} : { tier }),
});

const priorityOf = (priority: GatewayJobData['priority'], tier?: number) => jobOptions(job(priority, tier), { maxAttempts: 1 }).priority;

describe("a job's place in its queue", () => {
  it('keeps the priority classes in order within a fair-share tier, and puts every tier after the one before', () => {
    expect([priorityOf('high'), priorityOf('normal'), priorityOf('low')]).toEqual([1, 2, 3]);
    expect([priorityOf('high', 2), priorityOf('normal', 2), priorityOf('low', 2)]).toEqual([7, 8, 9]);
    expect(priorityOf('low', 1)).toBeLessThan(priorityOf('high', 2)!);
  });

  it("runs critical before every prioritized job in its agent's first tier only, then as high", () => {
    expect(priorityOf('critical')).toBeUndefined();
    expect(priorityOf('critical', 0)).toBeUndefined();
    expect(priorityOf('critical', 4)).toBe(priorityOf('high', 4));
  });

  it("stays within BullMQ's priorities, classes in order, however far behind a tier is", () => {
    const far = [priorityOf('high', 1e9)!, priorityOf('normal', 1e9)!, priorityOf('low', 1e9)!];
    expect(far[2]).toBeLessThanOrEqual(2_097_152);
    expect(far[0]).toBeLessThan(far[1]!);
    expect(far[1]).toBeLessThan(far[2]!);
  });
});
