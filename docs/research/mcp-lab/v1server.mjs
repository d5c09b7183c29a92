import express from 'express';
import { randomUUID } from 'node:crypto';
import { Server } from 'sdk1/server/index.js';
import { StreamableHTTPServerTransport } from 'sdk1/server/streamableHttp.js';
import { ListToolsRequestSchema, CallToolRequestSchema, isInitializeRequest } from 'sdk1/types.js';
import { InMemoryTaskStore } from 'sdk1/experimental/tasks/stores/in-memory.js';

const PORT = Number(process.argv[2]); const MODE = process.argv[3]; // 'stateful' | 'stateless'
const taskStore = new InMemoryTaskStore(); // per-process! use a shared implementation of TaskStore in prod
const TOOLS = [{ name: 'echo', inputSchema: { type: 'object', properties: { msg: { type: 'string' } }, required: ['msg'] }, execution: { taskSupport: 'optional' } }];

function makeServer() {
  const server = new Server({ name: `gw-${PORT}`, version: '0.0.1' }, {
    capabilities: { tools: {}, tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } } },
    taskStore,
  });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const result = { content: [{ type: 'text', text: `port=${PORT} ${JSON.stringify(req.params.arguments)}` }] };
    if (req.params.task && extra.taskStore) {
      const task = await extra.taskStore.createTask({ ttl: req.params.task.ttl ?? 60000 });
      setTimeout(() => taskStore.storeTaskResult(task.taskId, 'completed', result, extra.sessionId).catch(e => console.error('store', e.message)), 200);
      return { task };
    }
    return result;
  });
  return server;
}
const app = express(); app.use(express.json());
const transports = new Map();
app.all('/mcp', async (req, res) => {
  if (MODE === 'stateless') {
    const server = makeServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => { transport.close(); server.close(); });
    await server.connect(transport);
    return transport.handleRequest(req, res, req.body);
  }
  const sid = req.headers['mcp-session-id'];
  let transport = sid && transports.get(sid);
  if (!transport) {
    // deliberately NOT rejecting unknown ids ourselves, to see what the SDK does
    transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: id => transports.set(id, transport) });
    await makeServer().connect(transport);
  }
  await transport.handleRequest(req, res, req.body);
});
app.listen(PORT, '127.0.0.1', () => console.log('listening', PORT, MODE));
