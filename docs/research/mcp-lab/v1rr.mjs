// v1 client whose fetch round-robins between two processes
import { Client } from 'sdk1/client/index.js';
import { StreamableHTTPClientTransport } from 'sdk1/client/streamableHttp.js';
const ports = [3301, 3302]; let i = 0;
const rr = (url, init) => { const u = new URL(url); u.port = String(ports[i++ % 2]); return fetch(u, init); };
const t = new StreamableHTTPClientTransport(new URL('http://127.0.0.1:3301/mcp'), { fetch: rr });
const c = new Client({ name: 'rr', version: '1' });
await c.connect(t);
console.log('session', t.sessionId, 'pv', t.protocolVersion);
for (let k = 0; k < 3; k++) console.log((await c.callTool({ name: 'echo', arguments: {} })).content[0].text);
await t.terminateSession(); console.log('terminated; sessionId now', t.sessionId);
const r = await fetch('http://127.0.0.1:3302/mcp', { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': 'stale' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
console.log('unknown session ->', r.status, await r.text());
