// Baseline 2: what a team without a gateway runs — node http in front of an undici pool.
const http = require('node:http');
const { Pool } = require('undici');
const pool = new Pool(process.env.TARGET, { connections: 128, pipelining: 1 });
const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  try {
    const r = await pool.request({
      method: req.method,
      path: req.url,
      headers: { 'content-type': 'application/json' },
      body: chunks.length ? Buffer.concat(chunks) : undefined,
    });
    const data = Buffer.from(await r.body.arrayBuffer());
    res.writeHead(r.statusCode, { 'content-type': 'application/json', 'content-length': data.length });
    res.end(data);
  } catch {
    res.writeHead(502);
    res.end();
  }
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('ready\n'));
