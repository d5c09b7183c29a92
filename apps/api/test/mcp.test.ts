import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { resultFromTaskOutcome } from '@modelcontextprotocol/ext-tasks/client';
import { isCreateTaskResultV2, isDetailedTaskV2 } from '@modelcontextprotocol/ext-tasks/core/v2';
import { resilienceKeys } from '@mcp-gateway/resilience';
import { keysMatching, startBackend, type TestBackend } from '@mcp-gateway/testing';
import { startGateway, type Running } from './harness';
import { framed, MODERN, modernTaskClient } from './modern-tasks-client';

let backend: TestBackend;
let gw: Running;
let url: URL;

beforeAll(async () => {
  let flakyGets = 0;
  backend = await startBackend((req) => {
    if (req.path.startsWith('/fail')) return { status: 503, body: { error: 'down' } };
    if (req.path.startsWith('/flakyget'))
      return ++flakyGets === 1 ? { status: 503, body: { error: 'once' } } : { status: 200, body: { ok: flakyGets } };
    if (req.path.startsWith('/slow')) return { status: 200, body: { slow: true }, delayMs: Number(req.query.ms ?? 600) };
    return { status: 200, body: { method: req.method, path: req.path, query: req.query, body: req.body } };
  });
  gw = await startGateway(
    {
      retryPolicy: { maxAttempts: 1, backoffStrategy: 'linear', initialDelay: 10, maxDelay: 10, jitter: false },
      // A 2026-07-28 call from a client that takes tasks becomes one after 300 ms.
      mcp: { taskAfterMs: 300, streamAfterMs: 400 },
      services: {
        users: {
          endpoint: backend.url,
          description: 'User records',
          operations: [
            {
              name: 'getUser',
              description: 'One user by id',
              method: 'GET',
              path: '/users/{id}',
              parameters: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
            },
            {
              name: 'deleteUser',
              method: 'DELETE',
              path: '/users/{id}',
              parameters: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
            },
            {
              name: 'createUser',
              method: 'POST',
              path: '/users',
              parameters: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
            },
            { name: 'fail', method: 'POST', path: '/fail' },
            { name: 'slow', method: 'GET', path: '/slow', parameters: { type: 'object', properties: { ms: { type: 'integer' } } } },
            { name: 'flakyGet', method: 'GET', path: '/flakyget' },
          ],
        },
        rpc: { endpoint: backend.url },
        // No worker serves it: its calls wait in the queue.
        idle: { endpoint: backend.url, operations: [{ name: 'later', method: 'POST', path: '/later' }] },
        parked: { endpoint: backend.url, operations: [{ name: 'wait', method: 'POST', path: '/wait' }] },
        // No worker until a test starts one: what was cancelled there must never reach the backend.
        held: { endpoint: backend.url, operations: [{ name: 'wait', method: 'POST', path: '/held' }] },
        // No worker, and a short deadline: its calls end TIMEOUT.
        late: {
          endpoint: backend.url,
          timeout: 300,
          operations: [
            { name: 'write', method: 'POST', path: '/late' },
            { name: 'read', method: 'GET', path: '/late' },
          ],
        },
        // Its circuit is opened by the test that needs it open.
        tripped: {
          endpoint: backend.url,
          circuitBreaker: { failureThreshold: 1, recoveryTimeout: 60_000, halfOpenMaxCalls: 1 },
          operations: [{ name: 'op', method: 'POST', path: '/tripped' }],
        },
      },
      security: { adminToken: 'admin-token-0123456789abcdef' },
    },
    ['users', 'rpc'],
  );
  const addr = gw.api.address!;
  url = new URL(`http://127.0.0.1:${addr.port}/mcp`);
});

afterAll(async () => {
  await gw.close();
  await backend.close();
});

beforeEach(() => {
  backend.requests.length = 0;
});

async function connect(): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'test-client', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(url);
  await client.connect(transport);
  return { client, transport };
}

describe('MCP with the v1 SDK client (2025 era)', () => {
  it('initializes a session and lists every operation as a tool', async () => {
    const { client, transport } = await connect();
    expect(transport.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(client.getServerVersion()).toMatchObject({ name: 'mcp-gateway' });
    expect(client.getServerCapabilities()?.tools).toEqual({ listChanged: true });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual([
      'users__getUser',
      'users__deleteUser',
      'users__createUser',
      'users__fail',
      'users__slow',
      'users__flakyGet',
      'rpc__call',
      'idle__later',
      'parked__wait',
      'held__wait',
      'late__write',
      'late__read',
      'tripped__op',
    ]);
    const get = tools[0]!;
    expect(get).toMatchObject({
      description: 'One user by id',
      inputSchema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
      annotations: { readOnlyHint: true, idempotentHint: true, destructiveHint: false },
    });
    expect(tools[1]!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true, idempotentHint: true });
    expect(tools[2]!.annotations).toMatchObject({ readOnlyHint: false, idempotentHint: false });
    expect(await client.ping()).toEqual({});
    expect(await client.setLoggingLevel('warning')).toEqual({});
    await client.close();
  });

  it('calls a tool through the queue: the backend JSON as structuredContent and text', async () => {
    const { client } = await connect();
    const res = await client.callTool({ name: 'users__getUser', arguments: { id: 'a/b' } });
    expect(res.isError).toBeFalsy();
    expect(res.structuredContent).toMatchObject({ method: 'GET', path: '/users/a%2Fb' });
    expect(JSON.parse((res.content as { text: string }[])[0]!.text)).toEqual(res.structuredContent);
    expect(backend.requests).toHaveLength(1);
    const dyn = await client.callTool({ name: 'rpc__call', arguments: { operation: 'doThing', parameters: { x: 1 } } });
    expect(dyn.structuredContent).toMatchObject({ method: 'POST', path: '/doThing', body: { x: 1 } });
    await client.close();
  });

  it('answers failures and bad arguments as isError results an agent can act on; an unknown tool is a protocol error', async () => {
    const { client } = await connect();
    const failed = await client.callTool({ name: 'users__fail', arguments: {} });
    expect(failed.isError).toBe(true);
    expect(failed.structuredContent).toMatchObject({ error: { code: 'BACKEND_ERROR', retryable: true } });
    expect((failed.content as { text: string }[])[0]!.text).toMatch(/BACKEND_ERROR: The backend answered 503/);
    const bad = await client.callTool({ name: 'users__createUser', arguments: { name: 5 } });
    expect(bad.isError).toBe(true);
    expect(bad.structuredContent).toMatchObject({ error: { code: 'VALIDATION_ERROR' } });
    expect(JSON.stringify(bad.structuredContent)).toContain('parameters.name');
    await expect(client.callTool({ name: 'users__nope', arguments: {} })).rejects.toThrow(/Unknown tool/);
    await client.close();
  });
});

describe('MCP 2025-era exchanges on the wire', () => {
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-06-18',
        ...headers,
      },
      body: JSON.stringify(body),
    });
  const events = (text: string) =>
    text
      .split('\n\n')
      .filter((e) => e.startsWith('event: message\n'))
      .map((e) => JSON.parse(e.slice(e.indexOf('data: ') + 6)) as Record<string, unknown>);

  it('answers a tools/call as plain JSON when nothing is sent before its result', async () => {
    const res = await post({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'users__getUser', arguments: { id: 'x' } } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', id: 7, result: { structuredContent: { method: 'GET', path: '/users/x' } } });
    // Protocol errors of a request come the same way: an unknown tool, an unknown method.
    const unknownTool = await post({ jsonrpc: '2.0', id: 'u', method: 'tools/call', params: { name: 'users__nope', arguments: {} } });
    expect(unknownTool.status).toBe(200);
    expect(await unknownTool.json()).toMatchObject({
      id: 'u',
      error: { code: -32602, message: expect.stringContaining('Unknown tool: users__nope') },
    });
    const unknownMethod = await post({ jsonrpc: '2.0', id: 8, method: 'prompts/list' });
    expect(await unknownMethod.json()).toMatchObject({ id: 8, error: { code: -32601 } });
  });

  it('turns the answer into an SSE stream once progress is reported before the result', async () => {
    const res = await post({
      jsonrpc: '2.0',
      id: 'p1',
      method: 'tools/call',
      params: { name: 'users__slow', arguments: { ms: 500 }, _meta: { progressToken: 'tok' } },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const got = events(await res.text());
    expect(got.length).toBeGreaterThan(1);
    expect(got.at(-1)).toMatchObject({ jsonrpc: '2.0', id: 'p1', result: { structuredContent: { slow: true } } });
    for (const note of got.slice(0, -1)) expect(note).toMatchObject({ method: 'notifications/progress', params: { progressToken: 'tok' } });
  });

  it('turns an answer still pending after mcp.streamAfterMs into a kept-alive SSE stream', async () => {
    const res = await post({ jsonrpc: '2.0', id: 'long', method: 'tools/call', params: { name: 'users__slow', arguments: { ms: 900 } } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text();
    expect(text.startsWith(': stream open\n\n')).toBe(true);
    expect(events(text)).toEqual([
      expect.objectContaining({ id: 'long', result: expect.objectContaining({ structuredContent: { slow: true } }) }),
    ]);
  });

  it('leaves to the SDK what it does not serve itself: no SSE in Accept, a bad envelope, a batch, notifications', async () => {
    const call = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    expect((await post(call, { accept: 'application/json' })).status).toBe(406);
    const badEnvelope = await post({ jsonrpc: '1.0', id: 1, method: 'tools/list' });
    expect(badEnvelope.status).toBe(400);
    expect(await badEnvelope.json()).toMatchObject({ error: { code: -32600 } });
    const batch = await post([call, { ...call, id: 2 }]);
    expect(batch.status).toBe(200);
    expect(events(await batch.text()).map((m) => m.id)).toEqual([1, 2]);
    expect((await post({ jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
    // A 2026-07-28 envelope in the body under a 2025 header: the SDK's classifier refuses it.
    const claimed = await post({ ...call, params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } });
    expect(claimed.status).toBe(400);
    expect(await claimed.json()).toMatchObject({ error: { code: -32602, message: expect.stringContaining('_meta envelope') } });
  });

  it('a client that goes away mid-call leaves the call running to its stored result', async () => {
    const controller = new AbortController();
    const pending = fetch(url, {
      method: 'POST',
      signal: controller.signal,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'gone',
        method: 'tools/call',
        params: { name: 'users__slow', arguments: { ms: 301 }, _meta: { 'mcp-gateway/idempotencyKey': 'gone-1' } },
      }),
    }).catch((err: unknown) => err);
    for (let i = 0; i < 50 && !(await gw.api.deps.broker.status('gone-1')); i++) await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    expect(await pending).toMatchObject({ name: 'AbortError' });
    let status = await gw.api.deps.broker.status('gone-1');
    for (let i = 0; i < 100 && status?.state !== 'completed'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      status = await gw.api.deps.broker.status('gone-1');
    }
    expect(status).toMatchObject({ state: 'completed', data: { slow: true } });
    // The same key again is answered from the stored result, not run twice.
    const again = await post({
      jsonrpc: '2.0',
      id: 'again',
      method: 'tools/call',
      params: { name: 'users__slow', arguments: { ms: 301 }, _meta: { 'mcp-gateway/idempotencyKey': 'gone-1' } },
    });
    expect(await again.json()).toMatchObject({ id: 'again', result: { structuredContent: { slow: true } } });
    expect(backend.requests.filter((r) => r.path === '/slow' && r.query.ms === '301')).toHaveLength(1);
  });
});

describe('MCP: long and repeated calls', () => {
  it('reports progress while a slow call waits (queue, backend, completion)', async () => {
    const { client } = await connect();
    const seen: { progress: number; message?: string }[] = [];
    const res = await client.callTool({ name: 'users__slow', arguments: { ms: 700 } }, undefined, { onprogress: (p) => seen.push(p) });
    expect(res.structuredContent).toEqual({ slow: true });
    expect(seen.map((p) => p.message)).toEqual(expect.arrayContaining(['calling the backend']));
    expect(seen.map((p) => p.progress)).toEqual([...seen.map((p) => p.progress)].sort((a, b) => a - b));
    await client.close();
  });

  it('reports the place in the queue while a call waits for a worker', async () => {
    const { client } = await connect();
    const first = client.callTool({ name: 'parked__wait', arguments: { n: 1 } }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    const seen: string[] = [];
    const controller = new AbortController();
    const second = client
      .callTool({ name: 'parked__wait', arguments: { n: 2 } }, undefined, {
        signal: controller.signal,
        onprogress: (p) => void seen.push(String(p.message)),
      })
      .catch(() => undefined);
    for (let i = 0; i < 50 && !seen.length; i++) await new Promise((r) => setTimeout(r, 20));
    expect(seen[0]).toBe('waiting in the queue (position 2)');
    controller.abort();
    await second;
    await client.close();
    void first;
  });

  it("a call reaches the backend with the X-Correlation-ID its HTTP request was answered with, in the caller's trace", async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const client = new Client({ name: 'traced', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(url, {
        requestInit: { headers: { 'X-Correlation-ID': 'corr-mcp-7', traceparent: `00-${traceId}-00f067aa0ba902b7-01` } },
      }),
    );
    const result = await client.callTool({ name: 'users__getUser', arguments: { id: 'traced-7' } });
    expect(result.isError).toBeFalsy();
    const call = backend.requests.find((r) => r.path === '/users/traced-7')!;
    expect(call.headers['x-correlation-id']).toBe('corr-mcp-7');
    expect(String(call.headers.traceparent)).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-0[01]$`));
    await client.close();
  });

  it('a call past its deadline is a TIMEOUT result that says whether calling again joins it or runs it twice', async () => {
    const { client } = await connect();
    const [write, read] = await Promise.all([
      client.callTool({ name: 'late__write', arguments: {} }),
      client.callTool({ name: 'late__read', arguments: {} }),
    ]);
    const writeError = (write.structuredContent as { error: { code: string; retryable: boolean; message: string } }).error;
    expect(write.isError).toBe(true);
    expect(writeError).toMatchObject({ code: 'TIMEOUT', retryable: false });
    expect(writeError.message).toMatch(/may still finish \(GET \/mcp\/requests\/[^)]+\); calling again would run it a second time/);
    // A read-only call again joins its job: trying again is safe.
    expect(read.isError).toBe(true);
    expect(read.structuredContent).toMatchObject({ error: { code: 'TIMEOUT', retryable: true } });
    expect((read.structuredContent as { error: { message: string } }).error.message).not.toMatch(/second time/);
    await client.close();
  });

  it('a re-issued read-only call joins the job already running: the backend is called once', async () => {
    const a = await connect();
    const b = await connect();
    const [r1, r2] = await Promise.all([
      a.client.callTool({ name: 'users__slow', arguments: { ms: 400 } }),
      b.client.callTool({ name: 'users__slow', arguments: { ms: 400 } }),
    ]);
    expect(r1.structuredContent).toEqual({ slow: true });
    expect(r2.structuredContent).toEqual({ slow: true });
    expect(backend.requests.filter((r) => r.path === '/slow')).toHaveLength(1);
    // A non-read-only call is re-attached only through an explicit idempotency key.
    const key = { 'mcp-gateway/idempotencyKey': 'create-ada-1' };
    await a.client.callTool({ name: 'users__createUser', arguments: { name: 'Ada' }, _meta: key });
    await b.client.callTool({ name: 'users__createUser', arguments: { name: 'Ada' }, _meta: key });
    expect(backend.requests.filter((r) => r.path === '/users' && r.method === 'POST')).toHaveLength(1);
    // A read-only call that failed is tried again when re-issued, not replayed from the failure.
    const first = await a.client.callTool({ name: 'users__flakyGet', arguments: {} });
    expect(first.isError).toBe(true);
    const again = await a.client.callTool({ name: 'users__flakyGet', arguments: {} });
    expect(again.structuredContent).toEqual({ ok: 2 });
    // Nor is one that succeeded: re-issued after it ended, the read reaches the backend again (a
    // write may have come in between), though it is still within the re-attach window.
    const later = await b.client.callTool({ name: 'users__slow', arguments: { ms: 400 } });
    expect(later.structuredContent).toEqual({ slow: true });
    expect(backend.requests.filter((r) => r.path === '/slow')).toHaveLength(2);
    await a.client.close();
    await b.client.close();
  });

  it('refuses an idempotency key that cannot be a request id, rather than dropping it and running a write twice', async () => {
    const { client } = await connect();
    for (const key of ['order 7', '12345', 4242, 'k'.repeat(129)]) {
      const r = await client.callTool({
        name: 'users__createUser',
        arguments: { name: 'Ada' },
        _meta: { 'mcp-gateway/idempotencyKey': key },
      });
      expect(r.isError).toBe(true);
      const error = (r.structuredContent as { error: { code: string; message: string; retryable: boolean } }).error;
      expect(error).toMatchObject({ code: 'VALIDATION_ERROR', retryable: false });
      expect(error.message).toContain('_meta["mcp-gateway/idempotencyKey"]');
    }
    expect(backend.requests.filter((r) => r.path === '/users')).toHaveLength(0);
    await client.close();
  });

  it('cancelling a call that is still queued cancels its job; it never reaches the backend', async () => {
    const { client } = await connect();
    const controller = new AbortController();
    const pending = client.callTool({ name: 'idle__later', arguments: {} }, undefined, { signal: controller.signal });
    // The call's job: the one queued for service idle.
    let jobId: string | undefined;
    for (let i = 0; i < 50 && !jobId; i++) {
      await new Promise((r) => setTimeout(r, 20));
      for (const key of await keysMatching(gw.api.deps.redis, `${gw.config.redis.keyPrefix}:mcp:call:*`)) {
        const id = await gw.api.deps.redis.get(key);
        const rec = id ? await gw.api.deps.broker.records.get(id) : undefined;
        if (rec?.service === 'idle') jobId = id!;
      }
    }
    expect(jobId).toBeDefined();
    controller.abort();
    await expect(pending).rejects.toThrow();
    const status = await (async () => {
      for (let i = 0; i < 50; i++) {
        const s = await gw.api.deps.broker.status(jobId!);
        if (s?.state === 'cancelled') return s;
        await new Promise((r) => setTimeout(r, 20));
      }
      return gw.api.deps.broker.status(jobId!);
    })();
    expect(status).toMatchObject({ state: 'cancelled', error: { code: 'CANCELLED' } });
    await gw.startWorkers(['idle']);
    await new Promise((r) => setTimeout(r, 300));
    expect(backend.requests.filter((r) => r.path === '/later')).toHaveLength(0);
    await client.close();
  });
});

describe('MCP sessions and the stream', () => {
  it('an unknown session is 404; DELETE ends a session', async () => {
    const { client, transport } = await connect();
    const sid = transport.sessionId!;
    const unknown = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': 'not-a-session' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(unknown.status).toBe(404);
    await transport.terminateSession();
    const after = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(after.status).toBe(404);
    await client.close();
  });

  it('announces a registration on the GET stream as notifications/tools/list_changed', async () => {
    const client = new Client({ name: 'watcher', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(url);
    let changed = 0;
    client.setNotificationHandler((await import('@modelcontextprotocol/sdk/types.js')).ToolListChangedNotificationSchema, async () => {
      changed += 1;
    });
    await client.connect(transport);
    await new Promise((r) => setTimeout(r, 200));
    const reg = await fetch(new URL('/mcp/services', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-admin-token': 'admin-token-0123456789abcdef' },
      body: JSON.stringify({ name: 'newcomer', endpoint: backend.url, operations: [{ name: 'hello', path: '/hello' }] }),
    });
    expect(reg.status).toBe(201);
    for (let i = 0; i < 50 && changed === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(changed).toBeGreaterThanOrEqual(1);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('newcomer__hello');
    await client.close();
  });
});

describe('MCP tasks (2025-11-25, task-augmented tools/call)', () => {
  it('a call run as a task: its id is the queue job id, polled to its result, visible at GET /mcp/requests/:id', async () => {
    const { client } = await connect();
    expect(client.getServerCapabilities()?.tasks?.requests?.tools?.call).toBeDefined();
    const messages: { type: string; task?: { taskId: string; status: string }; result?: { structuredContent?: unknown } }[] = [];
    // Arguments no other test uses: the same read-only call within 30 s would join that one's job.
    for await (const m of client.experimental.tasks.callToolStream({ name: 'users__slow', arguments: { ms: 505 } }, undefined, {
      task: { ttl: 60_000 },
    })) {
      messages.push(m as never);
    }
    const created = messages.find((m) => m.type === 'taskCreated')!;
    expect(created.task).toMatchObject({ status: 'working' });
    const taskId = created.task!.taskId;
    expect(messages.at(-1)).toMatchObject({ type: 'result', result: { structuredContent: { slow: true } } });
    const polled = await gw.http.get(`/mcp/requests/${taskId}`);
    expect(polled.body).toMatchObject({ id: taskId, state: 'completed', data: { slow: true } });
    expect((await client.experimental.tasks.getTask(taskId)).status).toBe('completed');
    expect((await client.experimental.tasks.listTasks()).tasks.map((t) => t.taskId)).toContain(taskId);
    expect(backend.requests.filter((r) => r.path === '/slow')).toHaveLength(1);
    await client.close();
  });

  it('tasks/cancel cancels a task still in the queue; another session cannot see it', async () => {
    const { client } = await connect();
    const stream = client.experimental.tasks.callToolStream({ name: 'parked__wait', arguments: {} }, undefined, { task: { ttl: 60_000 } });
    const first = await stream.next();
    const taskId = (first.value as { task: { taskId: string } }).task.taskId;
    const other = await connect();
    await expect(other.client.experimental.tasks.getTask(taskId)).rejects.toThrow(/Unknown task/);
    const cancelled = await client.experimental.tasks.cancelTask(taskId);
    expect(cancelled.status).toBe('cancelled');
    expect((await gw.http.get(`/mcp/requests/${taskId}`)).body).toMatchObject({ state: 'cancelled' });
    await expect(client.experimental.tasks.cancelTask(taskId)).rejects.toThrow(/already ended/);
    await stream.return(undefined);
    await other.client.close();
    await client.close();
  });

  it('tasks/cancel leaves a job that another call joined to run for it', async () => {
    const a = await connect();
    const b = await connect();
    const _meta = { 'mcp-gateway/idempotencyKey': 'shared-parked-1' };
    const streams = [a, b].map(({ client }) =>
      client.experimental.tasks.callToolStream({ name: 'parked__wait', arguments: {}, _meta }, undefined, { task: { ttl: 60_000 } }),
    );
    const created = [];
    for (const stream of streams) created.push(((await stream.next()).value as { task: { taskId: string } }).task.taskId);
    expect(created).toEqual(['shared-parked-1', 'shared-parked-1']);
    for (const { client } of [b, a])
      await expect(client.experimental.tasks.cancelTask('shared-parked-1')).rejects.toThrow(/another call joined its request/);
    expect((await gw.http.get('/mcp/requests/shared-parked-1')).body).toMatchObject({ state: 'queued' });
    for (const stream of streams) await stream.return(undefined);
    await a.client.close();
    await b.client.close();
  });

  /** Every message of a task-augmented call, through the v1 client's task stream. */
  const runAsTask = async (
    client: Client,
    params: { name: string; arguments: Record<string, unknown>; _meta?: Record<string, unknown> },
  ) => {
    const messages: {
      type: string;
      task?: { taskId: string; status: string; statusMessage?: string };
      result?: { structuredContent?: unknown };
      error?: { message: string; data?: unknown };
    }[] = [];
    for await (const m of client.experimental.tasks.callToolStream(params, undefined, { task: { ttl: 60_000 } })) messages.push(m as never);
    return messages;
  };

  it('a re-issued call joins the job already running: the same task, one backend call', async () => {
    const a = await connect();
    const b = await connect();
    // The same read-only call from two sessions of one caller, within the re-attach window.
    const [first, second] = await Promise.all(
      [a, b].map(({ client }) => runAsTask(client, { name: 'users__slow', arguments: { ms: 450 } })),
    );
    expect(second[0]!.task!.taskId).toBe(first[0]!.task!.taskId);
    for (const run of [first, second]) expect(run.at(-1)).toMatchObject({ type: 'result', result: { structuredContent: { slow: true } } });
    expect(backend.requests.filter((r) => r.path === '/slow')).toHaveLength(1);
    // Any call with the same idempotency key, read-only or not.
    const _meta = { 'mcp-gateway/idempotencyKey': 'task-create-ada' };
    const created = await runAsTask(a.client, { name: 'users__createUser', arguments: { name: 'Ada' }, _meta });
    const again = await runAsTask(b.client, { name: 'users__createUser', arguments: { name: 'Ada' }, _meta });
    expect([created[0]!.task!.taskId, again[0]!.task!.taskId]).toEqual(['task-create-ada', 'task-create-ada']);
    expect(again.at(-1)).toMatchObject({ type: 'result', result: { structuredContent: { body: { name: 'Ada' } } } });
    expect(backend.requests.filter((r) => r.path === '/users' && r.method === 'POST')).toHaveLength(1);
    await a.client.close();
    await b.client.close();
  });

  it('a refused call is a task already failed, whose result is the tool error with retryAfterMs and the breaker state', async () => {
    await gw.api.deps.redis.hset(
      resilienceKeys(gw.config.redis.keyPrefix, 'tripped').breaker,
      'state',
      'open',
      'openedAt',
      Date.now(),
      'failures',
      1,
    );
    const { client } = await connect();
    const messages = await runAsTask(client, { name: 'tripped__op', arguments: {} });
    expect(messages[0]).toMatchObject({
      type: 'taskCreated',
      task: { status: 'failed', statusMessage: expect.stringMatching(/^CIRCUIT_OPEN: /) },
    });
    const taskId = messages[0]!.task!.taskId;
    // The v1 client's stream ends in an error for any failed task; tasks/result has the tool result.
    expect(messages.at(-1)).toMatchObject({ type: 'error' });
    const result = await client.experimental.tasks.getTaskResult(taskId, CallToolResultSchema);
    expect(result).toMatchObject({
      isError: true,
      structuredContent: { error: { code: 'CIRCUIT_OPEN', retryable: true, circuit: 'open' } },
    });
    expect((result.structuredContent as { error: { retryAfterMs: number } }).error.retryAfterMs).toBeGreaterThan(50_000);
    expect((result.content as { text: string }[])[0]!.text).toMatch(/circuit breaker is open\. Retry after \d+ s/);
    expect(result._meta).toMatchObject({ 'io.modelcontextprotocol/related-task': { taskId } });
    expect(await client.experimental.tasks.getTask(taskId)).toMatchObject({ taskId, status: 'failed' });
    expect((await client.experimental.tasks.listTasks()).tasks).toEqual(
      expect.arrayContaining([expect.objectContaining({ taskId, status: 'failed' })]),
    );
    await expect(client.experimental.tasks.cancelTask(taskId)).rejects.toThrow(/already ended/);
    // Bad arguments alike: the tool error names the parameter.
    const bad = await runAsTask(client, { name: 'users__createUser', arguments: { name: 5 } });
    expect(bad[0]).toMatchObject({ type: 'taskCreated', task: { status: 'failed' } });
    const invalid = await client.experimental.tasks.getTaskResult(bad[0]!.task!.taskId, CallToolResultSchema);
    expect(invalid).toMatchObject({ isError: true, structuredContent: { error: { code: 'VALIDATION_ERROR' } } });
    expect(JSON.stringify(invalid.structuredContent)).toContain('parameters.name');
    // Nothing was queued for either.
    expect((await gw.api.deps.broker.counts('tripped')).waiting).toBe(0);
    expect(backend.requests).toHaveLength(0);
    await client.close();
  });

  it('when no task can be stored: an error that names the accepted request, which still finishes, or carries the refusal', async () => {
    const { client } = await connect();
    const redis = gw.api.deps.redis;
    await redis.hset(resilienceKeys(gw.config.redis.keyPrefix, 'tripped').breaker, 'state', 'open', 'openedAt', Date.now(), 'failures', 1);
    const multi = redis.multi.bind(redis);
    redis.multi = (() => {
      throw new Error('connection lost');
    }) as unknown as typeof redis.multi;
    let messages, refusal;
    try {
      messages = await runAsTask(client, { name: 'users__slow', arguments: { ms: 610 } });
      refusal = await runAsTask(client, { name: 'tripped__op', arguments: {} });
    } finally {
      redis.multi = multi;
    }
    expect(refusal).toEqual([
      {
        type: 'error',
        error: expect.objectContaining({
          message: expect.stringContaining('CIRCUIT_OPEN: '),
          data: expect.objectContaining({ code: 'CIRCUIT_OPEN', details: { circuit: 'open' } }),
        }),
      },
    ]);
    expect((refusal[0]!.error!.data as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(50_000);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({
      type: 'error',
      error: { message: expect.stringMatching(/was accepted and may still finish/), data: { retryable: false } },
    });
    const requestId = /the request (\S+) was accepted/.exec(messages[0]!.error!.message)![1]!;
    for (let i = 0; i < 50 && (await gw.http.get(`/mcp/requests/${requestId}`)).body.state !== 'completed'; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect((await gw.http.get(`/mcp/requests/${requestId}`)).body).toMatchObject({ state: 'completed', data: { slow: true } });
    await client.close();
  });
});

describe('MCP Tasks extension (2026-07-28: v2 SDK client + the official ext-tasks requester)', () => {
  it('server/discover announces the extension; a call that outlives its wait becomes a task whose id is the job id', async () => {
    const { client, session, close } = await modernTaskClient(url);
    expect(client.getServerCapabilities()?.extensions).toEqual({ 'io.modelcontextprotocol/tasks': {} });
    const execution = await session.callTool('users__slow', { ms: 1200 });
    expect(execution.kind).toBe('task');
    const taskId = execution.handle!.taskId;
    // The same id answers the REST API while the task runs.
    expect((await gw.http.get(`/mcp/requests/${taskId}`)).body).toMatchObject({
      id: taskId,
      state: expect.stringMatching(/^(queued|active)$/),
    });
    const { outcome } = await execution.settle();
    expect(outcome.status).toBe('completed');
    expect((resultFromTaskOutcome(outcome) as { structuredContent?: unknown }).structuredContent).toEqual({ slow: true });
    expect(backend.requests.filter((r) => r.path === '/slow')).toHaveLength(1);
    expect((await gw.http.get(`/mcp/requests/${taskId}`)).body).toMatchObject({ state: 'completed', data: { slow: true } });
    await close();
  });

  it('a call that ends within its wait is answered at once; a client without the extension never gets a task', async () => {
    const { session, close } = await modernTaskClient(url);
    const quick = await session.callTool('users__getUser', { id: '7' });
    expect(quick.kind).toBe('immediate');
    const { outcome } = await quick.settle();
    expect((resultFromTaskOutcome(outcome) as { structuredContent?: unknown }).structuredContent).toMatchObject({ path: '/users/7' });
    await close();
    const plain = new ClientV2({ name: 'plain', version: '1.0.0' }, { versionNegotiation: { mode: { pin: MODERN } } });
    await plain.connect(new TransportV2(url));
    expect((await plain.callTool({ name: 'users__slow', arguments: { ms: 800 } })).structuredContent).toEqual({ slow: true });
    await plain.close();
  });

  it('tasks/cancel cancels a task still in the queue; the wire shapes are the extension schemas', async () => {
    const { session, rawDispatch, close } = await modernTaskClient(url);
    const created = await rawDispatch({ method: 'tools/call', params: framed({ name: 'held__wait', arguments: {} }) });
    if (created.kind !== 'result' || !isCreateTaskResultV2(created.result)) throw new Error(`not a task: ${JSON.stringify(created)}`);
    const taskId = created.result.taskId;
    // The task lives as long as its result will: the rest of the deadline, then the result TTL.
    const lives = gw.config.defaultTimeout + gw.config.results.ttlSeconds * 1000;
    expect(created.result.ttlMs).toBeLessThanOrEqual(lives);
    expect(created.result.ttlMs).toBeGreaterThan(lives - 5000);
    const polled = await rawDispatch({ method: 'tasks/get', params: framed({ taskId }) });
    expect(polled.kind === 'result' && isDetailedTaskV2(polled.result) && polled.result.status).toBe('working');
    expect(await rawDispatch({ method: 'tasks/update', params: framed({ taskId, inputResponses: {} }) })).toMatchObject({
      kind: 'result',
      result: { resultType: 'complete' },
    });
    for (const method of ['tasks/get', 'tasks/update', 'tasks/cancel']) {
      expect(await rawDispatch({ method, params: framed({ taskId: 'no-such-task', inputResponses: {} }) })).toMatchObject({
        kind: 'error',
        error: { code: -32602 },
      });
    }
    // The 2025-11-25 tasks/list (no session here: the anonymous scope) does not list 2026-07-28 tasks.
    const listed = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tasks/list' }),
    });
    expect(((await listed.json()) as { result: { tasks: { taskId: string }[] } }).result.tasks.map((t) => t.taskId)).not.toContain(taskId);

    // Through the requester: cancel, then the task settles as cancelled and the job never runs.
    const execution = await session.callTool('held__wait', { n: 2 });
    expect(execution.kind).toBe('task');
    await execution.cancel();
    const { outcome } = await execution.settle();
    expect(outcome.status).toBe('cancelled');
    expect((await gw.http.get(`/mcp/requests/${execution.handle!.taskId}`)).body).toMatchObject({ state: 'cancelled' });
    expect(await rawDispatch({ method: 'tasks/cancel', params: framed({ taskId }) })).toMatchObject({
      kind: 'result',
      result: { resultType: 'complete' },
    });
    expect(await rawDispatch({ method: 'tasks/get', params: framed({ taskId }) })).toMatchObject({
      kind: 'result',
      result: { status: 'cancelled' },
    });
    // Once a worker serves the queue, neither cancelled call reaches the backend.
    await gw.startWorkers(['held']);
    await new Promise((r) => setTimeout(r, 300));
    expect(backend.requests.filter((r) => r.path === '/held')).toHaveLength(0);
    await close();
  });

  it('a failure after the job was accepted (its task could not be stored) names the request, which still finishes', async () => {
    const { rawDispatch, close } = await modernTaskClient(url);
    const redis = gw.api.deps.redis;
    const multi = redis.multi.bind(redis);
    redis.multi = (() => {
      throw new Error('connection lost');
    }) as unknown as typeof redis.multi;
    let answer;
    try {
      answer = await rawDispatch({ method: 'tools/call', params: framed({ name: 'users__slow', arguments: { ms: 600 } }) });
    } finally {
      redis.multi = multi;
    }
    if (answer.kind !== 'result') throw new Error(`not a tool result: ${JSON.stringify(answer)}`);
    expect(answer.result).toMatchObject({ isError: true, structuredContent: { error: { retryable: false } } });
    const requestId = (answer.result as { structuredContent: { requestId: string } }).structuredContent.requestId;
    expect(JSON.stringify(answer)).toContain(`the request ${requestId} was accepted and may still finish`);
    for (let i = 0; i < 50 && (await gw.http.get(`/mcp/requests/${requestId}`)).body.state !== 'completed'; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect((await gw.http.get(`/mcp/requests/${requestId}`)).body).toMatchObject({ state: 'completed', data: { slow: true } });
    await close();
  });
});

describe('MCP while the API process stops', () => {
  it('a call still waiting when the grace ends is told the process is shutting down (not a deadline that did not pass), with its poll link', async () => {
    const slow = await startBackend(() => ({ status: 200, body: { late: true }, delayMs: 1500 }));
    const own = await startGateway(
      { services: { late: { endpoint: slow.url, operations: [{ name: 'write', method: 'POST', path: '/w' }] } } },
      ['late'],
    );
    own.api.stopGraceMs = 300;
    const client = new Client({ name: 'stopping', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${own.api.address!.port}/mcp`)));
    try {
      const call = client.callTool({ name: 'late__write', arguments: {} });
      await new Promise((r) => setTimeout(r, 200));
      const stopping = own.api.stop();
      const result = await call;
      await stopping;
      expect(result.isError).toBe(true);
      const error = (result.structuredContent as { error: { code: string; message: string; retryable: boolean } }).error;
      expect(error).toMatchObject({ code: 'UNAVAILABLE', retryable: false });
      expect(error.message).toMatch(
        /^This gateway process is shutting down and stopped waiting for the result; the request \S+ may still finish \(GET \/mcp\/requests\/\S+\); calling again would run it a second time/,
      );
      // Each sentence ends before the advice begins.
      expect((result.content as { text: string }[])[0]!.text).toMatch(/instead\. Retrying the same call will not help\.$/);
    } finally {
      await client.close().catch(() => undefined);
      await own.close();
      await slow.close();
    }
  });
});
