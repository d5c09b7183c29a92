// The backend every scenario calls: plain node http, a small JSON answer. Run as its own process.
const http = require('node:http');
const body = JSON.stringify({ ok: true, item: { id: 42, name: 'Item 42' } });
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('ready\n'));
