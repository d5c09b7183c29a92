import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { startGateway, type Running } from './harness';

/**
 * The operators' console in a real headless browser (Debian's chromium through playwright-core):
 * the status page renders every service and agent and follows the shared state live; the queue UI loads
 * behind the admin token.
 */
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const ADMIN = 'console-admin-token-0123456789';

let backend: TestBackend;
let gw: Running;
let browser: Browser;
let base: string;

beforeAll(async () => {
  if (!CHROMIUM) throw new Error('chromium is not installed: apt-get install chromium (.ci/run does it)');
  backend = await startBackend((req) => (req.path.startsWith('/boom') ? { status: 500, body: {} } : { status: 200, body: { ok: true } }));
  gw = await startGateway({
    security: { adminToken: ADMIN },
    retryPolicy: { maxAttempts: 1, backoffStrategy: 'linear', initialDelay: 10, maxDelay: 10, jitter: false },
    services: {
      users: { endpoint: backend.url, operations: [{ name: 'get', method: 'GET', path: '/ok' }] },
      payments: {
        endpoint: backend.url,
        circuitBreaker: { failureThreshold: 2, recoveryTimeout: 60_000, halfOpenMaxCalls: 1 },
        operations: [{ name: 'charge', method: 'POST', path: '/boom' }],
      },
    },
  });
  base = `http://127.0.0.1:${gw.api.address!.port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gw?.close();
  await backend?.close();
});

it('the status page needs the admin token, renders every service and agent, and follows the shared state live', async () => {
  const denied = await gw.http.get('/dashboard');
  expect(denied.status).toBe(401);
  expect(denied.headers['www-authenticate']).toMatch(/^Basic/);
  expect((await gw.http.get('/dashboard/status').auth('ops', 'wrong-token')).status).toBe(401);

  const context = await browser.newContext({ httpCredentials: { username: 'ops', password: ADMIN } });
  const page = await context.newPage();
  await page.goto(`${base}/`);
  expect(page.url()).toBe(`${base}/dashboard`);
  const users = page.locator('tr[data-service="users"]');
  const payments = page.locator('tr[data-service="payments"]');
  await users.waitFor();
  await expect(payments.getAttribute('data-circuit')).resolves.toBe('closed');
  expect(await users.locator('td').nth(2).textContent()).toMatch(/50 \/ 50 tokens/);

  // Traffic changes the shared state; the open page follows without a reload.
  // Inbound auth is off here: the agent is the one each request names.
  const metadata = { agentId: 'planner' };
  for (let i = 0; i < 3; i++) await gw.http.post('/mcp/request').send({ service: 'users', operation: 'get', metadata });
  for (let i = 0; i < 2; i++) await gw.http.post('/mcp/request').send({ service: 'payments', operation: 'charge', metadata });
  await page.waitForSelector('tr[data-service="payments"][data-circuit="open"]', { timeout: 5000 });
  expect(await payments.locator('td').nth(1).textContent()).toMatch(/^open/);
  await page.waitForFunction(() => /success 3/.test(document.querySelector('tr[data-service="users"]')?.textContent ?? ''), undefined, {
    timeout: 5000,
  });

  // The agents table: a row per agent and service, with its share of successes and its top error.
  const agentRow = (service: string) => page.locator(`tr[data-agent="planner"][data-agent-service="${service}"]`);
  await agentRow('payments').waitFor({ timeout: 5000 });
  // Both rows' counts: the workers flush usage every 250 ms, and the page refreshes every second.
  await page.waitForFunction(
    () =>
      ['users:3', 'payments:2'].every((want) => {
        const [service, n] = want.split(':');
        const cell = document.querySelector(`tr[data-agent="planner"][data-agent-service="${service}"] td:nth-child(3)`);
        return cell?.textContent === n;
      }),
    undefined,
    { timeout: 5000 },
  );
  const cells = async (service: string) => (await agentRow(service).locator('td').allTextContents()).slice(0, 5);
  expect(await cells('users')).toEqual(['planner', 'users', '3', '100 %', '–']);
  expect(await cells('payments')).toEqual(['planner', 'payments', '2', '0 %', 'BACKEND_ERROR 2']);
  expect(await agentRow('users').locator('td').nth(5).textContent()).toMatch(/^\d+(\.\d)? ms$/);

  // The screenshot shows the services: the table is drawn, sized, and not blank.
  const shot = await page.locator('table').first().screenshot();
  expect(shot.subarray(1, 4).toString()).toBe('PNG');
  const width = shot.readUInt32BE(16);
  const height = shot.readUInt32BE(20);
  expect(width).toBeGreaterThan(600);
  expect(height).toBeGreaterThan(80);
  const box = await payments.boundingBox();
  expect(box!.height).toBeGreaterThan(10);
  await context.close();
});

it('the queue UI (bull-board) loads behind the admin token and lists both lanes of each service queue', async () => {
  const context = await browser.newContext({ httpCredentials: { username: 'ops', password: ADMIN } });
  const page = await context.newPage();
  const res = await page.goto(`${base}/admin/queues`);
  expect(res!.status()).toBe(200);
  await page.waitForSelector('text={users}', { timeout: 10_000 });
  expect(await page.content()).toContain('{payments}');
  await context.close();
  const api = await gw.http.get('/admin/queues/api/queues').set('X-Admin-Token', ADMIN);
  expect(api.status).toBe(200);
  expect(api.body.queues.map((q: { name: string }) => q.name).sort()).toEqual([
    '{payments}',
    '{payments}urgent',
    '{users}',
    '{users}urgent',
  ]);
});

it("the API reference page renders the gateway's own operations from /openapi.json, loading nothing from another host", async () => {
  const page = await browser.newPage();
  const elsewhere: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(base)) elsewhere.push(r.url());
  });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${base}/docs`);
  // Swagger UI renders one block per operation.
  await page.locator('.opblock').first().waitFor({ timeout: 15_000 });
  expect(await page.locator('.opblock').count()).toBeGreaterThan(20);
  expect(await page.locator('.opblock-summary-path', { hasText: '/mcp/request' }).first().textContent()).toContain('/mcp/request');
  expect(await page.locator('.info .title').textContent()).toContain('MCP Gateway');
  expect(elsewhere).toEqual([]);
  expect(errors).toEqual([]);
  await page.screenshot({ path: '/tmp/mcp-gateway-docs.png' });
  await page.close();
});

it('charts the last hour of each service, from the series the gateway keeps in Redis', async () => {
  for (let i = 0; i < 5; i++) await gw.http.post('/mcp/request').auth('ops', ADMIN).send({ service: 'users', operation: 'get' });
  // The stats flush (workers) and the API's sample land within a second or so.
  await new Promise((r) => setTimeout(r, 1500));
  const context = await browser.newContext({
    httpCredentials: { username: 'ops', password: ADMIN },
    viewport: { width: 1300, height: 900 },
  });
  const page = await context.newPage();
  await page.goto(`${base}/dashboard`);
  const requests = page.locator('svg[data-chart="users:requests"] polyline[data-series="success"]');
  await requests.waitFor({ timeout: 15_000 });
  // One point a minute for the hour; this minute's is above the baseline (y < the chart's bottom).
  const points = ((await requests.getAttribute('points')) ?? '').trim().split(' ');
  expect(points).toHaveLength(60);
  expect(Number(points.at(-1)!.split(',')[1])).toBeLessThan(68);
  for (const kind of ['latency', 'queue', 'circuit']) expect(await page.locator(`svg[data-chart="users:${kind}"]`).count()).toBe(1);
  // The API sampled the queue and the circuit when it started: this minute has a point of each.
  for (const kind of ['queue', 'circuit'])
    expect(await page.locator(`svg[data-chart="users:${kind}"] circle`).count()).toBeGreaterThanOrEqual(1);
  await page.locator('#charts').screenshot({ path: '/tmp/mcp-gateway-charts.png' });
  await context.close();
});

it('the dead-letters page lists a failed request and replays it with a click, following the replay until it succeeds', async () => {
  const usual = (req: { path: string }) => (req.path.startsWith('/boom') ? { status: 500, body: {} } : { status: 200, body: { ok: true } });
  backend.setHandler(() => ({ status: 503, body: { down: true } }));
  const failed = await gw.http.post('/mcp/request').auth('ops', ADMIN).send({ service: 'users', operation: 'get' });
  expect(failed.body.error.code).toBe('BACKEND_ERROR');
  // The backend recovers before the replay.
  backend.setHandler(usual);
  const context = await browser.newContext({
    httpCredentials: { username: 'ops', password: ADMIN },
    viewport: { width: 1300, height: 700 },
  });
  const page = await context.newPage();
  await page.goto(`${base}/dashboard/dead-letters`);
  const row = page.locator(`tr[data-id="${failed.body.id}"]`);
  await row.waitFor();
  expect(await row.locator('td').nth(3).textContent()).toContain('BACKEND_ERROR');
  await row.locator('button.replay').click();
  await page.waitForFunction(
    (id) => document.querySelector(`tr[data-id="${id}"] td.replays`)?.textContent?.includes('completed') ?? false,
    failed.body.id as string,
    { timeout: 15_000 },
  );
  expect(await page.locator('#message').textContent()).toMatch(/^replayed /);
  await page.screenshot({ path: '/tmp/mcp-gateway-dead-letters.png' });
  await context.close();
});
