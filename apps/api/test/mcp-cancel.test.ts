import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import type { RequestState } from '@mcp-gateway/protocol';
import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { eventually, startGateway, type Running } from './harness';
import { modernTaskClient } from './modern-tasks-client';

/**
 * Cancelling an MCP call reaches that call's own job, never another client's: with a 2025 session
 * the session names the caller; a 2026-07-28 client has none, and cancels by closing its request's
 * response stream. No worker serves `stuck`: its jobs wait in the queue, where a cancellation takes them.
 */
let backend: TestBackend;
let gw: Running;
let url: URL;
const MODERN = '2026-07-28';

beforeAll(async () => {
  backend = await startBackend();
  gw = await startGateway(
    {
      // A 2026-07-28 call from a client that takes tasks becomes one after 200 ms.
      mcp: { taskAfterMs: 200, streamAfterMs: 400 },
      services: {
        stuck: {
          endpoint: backend.url,
          operations: [
            { name: 'wait', method: 'POST', path: '/wait', parameters: { type: 'object', properties: { n: { type: 'integer' } } } },
            { name: 'peek', method: 'GET', path: '/peek', parameters: { type: 'object', properties: { n: { type: 'integer' } } } },
          ],
        },
      },
    },
    [],
  );
  url = new URL(`http://127.0.0.1:${gw.api.address!.port}/mcp`);
});

afterAll(async () => {
  await gw.close();
  await backend.close();
});

/** The id and state of the queued job whose parameters have this `n`, once there is one. */
async function jobOf(n: number): Promise<string> {
  return eventually(async () => {
    const jobs = await gw.api.deps.broker.queue('stuck').getJobs(['waiting', 'prioritized'], 0, -1);
    return jobs.find((j) => (j.data as { parameters?: { n?: number } }).parameters?.n === n)?.id;
  });
}
const stateOf = async (id: string): Promise<RequestState | undefined> => (await gw.api.deps.broker.status(id))?.state;
const settle = () => new Promise((r) => setTimeout(r, 300));

/** A 2026-07-28 client (v2 SDK); `sent` collects the JSON-RPC requests it POSTs. */
async function modernClient(sent: { method: string; id?: string | number }[] = []): Promise<ClientV2> {
  const recording: typeof fetch = async (input, init) => {
    if (typeof init?.body === 'string') {
      const msg = JSON.parse(init.body) as { method?: string; id?: string | number };
      if (msg.method) sent.push({ method: msg.method, ...(msg.id === undefined ? {} : { id: msg.id }) });
    }
    return fetch(input, init);
  };
  const client = new ClientV2({ name: 'modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: MODERN } } });
  await client.connect(new TransportV2(url, { fetch: recording }));
  return client;
}

/** A 2026-07-28 `notifications/cancelled`, as a client that POSTs one would send it. */
const postCancelled = (requestId: string | number) =>
  fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': MODERN,
      'mcp-method': 'notifications/cancelled',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: {
        requestId,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': MODERN,
          'io.modelcontextprotocol/clientInfo': { name: 'other', version: '1' },
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    }),
  });

describe('MCP cancellation without a session (2026-07-28)', () => {
  it("another client's notifications/cancelled for the same request id leaves the call alone", async () => {
    const sent: { method: string; id?: string | number }[] = [];
    const client = await modernClient(sent);
    const controller = new AbortController();
    const call = client.callTool({ name: 'stuck__wait', arguments: { n: 1 } }, { signal: controller.signal }).catch((err: unknown) => err);
    const jobId = await jobOf(1);
    const requestId = sent.find((m) => m.method === 'tools/call')?.id;
    expect(requestId).toBeDefined();
    // Anyone else without a session names the same id: nothing says it is the caller, so nothing is cancelled.
    const res = await postCancelled(requestId!);
    expect(res.status).toBeLessThan(300);
    await settle();
    expect(await stateOf(jobId)).toBe('queued');
    // The caller's own cancellation, closing its request's stream, does cancel it.
    controller.abort();
    expect(await call).toBeInstanceOf(Error);
    expect(await eventually(async () => ((await stateOf(jobId)) === 'cancelled' ? 'cancelled' : undefined), 3000)).toBe('cancelled');
    await client.close();
  });

  it('a client that closes its call cancels the job it started, never one it joined', async () => {
    const first = await modernClient();
    const second = await modernClient();
    const firstStop = new AbortController();
    const secondStop = new AbortController();
    const firstCall = first
      .callTool({ name: 'stuck__peek', arguments: { n: 2 } }, { signal: firstStop.signal })
      .catch((err: unknown) => err);
    const jobId = await jobOf(2);
    // The same read-only call from another client joins the job already queued.
    const secondCall = second
      .callTool({ name: 'stuck__peek', arguments: { n: 2 } }, { signal: secondStop.signal })
      .catch((err: unknown) => err);
    await settle();
    expect(
      (await gw.api.deps.broker.queue('stuck').getJobs(['waiting', 'prioritized'], 0, -1)).filter(
        (j) => (j.data as { parameters: { n?: number } }).parameters.n === 2,
      ),
    ).toHaveLength(1);
    secondStop.abort();
    expect(await secondCall).toBeInstanceOf(Error);
    await settle();
    expect(await stateOf(jobId)).toBe('queued');
    // The job is shared now: the client that started it no longer cancels it for the other.
    firstStop.abort();
    expect(await firstCall).toBeInstanceOf(Error);
    await settle();
    expect(await stateOf(jobId)).toBe('queued');
    await first.close();
    await second.close();
  });
});

describe('MCP tasks/cancel (2026-07-28 Tasks extension)', () => {
  it('leaves a job that two calls share to run: their task ids are the same', async () => {
    const clients = [await modernTaskClient(url), await modernTaskClient(url)];
    const first = await clients[0]!.session.callTool('stuck__peek', { n: 5 });
    const second = await clients[1]!.session.callTool('stuck__peek', { n: 5 });
    expect([first.kind, second.kind]).toEqual(['task', 'task']);
    const taskId = first.handle!.taskId;
    expect(second.handle!.taskId).toBe(taskId);
    for (const execution of [second, first]) await execution.cancel();
    await settle();
    expect(await stateOf(taskId)).toBe('queued');
    for (const c of clients) await c.close();
  });
});

describe('MCP cancellation in a 2025 session', () => {
  const connect = async () => {
    const client = new Client({ name: 'legacy', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(url));
    return client;
  };

  it("a session's notifications/cancelled cancels its own call, not the job of another session that it joined", async () => {
    const a = await connect();
    const b = await connect();
    const aStop = new AbortController();
    const bStop = new AbortController();
    const aCall = a
      .callTool({ name: 'stuck__peek', arguments: { n: 3 } }, undefined, { signal: aStop.signal })
      .catch((err: unknown) => err);
    const shared = await jobOf(3);
    const bCall = b
      .callTool({ name: 'stuck__peek', arguments: { n: 3 } }, undefined, { signal: bStop.signal })
      .catch((err: unknown) => err);
    await settle();
    // B cancels its call (the v1 client sends notifications/cancelled in its session): A's job stays.
    bStop.abort();
    expect(await bCall).toBeInstanceOf(Error);
    await settle();
    expect(await stateOf(shared)).toBe('queued');

    // A call of B's own is cancelled by B's notification.
    const own = new AbortController();
    const ownCall = b
      .callTool({ name: 'stuck__wait', arguments: { n: 4 } }, undefined, { signal: own.signal })
      .catch((err: unknown) => err);
    const ownJob = await jobOf(4);
    await settle();
    own.abort();
    expect(await ownCall).toBeInstanceOf(Error);
    expect(await eventually(async () => ((await stateOf(ownJob)) === 'cancelled' ? 'cancelled' : undefined), 3000)).toBe('cancelled');
    aStop.abort();
    await aCall;
    await a.close();
    await b.close();
  });
});
