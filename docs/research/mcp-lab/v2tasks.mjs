import express from 'express';
import * as z from 'zod';
import { randomUUID } from 'node:crypto';
import { Server, createMcpHandler } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
const TASKS_EXT = 'io.modelcontextprotocol/tasks';
const tasks = new Map(); // shared store stand-in (would be Redis/DB across processes)
const now = () => new Date().toISOString();
function factory(ctx) {
  const s = new Server({ name: 'gw', version: '0' }, { capabilities: { tools: {}, extensions: { [TASKS_EXT]: {} } } });
  s.setRequestHandler('tools/list', async () => ({ tools: [{ name: 'slow', inputSchema: { type: 'object' } }] }));
  s.setRequestHandler('tools/call', async (req, hctx) => {
    const t = { taskId: randomUUID(), status: 'working', createdAt: now(), lastUpdatedAt: now(), ttlMs: 60000, pollIntervalMs: 100 };
    tasks.set(t.taskId, t);
    setTimeout(() => Object.assign(t, { status: 'completed', lastUpdatedAt: now(), result: { content: [{ type: 'text', text: 'done' }] } }), 200);
    return { ...(process.env.WITH_CONTENT ? { content: [] } : {}), resultType: 'task', task: { taskId: t.taskId, status: t.status, createdAt: t.createdAt, lastUpdatedAt: t.lastUpdatedAt, ttlMs: t.ttlMs, pollIntervalMs: t.pollIntervalMs } };
  });
  s.setRequestHandler('tasks/get', { params: z.object({ taskId: z.string() }).passthrough() }, async (p) => {
    const t = tasks.get(p.taskId); if (!t) throw new Error('unknown task'); return { ...t };
  });
  s.setRequestHandler('tasks/cancel', { params: z.object({ taskId: z.string() }).passthrough() }, async (p) => ({ ...tasks.get(p.taskId), status: 'cancelled' }));
  return s;
}
const app = express(); app.use(express.json());
const n = toNodeHandler(createMcpHandler(factory, { onerror: e => console.error('srv onerror:', e.message) }));
app.all('/mcp', (req, res) => n(req, res, req.body));
const srv = app.listen(Number(process.env.P||3411), '127.0.0.1', async () => {
  const c = new Client({ name: 'c', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } }, capabilities: { extensions: { [TASKS_EXT]: {} } } });
  await c.connect(new StreamableHTTPClientTransport(new URL('http://127.0.0.1:3411/mcp')));
  const Any = z.object({}).passthrough();
  try { const r = await c.request({ method: 'tools/call', params: { name: 'slow', arguments: {} } }, Any); console.log('tools/call raw:', JSON.stringify(r)); } catch (e) { console.log('tools/call err:', e.code, e.message); }
  try { const r = await c.callTool({ name: 'slow', arguments: {} }); console.log('callTool:', JSON.stringify(r)); } catch (e) { console.log('callTool err:', e.code, e.message); }
  const id = [...tasks.keys()][0];
  await new Promise(r => setTimeout(r, 300));
  try { console.log('tasks/get via client.request:', JSON.stringify(await c.request({ method: 'tasks/get', params: { taskId: id } }, Any))); } catch (e) { console.log('client tasks/get err:', e.code, e.message); }
  // raw HTTP modern request
  const body = { jsonrpc: '2.0', id: 9, method: 'tasks/get', params: { taskId: id, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'curl', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': { extensions: { [TASKS_EXT]: {} } } } } };
  const r = await fetch('http://127.0.0.1:3411/mcp', { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tasks/get', 'mcp-name': id }, body: JSON.stringify(body) });
  console.log('raw tasks/get:', r.status, (await r.text()).slice(0, 400));
  await c.close(); srv.close(); process.exit(0);
});
