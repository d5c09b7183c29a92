import request from 'supertest';
import {
  freePort,
  startBackend,
  startNodeProcess,
  testRedisUrl,
  uniquePrefix,
  type RunningProcess,
  type TestBackend,
  API,
  WORKER,
} from '@mcp-gateway/testing';

/**
 * OpenTelemetry with the real entry points: an API and a worker process export spans over OTLP/HTTP
 * to a collector the test runs; one request gives one trace api → queue → job → backend call.
 */

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
}

let collector: TestBackend;
let backend: TestBackend;
const procs: RunningProcess[] = [];

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGTERM', 5000)));
  await collector?.close();
  await backend?.close();
});

function spansOf(c: TestBackend): (OtlpSpan & { service: string })[] {
  const out: (OtlpSpan & { service: string })[] = [];
  for (const r of c.requests) {
    const body = r.body as {
      resourceSpans?: {
        resource: { attributes: { key: string; value: { stringValue?: string } }[] };
        scopeSpans: { spans: OtlpSpan[] }[];
      }[];
    };
    for (const rs of body.resourceSpans ?? []) {
      const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
      for (const ss of rs.scopeSpans) for (const s of ss.spans) out.push({ ...s, service });
    }
  }
  return out;
}

it('one request is one trace across API and worker processes, continued from the caller and sent to the backend', async () => {
  collector = await startBackend(() => ({ status: 200, body: {} }));
  backend = await startBackend(() => ({ status: 200, body: { ok: true } }));
  const port = await freePort();
  const env = {
    REDIS_URL: testRedisUrl(),
    MCP_REDIS_KEY_PREFIX: uniquePrefix('otel'),
    MCP_SERVICES: 'orders',
    MCP_SERVICE_ORDERS_ENDPOINT: backend.url,
    PORT: String(port),
    HOST: '127.0.0.1',
    NODE_ENV: 'test',
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  };
  const worker = startNodeProcess(WORKER, env);
  const api = startNodeProcess(API, env);
  procs.push(worker, api);
  await Promise.all([worker.waitForLog((l) => l.msg === 'worker ready'), api.waitForLog((l) => l.msg === 'api ready')]);

  const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const res = await request(`http://127.0.0.1:${port}`)
    .post('/mcp/request')
    .set('traceparent', `00-${callerTrace}-00f067aa0ba902b7-01`)
    .send({ service: 'orders', operation: 'place', parameters: { n: 1 } });
  expect(res.status).toBe(200);

  let spans: ReturnType<typeof spansOf> = [];
  for (let i = 0; i < 60 && spans.length < 4; i++) {
    await new Promise((r) => setTimeout(r, 100));
    spans = spansOf(collector).filter((s) => s.traceId === callerTrace);
  }
  const byName = (prefix: string) => spans.find((s) => s.name.startsWith(prefix));
  const server = byName('POST /mcp/request')!;
  const queue = byName('queue orders')!;
  const job = byName('job orders.place')!;
  const client = byName('POST orders')!;
  expect([server, queue, job, client].every(Boolean)).toBe(true);
  expect(collector.requests[0]!.path).toBe('/v1/traces');
  expect(server).toMatchObject({ service: 'mcp-gateway-api', parentSpanId: '00f067aa0ba902b7' });
  expect(job).toMatchObject({ service: 'mcp-gateway-worker', parentSpanId: server.spanId });
  expect(queue.parentSpanId).toBe(server.spanId);
  expect(client.parentSpanId).toBe(job.spanId);
  // The backend saw the client span as its parent.
  expect(backend.requests[0]!.headers.traceparent).toBe(`00-${callerTrace}-${client.spanId}-01`);
  // The queue span covers the wait between acceptance and the worker taking the job.
  expect(BigInt(queue.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(job.startTimeUnixNano) + 5_000_000n);
});
