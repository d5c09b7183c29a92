import express from 'express';
import { randomUUID } from 'node:crypto';
import { Server, createMcpHandler, isLegacyRequest, isInitializeRequest } from '@modelcontextprotocol/server';
import { toNodeHandler, toWebRequest, NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
const sessions = new Map(); // stand-in for Redis shared by all gateway processes
const factory = (ctx) => {
  const s = new Server({ name: 'gw', version: '0' }, { capabilities: { tools: {} } });
  s.setRequestHandler('tools/list', async () => ({ tools: [{ name: 'echo', inputSchema: { type: 'object' } }] }));
  s.setRequestHandler('tools/call', async () => ({ content: [{ type: 'text', text: `era=${ctx.era}` }] }));
  return s;
};
const modern = toNodeHandler(createMcpHandler(factory, { legacy: 'reject' }));
async function legacy(req, res) {
  const sid = req.headers['mcp-session-id'];
  if (req.method === 'POST' && isInitializeRequest(req.body)) { const id = randomUUID(); sessions.set(id, {}); res.setHeader('Mcp-Session-Id', id); }
  else if (!sid || !sessions.has(sid)) return res.status(sid ? 404 : 400).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
  if (req.method === 'DELETE') { sessions.delete(sid); return res.status(200).end(); }
  if (req.method === 'GET') return res.status(405).set('Allow', 'POST, DELETE').end();
  const server = await factory({ era: 'legacy' });
  const t = new NodeStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { t.close(); server.close(); });
  await server.connect(t); await t.handleRequest(req, res, req.body);
}
const app = express(); app.use(express.json());
app.all('/mcp', async (req, res) => (await isLegacyRequest(await toWebRequest(req, req.body), req.body)) ? legacy(req, res) : modern(req, res, req.body));
const srv = app.listen(3511, '127.0.0.1', async () => {
  for (const vn of [{ mode: { pin: '2026-07-28' } }, { mode: 'legacy' }]) {
    const c = new Client({ name: 'c', version: '1' }, { versionNegotiation: vn });
    const t = new StreamableHTTPClientTransport(new URL('http://127.0.0.1:3511/mcp'));
    await c.connect(t);
    console.log(JSON.stringify(vn), '->', c.getNegotiatedProtocolVersion(), 'session', t.sessionId, (await c.callTool({ name: 'echo', arguments: {} })).content[0].text);
    await c.close();
  }
  srv.close(); process.exit(0);
});
