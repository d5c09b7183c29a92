import type { NextFunction, Request, Response, Router } from 'express';
import express from 'express';
import helmet from 'helmet';
import { GatewayError } from '@mcp-gateway/protocol';
import { adminAuth } from './admin';
import { authEnabled } from './auth';
import { correlationHeader } from './context';
import type { ApiDeps } from './deps';
import { sendError } from './http-errors';
import { SERIES_STEP_MS } from '@mcp-gateway/metrics';

/** The status page shows the usage of this many agents at most (the most recently active). */
const CONSOLE_AGENTS_MAX = 100;

/**
 * The operators' console: the BullMQ queue UI at /admin/queues (read-only) and a live status page at
 * /dashboard (data from /dashboard/status: circuit, limiter, queue and latency of every service, and
 * the usage of the most recently active agents, from the shared state). Both need the admin token (Bearer, X-Admin-Token, or HTTP Basic with the token as
 * the password, so a browser can sign in). Without a token configured they are open only to a gateway
 * that is open anyway: outside production and with no inbound credential (API keys, JWTs) configured.
 */
export function operatorConsole(deps: ApiDeps): Router {
  const router = express.Router();
  const { config, registry, broker, resilience } = deps;
  const tokenAuth = adminAuth(config, { basic: true });
  const closedWhy =
    config.environment === 'production'
      ? 'The console needs MCP_ADMIN_TOKEN in production'
      : authEnabled(config)
        ? 'The console needs MCP_ADMIN_TOKEN when inbound credentials (API keys, JWTs) are configured'
        : undefined;
  const guard = (req: Request, res: Response, next: NextFunction) => {
    if (config.security.adminToken) return tokenAuth(req, res, next);
    if (closedWhy) return sendError(res, new GatewayError('FORBIDDEN', closedWhy));
    next();
  };
  // A job removed, retried or moved from the queue UI would leave its request without a result (or
  // run it again): only reads go through, whatever bull-board's own read-only checks cover.
  const readOnly = (req: Request, res: Response, next: NextFunction) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    sendError(res, new GatewayError('FORBIDDEN', 'The queue UI is read-only: cancel a request with DELETE /mcp/requests/:id'));
  };

  // bull-board renders its own page with inline script: a looser policy for its path only.
  const boardPolicy = helmet({
    contentSecurityPolicy: { directives: { 'script-src': ["'self'", "'unsafe-inline'"], 'img-src': ["'self'", 'data:'] } },
  });
  // Made on the first visit: bull-board and its UI stay out of an API process nobody opens it in.
  let board: Router | undefined;
  router.use('/admin/queues', guard, readOnly, boardPolicy, correlationHeader, (req: Request, res: Response, next: NextFunction) =>
    (board ??= queueBoard(deps))(req, res, next),
  );

  router.get('/', (_req: Request, res: Response) => res.redirect(302, '/dashboard'));
  router.get('/dashboard', guard, (_req: Request, res: Response) => {
    res.type('html').send(DASHBOARD_HTML);
  });
  router.get('/dashboard/app.js', guard, (_req: Request, res: Response) => {
    res.type('application/javascript').send(DASHBOARD_JS);
  });
  router.get('/dashboard/dead-letters', guard, (_req: Request, res: Response) => {
    res.type('html').send(DEAD_LETTERS_HTML);
  });
  router.get('/dashboard/dead-letters.js', guard, (_req: Request, res: Response) => {
    res.type('application/javascript').send(DEAD_LETTERS_JS);
  });
  router.get('/dashboard/series', guard, async (_req: Request, res: Response, next: NextFunction) => {
    try {
      const services = await Promise.all(registry.names().map(async (name) => ({ name, points: await deps.series.read(name) })));
      res.json({ stepMs: SERIES_STEP_MS, services });
    } catch (err) {
      next(err);
    }
  });
  router.get('/dashboard/status', guard, async (_req: Request, res: Response, next: NextFunction) => {
    try {
      const services = await Promise.all(
        registry.names().map(async (name) => {
          const svc = registry.require(name);
          const [circuit, limiter, queue, stats] = await Promise.all([
            resilience.breaker(name, svc),
            resilience.limiter(name, svc),
            broker.counts(name),
            deps.stats.snapshot(name),
          ]);
          return {
            name,
            circuit: circuit.state,
            failures: circuit.failures,
            tokens: Math.floor(limiter.tokens * 10) / 10,
            capacity: limiter.capacity,
            queue,
            latency: stats.latency,
            counts: stats.counts,
          };
        }),
      );
      const { agents } = await deps.usage.list(CONSOLE_AGENTS_MAX);
      res.json({ at: new Date().toISOString(), services, agents });
    } catch (err) {
      next(err);
    }
  });
  return router;
}

/** The BullMQ queue UI (bull-board), read-only, over both lanes of every service's queue, kept in step with the registry. */
function queueBoard({ registry, broker }: ApiDeps): Router {
  const { createBullBoard } = require('@bull-board/api') as typeof import('@bull-board/api');
  const { BullMQAdapter } = require('@bull-board/api/bullMQAdapter') as typeof import('@bull-board/api/bullMQAdapter');
  const { ExpressAdapter } = require('@bull-board/express') as typeof import('@bull-board/express');
  const adapter = new ExpressAdapter();
  adapter.setBasePath('/admin/queues');
  const board = createBullBoard({ queues: [], serverAdapter: adapter, options: { uiConfig: { boardTitle: 'MCP Gateway queues' } } });
  const sync = () =>
    board.replaceQueues(registry.names().flatMap((name) => broker.lanes(name).map((q) => new BullMQAdapter(q, { readOnlyMode: true }))));
  sync();
  registry.on('change', sync);
  return adapter.getRouter() as Router;
}

const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MCP Gateway — status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d2330; background: #f6f7f9; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
  #updated { color: #667; margin-bottom: 1rem; }
  table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 3px rgba(0,0,0,.08); min-width: 56rem; }
  th, td { padding: .55rem .9rem; text-align: left; border-bottom: 1px solid #e6e8ec; }
  th { background: #eef0f4; font-weight: 600; }
  .closed { color: #137333; font-weight: 600; }
  .half_open { color: #b06000; font-weight: 600; }
  .open { color: #c5221f; font-weight: 600; }
  .bar { display: inline-block; height: .55rem; background: #4a7bd0; border-radius: 2px; vertical-align: middle; margin-right: .4rem; }
  a { color: #2a5db0; }
  .charts { display: flex; gap: .8rem; flex-wrap: wrap; margin-bottom: .6rem; }
  #charts > div > h3 { font-size: .95rem; margin: .6rem 0 .3rem; }
  .chart { background: #fff; box-shadow: 0 1px 3px rgba(0,0,0,.08); padding: .4rem .6rem; }
  .chart h3 { font-size: .8rem; font-weight: 600; margin: 0 0 .2rem; color: #445; }
  .chart svg { display: block; }
  .legend { font-size: .75rem; color: #667; }
</style>
</head>
<body>
<h1>MCP Gateway</h1>
<div id="updated">loading…</div>
<table>
  <thead><tr><th>service</th><th>circuit</th><th>rate limiter</th><th>queue (waiting / active / delayed)</th><th>latency p50 / p95 / p99</th><th>ended</th></tr></thead>
  <tbody id="services"></tbody>
</table>
<h2>Agents</h2>
<table id="agents-table">
  <thead><tr><th>agent</th><th>service</th><th>requests</th><th>success</th><th>top error</th><th>mean backend</th></tr></thead>
  <tbody id="agents"><tr><td colspan="6">no agent usage yet</td></tr></tbody>
</table>
<h2>Last hour</h2>
<div id="charts"><p>loading…</p></div>
<p><a href="/dashboard/dead-letters">Dead letters</a> · <a href="/admin/queues">Queues</a> · <a href="/docs">API reference</a> · <a href="/metrics">Prometheus metrics</a></p>
<script src="/dashboard/app.js"></script>
</body>
</html>`;

const DASHBOARD_JS = `'use strict';
const ms = (v) => (v === null || v === undefined ? '–' : v + ' ms');
function cell(text, cls) { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; }
async function refresh() {
  try {
    const res = await fetch('/dashboard/status', { credentials: 'same-origin' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    const data = await res.json();
    const body = document.getElementById('services');
    body.replaceChildren();
    for (const s of data.services) {
      const tr = document.createElement('tr');
      tr.dataset.service = s.name;
      tr.dataset.circuit = s.circuit;
      tr.append(cell(s.name));
      tr.append(cell(s.circuit.replace('_', '-') + (s.failures ? ' (' + s.failures + ' failures)' : ''), s.circuit));
      const limiter = cell('');
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = Math.max(0, Math.min(1, s.tokens / s.capacity)) * 6 + 'rem';
      limiter.append(bar, document.createTextNode(s.tokens + ' / ' + s.capacity + ' tokens'));
      tr.append(limiter);
      tr.append(cell(s.queue.waiting + ' / ' + s.queue.active + ' / ' + s.queue.delayed));
      tr.append(cell(ms(s.latency.p50) + ' / ' + ms(s.latency.p95) + ' / ' + ms(s.latency.p99)));
      tr.append(cell(Object.entries(s.counts).map(([k, v]) => k + ' ' + v).join(', ') || '–'));
      body.append(tr);
    }
    renderAgents(data.agents);
    document.getElementById('updated').textContent = 'updated ' + new Date(data.at).toLocaleTimeString();
  } catch (err) {
    document.getElementById('updated').textContent = 'cannot refresh: ' + err.message;
  }
}
// One row per agent and service: requests, share of successes, the most frequent error, mean backend time.
function renderAgents(agents) {
  const body = document.getElementById('agents');
  const rows = [];
  for (const a of agents) {
    for (const [service, u] of Object.entries(a.services)) {
      const tr = document.createElement('tr');
      tr.dataset.agent = a.agent;
      tr.dataset.agentService = service;
      const ok = u.outcomes.success || 0;
      const errors = Object.entries(u.outcomes).filter(([o]) => o !== 'success').sort((x, y) => y[1] - x[1]);
      tr.append(cell(a.agent), cell(service), cell(String(u.requests)));
      tr.append(cell(u.requests ? Math.round((ok / u.requests) * 1000) / 10 + ' %' : '–'));
      tr.append(cell(errors.length ? errors[0][0] + ' ' + errors[0][1] : '–'));
      tr.append(cell(ms(u.backendMs.mean)));
      rows.push(tr);
    }
  }
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = cell('no agent usage yet');
    td.colSpan = 6;
    tr.append(td);
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}
// The last hour, a minute a point: four small charts per service, drawn as SVG.
const CHART = { w: 240, h: 70 };
const SVG = 'http://www.w3.org/2000/svg';
function chart(service, kind, title, lines, max, legend) {
  const box = document.createElement('div');
  box.className = 'chart';
  const h = document.createElement('h3');
  h.textContent = title;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('width', CHART.w);
  svg.setAttribute('height', CHART.h);
  svg.dataset.chart = service + ':' + kind;
  const top = Math.max(max, 1);
  for (const line of lines) {
    const points = [];
    line.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const x = (i / (line.values.length - 1)) * (CHART.w - 4) + 2;
      const y = CHART.h - 2 - (v / top) * (CHART.h - 4);
      points.push(x.toFixed(1) + ',' + y.toFixed(1));
    });
    const poly = document.createElementNS(SVG, 'polyline');
    poly.setAttribute('points', points.join(' '));
    poly.setAttribute('fill', 'none');
    poly.setAttribute('stroke', line.color);
    poly.setAttribute('stroke-width', '1.5');
    poly.dataset.series = line.name;
    svg.append(poly);
    // A dot a minute with data: a lone minute shows too.
    for (const p of points) {
      const [x, y] = p.split(',');
      const dot = document.createElementNS(SVG, 'circle');
      dot.setAttribute('cx', x);
      dot.setAttribute('cy', y);
      dot.setAttribute('r', '1.6');
      dot.setAttribute('fill', line.color);
      svg.append(dot);
    }
  }
  const note = document.createElement('div');
  note.className = 'legend';
  note.textContent = legend;
  box.append(h, svg, note);
  return box;
}
async function refreshCharts() {
  try {
    const res = await fetch('/dashboard/series', { credentials: 'same-origin' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    const data = await res.json();
    const rows = [];
    for (const s of data.services) {
      const pts = s.points;
      const perMin = (p, ok) => Object.entries(p.counts).filter(([o]) => (o === 'success') === ok).reduce((n, [, c]) => n + c, 0);
      const success = pts.map((p) => perMin(p, true) / 60);
      const errors = pts.map((p) => perMin(p, false) / 60);
      const p50 = pts.map((p) => p.p50);
      const p95 = pts.map((p) => p.p95);
      const queue = pts.map((p) => p.queue);
      const circuit = pts.map((p) => p.circuit);
      const peak = (xs) => Math.max(0, ...xs.filter((v) => v !== null));
      const block = document.createElement('div');
      block.dataset.service = s.name;
      const name = document.createElement('h3');
      name.textContent = s.name;
      const row = document.createElement('div');
      row.className = 'charts';
      block.append(name, row);
      row.append(
        chart(s.name, 'requests', 'requests/s by outcome', [{ name: 'success', color: '#137333', values: success }, { name: 'error', color: '#c5221f', values: errors }], peak([...success, ...errors]), 'success, errors · peak ' + peak([...success, ...errors]).toFixed(2) + '/s'),
        chart(s.name, 'latency', 'latency p50 / p95', [{ name: 'p50', color: '#4a7bd0', values: p50 }, { name: 'p95', color: '#b06000', values: p95 }], peak([...p50, ...p95]), 'peak p95 ' + peak(p95) + ' ms'),
        chart(s.name, 'queue', 'queue depth', [{ name: 'queue', color: '#4a7bd0', values: queue }], peak(queue), 'peak ' + peak(queue) + ' waiting'),
        chart(s.name, 'circuit', 'circuit state', [{ name: 'circuit', color: '#c5221f', values: circuit }], 2, '0 closed · 1 half-open · 2 open'),
      );
      rows.push(block);
    }
    document.getElementById('charts').replaceChildren(...rows);
  } catch (err) {
    document.getElementById('charts').textContent = 'cannot draw the charts: ' + err.message;
  }
}
refresh();
refreshCharts();
setInterval(refresh, 1000);
setInterval(refreshCharts, 10000);
`;

const DEAD_LETTERS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MCP Gateway — dead letters</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d2330; background: #f6f7f9; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  form { margin-bottom: 1rem; display: flex; gap: .6rem; align-items: end; }
  label { display: flex; flex-direction: column; font-size: .8rem; color: #445; }
  table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 3px rgba(0,0,0,.08); min-width: 56rem; }
  th, td { padding: .5rem .8rem; text-align: left; border-bottom: 1px solid #e6e8ec; vertical-align: top; }
  th { background: #eef0f4; font-weight: 600; }
  .unknown { color: #b06000; }
  #message { color: #667; margin-bottom: .8rem; }
  a { color: #2a5db0; }
</style>
</head>
<body>
<h1>Dead letters</h1>
<form id="filter">
  <label>service <input name="service"></label>
  <label>code <input name="code"></label>
  <label>agent <input name="agent"></label>
  <button type="submit">Filter</button>
  <button type="button" id="replay-all">Replay these</button>
</form>
<div id="message"></div>
<table>
  <thead><tr><th>request</th><th>service / operation</th><th>agent</th><th>error</th><th>failed</th><th>replays</th><th></th></tr></thead>
  <tbody id="letters"></tbody>
</table>
<p><a href="/dashboard">Status</a></p>
<script src="/dashboard/dead-letters.js"></script>
</body>
</html>`;

// Through the admin API (/mcp/dead-letters), signed in as the console is (HTTP Basic).
const DEAD_LETTERS_JS = `'use strict';
function cell(text, cls) { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; }
function filterQuery() {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData(document.getElementById('filter'))) if (v) q.set(k, v);
  return q;
}
function say(text) { document.getElementById('message').textContent = text; }
async function api(method, path, body) {
  const res = await fetch(path, { method, credentials: 'same-origin', headers: body ? { 'Content-Type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((data.error && data.error.message) || 'HTTP ' + res.status);
  return data;
}
function replaysText(letter) {
  return letter.replays.map((r) => r.id.slice(0, 8) + (r.state ? ' ' + r.state : '')).join(', ') || '–';
}
async function load() {
  try {
    const data = await api('GET', '/mcp/dead-letters?' + filterQuery());
    const rows = data.deadLetters.map((l) => {
      const tr = document.createElement('tr');
      tr.dataset.id = l.id;
      const unknown = l.error.details && l.error.details.outcome === 'unknown';
      tr.append(cell(l.id), cell(l.service + ' / ' + l.operation), cell(l.agentId || '–'));
      tr.append(cell(l.error.code + (unknown ? ' (outcome unknown)' : ''), unknown ? 'unknown' : ''));
      tr.append(cell(new Date(l.failedAt).toLocaleString()));
      const replays = cell(replaysText(l));
      replays.className = 'replays';
      tr.append(replays);
      const actions = document.createElement('td');
      const replay = document.createElement('button');
      replay.textContent = unknown ? 'Replay (force)' : 'Replay';
      replay.className = 'replay';
      replay.onclick = () => replayOne(l, unknown, replays);
      const remove = document.createElement('button');
      remove.textContent = 'Delete';
      remove.onclick = async () => {
        try { await api('DELETE', '/mcp/dead-letters/' + encodeURIComponent(l.id)); load(); } catch (err) { say('cannot delete: ' + err.message); }
      };
      actions.append(replay, document.createTextNode(' '), remove);
      tr.append(actions);
      return tr;
    });
    document.getElementById('letters').replaceChildren(...rows);
    say(data.deadLetters.length + ' dead letter(s)' + (data.truncated ? ', more not shown' : ''));
  } catch (err) { say('cannot load: ' + err.message); }
}
// Replays one, then follows its replay until it ends.
async function replayOne(letter, force, cellOfReplays) {
  if (force && !confirm('Its backend may already have acted on it. Replay anyway?')) return;
  try {
    const sent = await api('POST', '/mcp/dead-letters/' + encodeURIComponent(letter.id) + '/replay', { force });
    say('replayed ' + letter.id + ' as ' + sent.replay.id);
    for (let i = 0; i < 60; i++) {
      const now = await api('GET', '/mcp/dead-letters/' + encodeURIComponent(letter.id));
      cellOfReplays.textContent = replaysText(now);
      const last = now.replays[now.replays.length - 1];
      if (last && ['completed', 'failed', 'cancelled', 'expired'].includes(last.state)) return;
      await new Promise((r) => setTimeout(r, 500));
    }
  } catch (err) { say('cannot replay: ' + err.message); }
}
document.getElementById('filter').onsubmit = (e) => { e.preventDefault(); load(); };
document.getElementById('replay-all').onclick = async () => {
  const f = Object.fromEntries(filterQuery());
  try {
    const r = await api('POST', '/mcp/dead-letters/replay', f);
    say('replayed ' + r.replayed.length + ', refused ' + r.refused.length);
    setTimeout(load, 1000);
  } catch (err) { say('cannot replay: ' + err.message); }
};
load();
`;
