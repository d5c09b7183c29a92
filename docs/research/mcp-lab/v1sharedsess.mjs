// stateless SDK transport + gateway-owned Mcp-Session-Id validated against a shared store (here: a JSON file standing in for Redis)
import express from 'express';
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Server } from 'sdk1/server/index.js';
import { StreamableHTTPServerTransport } from 'sdk1/server/streamableHttp.js';
import { ListToolsRequestSchema, CallToolRequestSchema, isInitializeRequest } from 'sdk1/types.js';
const PORT = Number(process.argv[2]); const STORE = '/tmp/mcp-research/lab/sessions.json';
const load = () => { try { return JSON.parse(fs.readFileSync(STORE, 'utf8')); } catch { return {}; } };
const save = s => fs.writeFileSync(STORE, JSON.stringify(s));
const app = express(); app.use(express.json());
app.all('/mcp', async (req, res) => {
  const sid = req.headers['mcp-session-id'];
  const init = req.method === 'POST' && isInitializeRequest(req.body);
  if (init) { const id = randomUUID(); const s = load(); s[id] = { pv: req.body.params.protocolVersion, at: Date.now() }; save(s); res.setHeader('Mcp-Session-Id', id); }
  else if (!sid || !load()[sid]) return res.status(sid ? 404 : 400).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
  if (req.method === 'DELETE') { const s = load(); delete s[sid]; save(s); return res.status(200).end(); }
  if (req.method === 'GET') return res.status(405).set('Allow', 'POST, DELETE').end();
  const server = new Server({ name: `gw-${PORT}`, version: '0.0.1' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [{ name: 'echo', inputSchema: { type: 'object' } }] }));
  server.setRequestHandler(CallToolRequestSchema, async r => ({ content: [{ type: 'text', text: `served by ${PORT}, session ${sid}` }] }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});
app.listen(PORT, '127.0.0.1');
