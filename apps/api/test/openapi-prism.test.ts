/**
 * Documents no one here wrote (@readme/oas-examples 2.0/3.0/3.1, GitHub's api.github.com.json),
 * imported by the gateway and called through it (REST and MCP) against Prism, a mock that checks
 * every request against the document: a call Prism accepts is one the contract allows.
 */
import fs from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ServiceConfigInput } from '@mcp-gateway/config';
import { ParameterValidator } from '@mcp-gateway/backends';
import { OperationDefinitionSchema, type ServiceDefinition } from '@mcp-gateway/protocol';
import { startPrism, type PrismMock } from '@mcp-gateway/testing';
import { startGateway, type Running } from './harness';

jest.setTimeout(600_000);

type Json = Record<string, unknown>;
const EXAMPLES = path.dirname(require.resolve('@readme/oas-examples/package.json'));
const GITHUB = require.resolve('@octokit/openapi/generated/api.github.com.json');
const DOCS = [
  ...['2.0', '3.0', '3.1'].flatMap((v) =>
    fs
      .readdirSync(path.join(EXAMPLES, v, 'json'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => path.join(EXAMPLES, v, 'json', f)),
  ),
  // Split over files: its external references resolve against its own path.
  path.join(EXAMPLES, '3.0/json/openapi-workshop/refs.json'),
];
/** MCP clients call every operation of these (the others through REST). */
const MCP_DOCS = new Set([
  '2.0/json/petstore.json',
  '3.0/json/petstore.json',
  '3.1/json/train-travel.json',
  '3.0/json/parameters-style.json',
]);
const SECRET = { apiKey: 'test-api-key-123', token: 'test-bearer-token-123', username: 'tester', password: 'test-password-123' };

const figures = {
  documents: 0,
  inDocuments: 0,
  imported: 0,
  schemas: 0,
  compiled: 0,
  calls: 0,
  sent: 0,
  accepted: 0,
  mcpCalls: 0,
  mcpAccepted: 0,
  lost: 0,
  prismCrashes: 0,
};
const rejections: string[] = [];

/** Seeded, so a run calls with the same arguments as the last. */
function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x80000000;
  };
}

/** Arguments generated from a tool's input schema (json-schema-faker), base64 arguments given real base64. */
const validator = new ParameterValidator();

/**
 * Arguments json-schema-faker makes from a tool's input schema that the schema accepts: the faker
 * knows neither `oneOf`'s "exactly one" nor `dependentRequired`, and sometimes throws on a value of
 * its own making, so it tries other seeds (as a model would try again). The last try is returned anyway.
 */
function argumentsFor(schema: Json, seed: number): Json {
  const op = OperationDefinitionSchema.parse({ name: 'probe', method: 'POST', path: '/', parameters: schema });
  let last: Json = {};
  for (let attempt = 0; attempt < 30; attempt++) {
    try {
      last = generateOnce(schema, seed + attempt * 7919, attempt % 2 === 0);
      validator.validate('probe', op, last);
      return last;
    } catch {
      // another seed
    }
  }
  return last;
}

/**
 * The schema with each `oneOf` narrowed to one branch (chosen by the seed): json-schema-faker makes
 * values that fit several open branches at once, which "exactly one" refuses; a value made for one
 * branch is what a caller means to send.
 */
function oneBranch(node: unknown, random: () => number): unknown {
  if (Array.isArray(node)) return node.map((n) => oneBranch(n, random));
  if (typeof node !== 'object' || node === null) return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) out[k] = oneBranch(v, random);
  if (Array.isArray(out.oneOf) && out.oneOf.length > 0) {
    const chosen = out.oneOf[Math.floor(random() * out.oneOf.length)];
    delete out.oneOf;
    out.allOf = [...((out.allOf as unknown[] | undefined) ?? []), chosen];
  }
  return out;
}

function generateOnce(schema: Json, seed: number, useExamples: boolean): Json {
  const jsf = require('json-schema-faker') as {
    option(o: Json): void;
    format(name: string, fn: () => string): void;
    generate(s: unknown): unknown;
  };
  // OpenAPI's own formats: byte is base64 text.
  jsf.format('byte', () => Buffer.from(`bytes ${seed}`).toString('base64'));
  jsf.option({
    random: seeded(seed),
    alwaysFakeOptionals: false,
    optionalsProbability: 0.5,
    fixedProbabilities: true,
    // A document's example is not always valid against its own schema: every other try goes without.
    useExamplesValue: useExamples,
    useDefaultValue: true,
    refDepthMax: 2,
    maxItems: 2,
    failOnInvalidFormat: false,
    failOnInvalidTypes: false,
    ignoreMissingRefs: true,
    omitNulls: true,
  });
  const args = (jsf.generate(oneBranch(schema, seeded(seed + 1))) ?? {}) as Json;
  const props = (schema.properties ?? {}) as Record<string, Json>;
  for (const [name, prop] of Object.entries(props)) {
    if (!(name in args)) continue;
    if (prop.contentEncoding === 'base64') args[name] = Buffer.from(`bytes of ${name}`).toString('base64');
    const items = prop.items as Json | undefined;
    if (items?.contentEncoding === 'base64') args[name] = [Buffer.from(`bytes of ${name}`).toString('base64')];
  }
  return args;
}

/** The credential kinds that satisfy one alternative of an operation's security, or 'none'. */
type Credential = 'none' | 'key' | 'bearer' | 'basic';
function credentialFor(doc: Json, security: unknown): Credential | undefined {
  const schemes = ((doc.components as Json | undefined)?.securitySchemes ?? doc.securityDefinitions ?? {}) as Record<string, Json>;
  if (!Array.isArray(security) || security.length === 0) return 'none';
  for (const alt of security as Json[]) {
    const names = Object.keys(alt);
    if (names.length === 0) return 'none';
    if (names.length > 1) continue;
    const s = schemes[names[0]!];
    if (!s) continue;
    if (s.type === 'apiKey') return 'key';
    if (s.type === 'oauth2' || s.type === 'openIdConnect' || (s.type === 'http' && /^bearer$/i.test(String(s.scheme)))) return 'bearer';
    if (s.type === 'basic' || (s.type === 'http' && /^basic$/i.test(String(s.scheme)))) return 'basic';
  }
  return undefined;
}

/** Mocked 5xx answers must not open the circuit, nor the calls wait for tokens: every operation is called once. */
const UNLIMITED = {
  circuitBreaker: { failureThreshold: 10_000, recoveryTimeout: 1000, halfOpenMaxCalls: 1 },
  rateLimit: { requestsPerMinute: 600_000, burstLimit: 10_000 },
};

const AUTH: Record<Credential, ServiceConfigInput['auth']> = {
  none: { type: 'none' },
  key: { type: 'api-key', credentials: { apiKey: SECRET.apiKey } },
  bearer: { type: 'bearer', credentials: { token: SECRET.token } },
  basic: { type: 'basic', credentials: { username: SECRET.username, password: SECRET.password } },
};

/** Each operation's security, by operation name as the gateway imports it (method + path are the key). */
function securityByRoute(doc: Json): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [p, item] of Object.entries((doc.paths ?? {}) as Record<string, Json>)) {
    for (const [m, op] of Object.entries(item))
      if (typeof op === 'object' && op !== null) out.set(`${m.toUpperCase()} ${p.split(/[#?]/)[0]}`, (op as Json).security ?? doc.security);
  }
  return out;
}

/** One document's calls: each operation through the service holding the credential it asks for. */
async function callDocument(
  gw: Running,
  file: string,
  prefix: string,
  prism: { current: PrismMock },
  restart: () => Promise<void>,
): Promise<void> {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
  const security = securityByRoute(doc);
  const def = (await gw.http.get(`/mcp/services/${prefix}-none/definition`)).body as ServiceDefinition;
  const useMcp = MCP_DOCS.has(path.relative(EXAMPLES, file));
  const client = useMcp ? new Client({ name: 'prism-test', version: '1' }) : undefined;
  if (client) await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${gw.api.address!.port}/mcp`)));
  const tools = client ? (await client.listTools()).tools : [];
  let seed = 1;
  for (const op of def.operations) {
    const credential = credentialFor(doc, security.get(`${op.method} ${op.path}`)) ?? 'none';
    const service = `${prefix}-${credential}`;
    const args = argumentsFor(op.parameters as Json, seed++);
    const before = prism.current.output().length;
    let answered: boolean;
    let gatewaySaid = '';
    if (client) {
      const tool = tools.find((t) => t.title === `${prefix}-none: ${op.name}`);
      const name = tool!.name.replace(`${prefix}-none__`, `${service}__`);
      const schemaArgs = argumentsFor(tool!.inputSchema as Json, seed);
      const result = await client
        .callTool({ name, arguments: schemaArgs })
        .catch((err: Error) => ({ isError: true, content: [{ type: 'text', text: err.message }] }));
      answered = Array.isArray(result.content);
      figures.mcpCalls++;
    } else {
      const res = await gw.http.post('/mcp/request').send({ service, operation: op.name, parameters: args });
      answered = res.status === 200 || typeof res.body?.error?.code === 'string';
      gatewaySaid = res.status === 200 ? '' : `${res.body?.error?.code}: ${res.body?.error?.message}`;
    }
    if (!answered) figures.lost++;
    figures.calls++;
    const why = await verdict(prism.current, before);
    const reached = why !== NEVER_SENT;
    const crashed = !alive(prism.current.pid);
    if (crashed) {
      figures.prismCrashes++;
      figures.calls--;
      if (client) figures.mcpCalls--;
      rejections.push(`${path.basename(file)} ${op.name}: Prism crashed on it (excluded)`);
      await restart();
      continue;
    }
    if (reached) figures.sent++;
    if (why === undefined) {
      figures.accepted++;
      if (client) figures.mcpAccepted++;
    } else
      rejections.push(
        `${path.basename(file)} ${op.name} (${service}): ${why.slice(0, 200)}${why === NEVER_SENT ? ` (gateway: ${gatewaySaid.slice(0, 200)})` : ''}`,
      );
  }
  await client?.close();
}

/** Imports, schema compilation and calls for a batch of documents, one Prism and one gateway for them. */
/** Operations the document lists under `paths` (one of webhooks only has none, and Prism will not mock it). */
function operationCount(file: string): number {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { paths?: Record<string, Json> };
  return Object.values(doc.paths ?? {}).reduce(
    (n, item) => n + Object.keys(item).filter((k) => /^(get|put|post|delete|options|head|patch|trace)$/.test(k)).length,
    0,
  );
}

/** One Prism per document that has operations; every one started is stopped if another fails to start. */
async function startPrisms(files: string[]): Promise<(PrismMock | undefined)[]> {
  const started = await Promise.allSettled(
    files.map((f) => (operationCount(f) > 0 ? startPrism(f, { startTimeoutMs: 60_000 }) : Promise.resolve(undefined))),
  );
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((r) => (r.status === 'fulfilled' ? r.value?.stop().catch(() => undefined) : undefined)));
    throw failed.reason;
  }
  return started.map((r) => (r as PromiseFulfilledResult<PrismMock | undefined>).value);
}

async function runBatch(files: string[], first: number): Promise<void> {
  const prisms = await startPrisms(files);
  const services: Record<string, ServiceConfigInput> = {};
  files.forEach((file, i) => {
    for (const credential of Object.keys(AUTH) as Credential[]) {
      // Prism routes without the document's server path: the config says so, as an operator would.
      services[`d${first + i}-${credential}`] = {
        endpoint: prisms[i]?.url ?? 'http://127.0.0.1:9',
        definitionFile: file,
        basePath: '/',
        auth: AUTH[credential],
        ...UNLIMITED,
      };
    }
  });
  const gw = await startGateway({
    retryPolicy: { maxAttempts: 1, backoffStrategy: 'linear', initialDelay: 10, maxDelay: 10, jitter: false },
    services,
  });
  const ajv = new Ajv2020({ strict: true, strictTypes: false, strictRequired: false, strictTuples: false, validateFormats: false });
  try {
    for (const [i, file] of files.entries()) {
      const def = (await gw.http.get(`/mcp/services/d${first + i}-none/definition`)).body as ServiceDefinition;
      figures.documents++;
      figures.inDocuments += def.document!.operationsInDocument;
      figures.imported += def.operations.length;
      for (const op of def.operations) {
        for (const schema of [op.parameters, op.outputSchema].filter(Boolean)) {
          figures.schemas++;
          try {
            ajv.compile(schema as Json);
            figures.compiled++;
          } catch (err) {
            rejections.push(`${path.basename(file)} ${op.name}: schema does not compile: ${(err as Error).message}`);
          }
        }
      }
      if (!prisms[i]) continue;
      const prism = { current: prisms[i]! };
      await callDocument(gw, file, `d${first + i}`, prism, async () => {
        await prism.current.stop().catch(() => undefined);
        prism.current = await startPrism(file, { port: prism.current.port, startTimeoutMs: 60_000 });
        prisms[i] = prism.current;
      });
    }
  } finally {
    await gw.close();
    await Promise.all(prisms.map((p) => p?.stop().catch(() => undefined)));
  }
}

it('imports every operation of real documents, with 2020-12 schemas, and Prism accepts the calls made with generated arguments', async () => {
  for (let i = 0; i < DOCS.length; i += 6) await runBatch(DOCS.slice(i, i + 6), i);
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)}%`;
  console.log(
    [
      `OpenAPI documents: ${figures.documents} (@readme/oas-examples 2.0, 3.0, 3.1)`,
      `operations imported: ${figures.imported} / ${figures.inDocuments} (${pct(figures.imported, figures.inDocuments)})`,
      `tool schemas compiling as JSON Schema 2020-12 (input and output): ${figures.compiled} / ${figures.schemas} (${pct(figures.compiled, figures.schemas)})`,
      `calls accepted by Prism: ${figures.accepted} / ${figures.calls} (${pct(figures.accepted, figures.calls)}), of which MCP ${figures.mcpAccepted} / ${figures.mcpCalls}`,
      `  of the calls the gateway sent: ${figures.accepted} / ${figures.sent} (${pct(figures.accepted, figures.sent)}); the others it refused, naming the argument, before sending (no valid arguments could be generated)`,
      `calls without a result or an error: ${figures.lost}; operations that crash Prism (excluded): ${figures.prismCrashes}`,
      ...rejections.map((r) => `  rejected: ${r}`),
    ].join('\n'),
  );
  expect(figures.documents).toBe(DOCS.length);
  expect(figures.imported / figures.inDocuments).toBeGreaterThanOrEqual(0.99);
  expect(figures.compiled).toBe(figures.schemas);
  // Each document's own flaws (below) are part of the first figure; the gateway's requests, the second.
  expect(figures.accepted / figures.calls).toBeGreaterThanOrEqual(0.92);
  expect(figures.accepted / figures.sent).toBeGreaterThanOrEqual(0.95);
  expect(figures.mcpCalls).toBeGreaterThan(20);
  expect(figures.lost).toBe(0);
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const NEVER_SENT = 'no request reached Prism';
const VERDICT = /passed the validation rules|did not pass|terminated with error/;
/** Prism's errors that say nothing of the request: it found no response to mock for a request it accepted. */
const NOT_ABOUT_THE_REQUEST = /NO_RESPONSE_RESPONSE_DEFINED/;

/**
 * Prism's verdict on the request it logged since `before`: undefined when it accepted it, else the
 * first error it logged. Its log can trail its answer: wait for the verdict line (a call the gateway
 * refused never reaches Prism, so the wait is bounded).
 */
async function verdict(prism: PrismMock, before: number): Promise<string | undefined> {
  for (let waited = 0; waited < 1000 && !VERDICT.test(prism.output().slice(before)); waited += 10)
    await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 20));
  const log = prism.output().slice(before);
  const errors = log.split('\n').filter((l) => /terminated with error/.test(l) && !NOT_ABOUT_THE_REQUEST.test(l));
  if (/passed the validation rules/.test(log) && !/did not pass/.test(log) && errors.length === 0) return undefined;
  return (
    log
      .split('\n')
      .find((l) => /✖\s+error/.test(l))
      ?.replace(/^.*error\s+/, '') ?? NEVER_SENT
  );
}

it("imports GitHub's document whole, serves just the chosen tools with an include filter, and Prism accepts the calls", async () => {
  const include = [
    'repos/get',
    'repos/list-for-org',
    'issues/*',
    'pulls/list',
    'pulls/get',
    'users/get-by-username',
    'tag:gitignore',
    'method:HEAD',
  ];
  const prism = await startPrism(GITHUB, { startTimeoutMs: 120_000 });
  const gw = await startGateway({
    retryPolicy: { maxAttempts: 1, backoffStrategy: 'linear', initialDelay: 10, maxDelay: 10, jitter: false },
    services: {
      github: { endpoint: prism.url, definitionFile: GITHUB, auth: { type: 'bearer', credentials: { token: SECRET.token } }, ...UNLIMITED },
      gh: {
        endpoint: prism.url,
        definitionFile: GITHUB,
        include,
        auth: { type: 'bearer', credentials: { token: SECRET.token } },
        ...UNLIMITED,
      },
    },
  });
  try {
    let t = Date.now();
    const whole = (await gw.http.get('/mcp/services/github/definition')).body as ServiceDefinition;
    const importMs = Date.now() - t;
    expect(whole.operations.length).toBe(whole.document!.operationsInDocument);
    expect(whole.operations.length).toBeGreaterThan(1000);
    expect(whole.operations.find((o) => o.name === 'repos/get')).toMatchObject({ method: 'GET', path: '/repos/{owner}/{repo}' });

    const client = new Client({ name: 'github-test', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${gw.api.address!.port}/mcp`));
    await client.connect(transport);
    // The server's share: one tools/list over HTTP, as bytes (the SDK client then checks every schema).
    const rawList = async () => {
      const started = Date.now();
      const res = await fetch(`http://127.0.0.1:${gw.api.address!.port}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': transport.sessionId!,
          'mcp-protocol-version': '2025-11-25',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      const bytes = (await res.arrayBuffer()).byteLength;
      return { ms: Date.now() - started, bytes };
    };
    const firstList = await rawList();
    const againList = await rawList();
    t = Date.now();
    const tools = (await client.listTools()).tools;
    const listMs = Date.now() - t;
    const chosen = tools.filter((tool) => tool.name.startsWith('gh__'));
    expect(tools.filter((tool) => tool.name.startsWith('github__'))).toHaveLength(whole.operations.length);
    const chosenDef = (await gw.http.get('/mcp/services/gh/definition')).body as ServiceDefinition;
    expect(chosen.map((tool) => tool.title)).toEqual(chosenDef.operations.map((o) => `gh: ${o.name}`));
    expect(
      chosenDef.operations.every(
        (o) =>
          /^(repos\/get|repos\/list-for-org|issues\/.*|pulls\/list|pulls\/get|users\/get-by-username)$/.test(o.name) ||
          o.method === 'HEAD' ||
          o.name.startsWith('gitignore/'),
      ),
    ).toBe(true);
    expect(chosenDef.operations.length).toBeGreaterThan(30);
    expect(chosenDef.document!.filteredOut).toBe(whole.operations.length - chosenDef.operations.length);

    let accepted = 0;
    const rejected: string[] = [];
    for (const [i, tool] of chosen.entries()) {
      const before = prism.output().length;
      const result = await client.callTool({ name: tool.name, arguments: argumentsFor(tool.inputSchema as Json, 1000 + i) });
      expect(Array.isArray(result.content)).toBe(true);
      const why = await verdict(prism, before);
      if (why === undefined) accepted++;
      else rejected.push(`${tool.title}: ${why.slice(0, 200)}`);
    }
    await client.close();
    console.log(
      [
        `GitHub: ${whole.operations.length} / ${whole.document!.operationsInDocument} operations imported in ${importMs} ms (the first definition request, the document already loaded at start)`,
        `tools/list with every GitHub tool: ${tools.length} tools, ${(firstList.bytes / 1e6).toFixed(1)} MB; the server answers in ${firstList.ms} ms (${againList.ms} ms from its 5 s cache); the SDK client's listTools takes ${listMs} ms`,
        `include filter: ${chosen.length} tools; calls accepted by Prism: ${accepted} / ${chosen.length}`,
        ...rejected.map((r) => `  rejected: ${r}`),
      ].join('\n'),
    );
    expect(accepted / chosen.length).toBeGreaterThanOrEqual(0.95);
  } finally {
    await gw.close();
    await prism.stop();
  }
});

it("calls the Petstore with its api_key header, named in the config or taken from the document's scheme", async () => {
  const file = path.join(EXAMPLES, '2.0/json/petstore.json');
  const prism = await startPrism(file);
  const key = (headerName?: string): ServiceConfigInput => ({
    endpoint: prism.url,
    definitionFile: file,
    basePath: '/',
    auth: { type: 'api-key', credentials: { apiKey: SECRET.apiKey, ...(headerName ? { headerName } : {}) } },
  });
  const gw = await startGateway({ services: { named: key('api_key'), placed: key() } });
  try {
    for (const service of ['named', 'placed', 'named']) {
      const before = prism.output().length;
      const res = await gw.http.post('/mcp/request').send({ service, operation: 'getPetById', parameters: { petId: 7 } });
      expect(res.status).toBe(200);
      expect(await verdict(prism, before)).toBeUndefined();
    }
    // Without the key Prism refuses the call: the check above could fail.
    const noKey = await startGateway({ services: { bare: { endpoint: prism.url, definitionFile: file, basePath: '/' } } });
    const before = prism.output().length;
    await noKey.http.post('/mcp/request').send({ service: 'bare', operation: 'getPetById', parameters: { petId: 7 } });
    expect(await verdict(prism, before)).toMatch(/security/i);
    await noKey.close();
  } finally {
    await gw.close();
    await prism.stop();
  }
});
