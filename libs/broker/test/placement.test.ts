import { jobOptions, laneOf, type GatewayJobData } from '@mcp-gateway/broker';

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
const laneOfJob = (priority: GatewayJobData['priority'], tier?: number) => laneOf(job(priority, tier));

describe("a job's place in its queue", () => {
  it("puts critical and high in the urgent lane in their agent's first tier only, everything else in the normal lane", () => {
    expect([laneOfJob('critical'), laneOfJob('high'), laneOfJob('normal'), laneOfJob('low')]).toEqual([
      'urgent',
      'urgent',
      'normal',
      'normal',
    ]);
    expect([laneOfJob('critical', 1), laneOfJob('high', 3)]).toEqual(['normal', 'normal']);
  });

  it('runs a normal request of the first tier as a standard job, ahead of every prioritized job of its lane', () => {
    expect(priorityOf('normal')).toBeUndefined();
    expect(priorityOf('normal', 0)).toBeUndefined();
    expect(priorityOf('low')).toBe(3);
  });

  it('keeps the priority classes in order within a fair-share tier, and puts every tier after the one before', () => {
    expect([priorityOf('high', 1), priorityOf('normal', 1), priorityOf('low', 1)]).toEqual([4, 5, 6]);
    expect([priorityOf('high', 2), priorityOf('normal', 2), priorityOf('low', 2)]).toEqual([7, 8, 9]);
    expect(priorityOf('low', 1)).toBeLessThan(priorityOf('high', 2)!);
  });

  it('runs critical before high in the urgent lane, and after the first tier as high', () => {
    expect(priorityOf('critical')).toBeUndefined();
    expect(priorityOf('high')).toBe(1);
    expect(priorityOf('critical', 4)).toBe(priorityOf('high', 4));
  });

  it("stays within BullMQ's priorities, classes in order, however far behind a tier is", () => {
    const far = [priorityOf('high', 1e9)!, priorityOf('normal', 1e9)!, priorityOf('low', 1e9)!];
    expect(far[2]).toBeLessThanOrEqual(2_097_152);
    expect(far[0]).toBeLessThan(far[1]!);
    expect(far[1]).toBeLessThan(far[2]!);
  });
});
