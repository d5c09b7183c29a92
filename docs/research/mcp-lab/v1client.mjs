import { Client } from 'sdk1/client/index.js';
import { StreamableHTTPClientTransport } from 'sdk1/client/streamableHttp.js';
const c = new Client({ name: 'c1', version: '1' });
const t = new StreamableHTTPClientTransport(new URL(process.argv[2]));
await c.connect(t);
console.log('v1 negotiated', c.getServerVersion(), 'sid', t.sessionId, 'pv', t.protocolVersion);
console.log('tools', JSON.stringify((await c.listTools()).tools));
console.log('call', JSON.stringify(await c.callTool({ name: 'echo', arguments: { msg: 'hi' } })));
await c.close();
