import express from 'express';
import { Server, McpServer, createMcpHandler, fromJsonSchema } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';

const TOOLS = [{ name: 'echo', description: 'Echo back', inputSchema: { type: 'object', properties: { msg: { type: 'string' } }, required: ['msg'] } }];

function lowLevelFactory(ctx) {
  const server = new Server({ name: 'gw', version: '0.0.1' }, { capabilities: { tools: {} } });
  server.setRequestHandler('tools/list', async () => ({ tools: TOOLS }));
  server.setRequestHandler('tools/call', async (req) => ({ content: [{ type: 'text', text: `era=${ctx.era} ${req.params.name}:${JSON.stringify(req.params.arguments)}` }] }));
  return server;
}
function highLevelFactory(ctx) {
  const s = new McpServer({ name: 'gw-hl', version: '0.0.1' });
  s.registerTool('echo', { description: 'Echo', inputSchema: fromJsonSchema(TOOLS[0].inputSchema) }, async (args) => ({ content: [{ type: 'text', text: `hl era=${ctx.era} ${JSON.stringify(args)}` }] }));
  return s;
}
const app = express();
app.use(express.json());
const h1 = createMcpHandler(lowLevelFactory, { onerror: e => console.error('onerror', e.message) });
const h2 = createMcpHandler(highLevelFactory, { onerror: e => console.error('onerror2', e.message) });
const n1 = toNodeHandler(h1), n2 = toNodeHandler(h2);
app.all('/mcp', (req, res) => n1(req, res, req.body));
app.all('/mcp-hl', (req, res) => n2(req, res, req.body));
const port = Number(process.env.PORT || 3111);
app.listen(port, '127.0.0.1', () => console.log('listening', port));
