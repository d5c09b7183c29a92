import { GatewayMetrics } from '@mcp-gateway/metrics';

it('forgetting a removed service drops every series of it, and only its', async () => {
  const m = new GatewayMetrics({ defaultMetrics: false });
  for (const service of ['gone', 'kept']) {
    m.requests.inc({ service, operation: 'op', outcome: 'success' });
    m.requests.inc({ service, operation: 'op', outcome: 'TIMEOUT' });
    m.totalSeconds.observe({ service, outcome: 'success' }, 0.2);
    m.queueWaitSeconds.observe({ service }, 0.01);
    m.backendSeconds.observe({ service, operation: 'op' }, 0.1);
    m.retries.inc({ service });
  }
  const before = await m.text();
  expect(before).toContain('service="gone"');
  await m.forgetService('gone');
  const after = await m.text();
  expect(after).not.toContain('service="gone"');
  // Every line of the kept service is still there, values included.
  const kept = (text: string) => text.split('\n').filter((l) => l.includes('service="kept"'));
  expect(kept(after)).toEqual(kept(before));
  expect(kept(after).length).toBeGreaterThan(40);
});
