// The backend every scenario calls: plain node http, a small JSON answer (BENCH_ANSWER_BYTES: about
// that many bytes, as a list of items). Run as its own process.
const http = require('node:http');
const size = Number(process.env.BENCH_ANSWER_BYTES ?? 0);
const items = Array.from({ length: Math.ceil(size / 170) }, (_, i) => ({
  id: i,
  name: `Item ${i}`,
  tags: ['a', 'b', 'c'],
  price: i * 1.5,
  description: 'x'.repeat(100),
}));
const body = JSON.stringify({ ok: true, item: { id: 42, name: 'Item 42' }, ...(size > 0 ? { items } : {}) });
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('ready\n'));
