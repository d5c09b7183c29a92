import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  freePort,
  startBackend,
  startNodeProcess,
  testRedisUrl,
  uniquePrefix,
  type RunningProcess,
  type TestBackend,
  ROOT,
  API,
  WORKER,
} from '@mcp-gateway/testing';
import { resultFromTaskOutcome } from '@modelcontextprotocol/ext-tasks/client';
import { modernTaskClient } from '../../api/test/modern-tasks-client';

/**
 * MCP with the real entry points: two API processes behind a round-robin "load balancer" (the
 * client's fetch alternates between them) and a worker process that serves orders (parked has none,
 * so its calls stay queued). Sessions and tasks are served by both replicas in turn: no sticky routing.
 */

let backend: TestBackend;
const procs: RunningProcess[] = [];
let portA: number;
let portB: number;
/** Which replica served each request, and the MCP method when the request named one. */
const served: { port: number; method: string | null }[] = [];
let turn = 0;
const roundRobin: typeof fetch = (input, init) => {
  const port = turn++ % 2 === 0 ? portA : portB;
  served.push({ port, method: new Headers(init?.headers).get('mcp-method') });
  const u = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
  u.port = String(port);
  return fetch(u, init);
};

beforeAll(async () => {
  backend = await startBackend((req) => ({
    status: 200,
    body: { path: req.path, worker: req.headers['x-gateway-worker'] },
    delayMs: req.path.includes('slow') ? 1000 : 0,
  }));
  [portA, portB] = [await freePort(), await freePort()];
  const env = {
    REDIS_URL: testRedisUrl(),
    MCP_REDIS_KEY_PREFIX: uniquePrefix('mcpp'),
    MCP_SERVICES: 'orders,parked',
    MCP_SERVICE_ORDERS_ENDPOINT: backend.url,
    MCP_SERVICE_ORDERS_DEFINITION: path.join(ROOT, 'apps/gateway/test/fixtures/orders.yaml'),
    MCP_SERVICE_PARKED_ENDPOINT: backend.url,
    HOST: '127.0.0.1',
    NODE_ENV: 'test',
    MCP_TASK_AFTER_MS: '300',
  };
  const worker = startNodeProcess(WORKER, { ...env, WORKER_SERVICES: 'orders' });
  const apis = [startNodeProcess(API, { ...env, PORT: String(portA) }), startNodeProcess(API, { ...env, PORT: String(portB) })];
  procs.push(worker, ...apis);
  await Promise.all([worker, ...apis].map((p) => p.waitForLog((l) => l.msg === 'worker ready' || l.msg === 'api ready')));
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGTERM', 5000)));
  await backend?.close();
});

beforeEach(() => {
  served.length = 0;
});

it('two API replicas serve one MCP session alternately, and tool calls go through the worker processes', async () => {
  const client = new Client({ name: 'lb-client', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${portA}/mcp`), { fetch: roundRobin });
  await client.connect(transport);
  const session = transport.sessionId;
  expect(session).toBeDefined();
  const tools = await client.listTools();
  expect(tools.tools.map((t) => t.name)).toEqual(['orders__getOrder', 'orders__placeOrder', 'parked__call']);
  for (let i = 0; i < 4; i++) {
    const res = await client.callTool({ name: 'orders__getOrder', arguments: { id: `o${i}` } });
    expect(res.structuredContent).toMatchObject({ path: `/orders/o${i}` });
  }
  expect(transport.sessionId).toBe(session);
  expect(new Set(served.map((s) => s.port))).toEqual(new Set([portA, portB]));
  await transport.terminateSession();
  await client.close();
});

it('a 2026-07-28 task started on one replica is polled to its end and cancelled through both', async () => {
  const { session, close } = await modernTaskClient(new URL(`http://127.0.0.1:${portA}/mcp`), roundRobin);
  const slow = await session.callTool('orders__getOrder', { id: 'slow-1' });
  expect(slow.kind).toBe('task');
  const madeOn = served.filter((s) => s.method === 'tools/call').at(-1)!.port;
  const { outcome } = await slow.settle();
  expect(outcome.status).toBe('completed');
  expect((resultFromTaskOutcome(outcome) as { structuredContent?: unknown }).structuredContent).toMatchObject({ path: '/orders/slow-1' });
  // Polled on the replica that did not make it, too: the task lives in Redis, not in a process.
  expect(served.filter((s) => s.method === 'tasks/get').map((s) => s.port)).toContain(madeOn === portA ? portB : portA);

  const parked = await session.callTool('parked__call', { operation: 'hold', parameters: {} });
  expect(parked.kind).toBe('task');
  await parked.cancel();
  expect((await parked.settle()).outcome.status).toBe('cancelled');
  for (const port of [portA, portB]) {
    const state = await fetch(`http://127.0.0.1:${port}/mcp/requests/${parked.handle!.taskId}`);
    expect(await state.json()).toMatchObject({ state: 'cancelled', error: { code: 'CANCELLED' } });
  }
  await close();
});
