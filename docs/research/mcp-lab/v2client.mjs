import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
const url = process.argv[2]; const mode = process.argv[3];
const vn = mode === 'pin' ? { mode: { pin: '2026-07-28' } } : mode === 'auto' ? { mode: 'auto' } : { mode: 'legacy' };
const c = new Client({ name: 'c2', version: '1' }, { versionNegotiation: vn });
await c.connect(new StreamableHTTPClientTransport(new URL(url)));
console.log('negotiated', c.getNegotiatedProtocolVersion(), 'era', c.getProtocolEra?.());
console.log('tools', JSON.stringify((await c.listTools()).tools));
console.log('call', JSON.stringify(await c.callTool({ name: 'echo', arguments: { msg: 'hi' } })));
try { console.log('bad', JSON.stringify(await c.callTool({ name: 'echo', arguments: { msg: 5 } }))); } catch (e) { console.log('bad err', e.message); }
await c.close();
