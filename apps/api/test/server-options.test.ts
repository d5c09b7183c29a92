import http from 'node:http';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import express, { type Request, type Response } from 'express';
import { serverOptionsFor } from '@mcp-gateway/api';

// V8's own view of an object's shape, to check what the heap pays per request in flight.
v8.setFlagsFromString('--allow-natives-syntax');
const sameShape = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
const fastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;
v8.setFlagsFromString('--no-allow-natives-syntax');

/**
 * The API's http.Server builds each request and response with the app's prototypes, so express does
 * not re-prototype them: a re-prototyped object gets a V8 shape of its own (about 6 KB of heap more
 * per request held open, 30 MB at 5,000 sync waiters).
 */
describe('serverOptionsFor', () => {
  let server: http.Server;
  let base: string;
  const held: { req: Request; res: Response; bornWith: [boolean, boolean] }[] = [];

  beforeAll(async () => {
    const app = express();
    app.use(express.json());
    app.post('/hold/:n', (req: Request, res: Response) => {
      res.locals.n = req.params.n;
      held.push({ req, res, bornWith: bornWith.get(req)! });
      if (held.length === 3)
        for (const h of held) h.res.status(200).json({ n: h.req.params.n, body: h.req.body as unknown, q: h.req.query });
    });
    const bornWith = new WeakMap<object, [boolean, boolean]>();
    server = http.createServer(serverOptionsFor(app));
    // Before express sees them: what the server built.
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) =>
      bornWith.set(req, [Object.getPrototypeOf(req) === app.request, Object.getPrototypeOf(res) === app.response]),
    );
    server.on('request', app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('builds requests and responses that express needs not change, and that share one shape', async () => {
    const answers = await Promise.all(
      [1, 2, 3].map(async (n) => {
        const r = await fetch(`${base}/hold/${n}?x=${n}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ n }),
        });
        return { status: r.status, body: (await r.json()) as unknown };
      }),
    );
    expect(answers).toEqual([1, 2, 3].map((n) => ({ status: 200, body: { n: String(n), body: { n }, q: { x: String(n) } } })));
    expect(held.map((h) => h.bornWith)).toEqual([
      [true, true],
      [true, true],
      [true, true],
    ]);
    for (const { req, res } of held) {
      expect(req).toBeInstanceOf(http.IncomingMessage);
      expect(res).toBeInstanceOf(http.ServerResponse);
    }
    // After express and the handler added their properties (params, body, locals, ...).
    const [a, b, c] = held;
    expect([sameShape(a!.req, b!.req), sameShape(b!.req, c!.req), sameShape(a!.res, b!.res), sameShape(b!.res, c!.res)]).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect([fastProperties(a!.req), fastProperties(a!.res)]).toEqual([true, true]);
  });
});
