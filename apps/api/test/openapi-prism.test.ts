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
import type { ServiceDefinition } from '@mcp-gateway/protocol';
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
const MCP_DOCS = new Set(['2.0/json/petstore.json', '3.0/json/petstore.json', '3.1/json/train-travel.json', '3.0/json/parameters-style.json']);
const SECRET = { apiKey: 'test-api-key-123', token: 'test-bearer-token-123', username: 'tester', password: 'test-password-123' };

const figures = { documents: 0, inDocuments: 0, imported: 0, schemas: 0, compiled: 0, calls: 0, accepted: 0, mcpCalls: 0, mcpAccepted: 0, lost: 0, prismCrashes: 0 };
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
function argumentsFor(schema: Json, seed: number): Json {
  // json-schema-faker sometimes throws on a value of its own making (a date out of range): another seed.
  for (let attempt = 0; ; attempt++) {
    try {
      return generateOnce(schema, seed + attempt * 7919);
    } catch (err) {
      if (attempt === 5) throw err;
    }
  }
}

function generateOnce(schema: Json, seed: number): Json {
  const jsf = require('json-schema-faker') as { option(o: Json): void; generate(s: unknown): unknown };
  jsf.option({
    random: seeded(seed),
    alwaysFakeOptionals: false,
    optionalsProbability: 0.5,
    fixedProbabilities: true,
    useExamplesValue: true,
    useDefaultValue: true,
    refDepthMax: 2,
    maxItems: 2,
    maxLength: 16,
    failOnInvalidFormat: false,
    failOnInvalidTypes: false,
    ignoreMissingRefs: true,
    omitNulls: true,
  });
  const args = (jsf.generate(schema) ?? {}) as Json;
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
    for (const [m, op] of Object.entries(item)) if (typeof op === 'object' && op !== null) out.set(`${m.toUpperCase()} ${p.split(/[#?]/)[0]}`, (op as Json).security ?? doc.security);
  }
  return out;
}

/** One document's calls: each operation through the service holding the credential it asks for. */
async function callDocument(gw: Running, file: string, prefix: string, prism: { current: PrismMock }, restart: () => Promise<void>): Promise<void> {
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
    if (client) {
      const tool = tools.find((t) => t.title === `${prefix}-none: ${op.name}`);
      const name = tool!.name.replace(`${prefix}-none__`, `${service}__`);
      const schemaArgs = argumentsFor(tool!.inputSchema as Json, seed);
      const result = await client.callTool({ name, arguments: schemaArgs }).catch((err: Error) => ({ isError: true, content: [{ type: 'text', text: err.message }] }));
      answered = Array.isArray(result.content);
      figures.mcpCalls++;
    } else {
      const res = await gw.http.post('/mcp/request').send({ service, operation: op.name, parameters: args });
      answered = res.status === 200 || typeof res.body?.error?.code === 'string';
    }
    if (!answered) figures.lost++;
    figures.calls++;
    const log = prism.current.output().slice(before);
    const crashed = !(await fetch(prism.current.url).then(() => true, () => false));
    if (crashed) {
      figures.prismCrashes++;
      figures.calls--;
      if (client) figures.mcpCalls--;
      rejections.push(`${path.basename(file)} ${op.name}: Prism crashed on it (excluded)`);
      await restart();
      continue;
    }
    const passed = /passed the validation rules/.test(log) && !/did not pass|terminated with error/.test(log);
    if (passed) {
      figures.accepted++;
      if (client) figures.mcpAccepted++;
    } else {
      const why = log.split('\n').find((l) => /✖\s+error/.test(l))?.replace(/^.*error\s+/, '') ?? 'no request reached Prism';
      rejections.push(`${path.basename(file)} ${op.name} (${service}): ${why.slice(0, 200)}`);
    }
  }
  await client?.close();
}

/** Imports, schema compilation and calls for a batch of documents, one Prism and one gateway for them. */
async function runBatch(files: string[], first: number): Promise<void> {
  const prisms = await Promise.all(files.map((f) => startPrism(f, { startTimeoutMs: 60_000 })));
  const services: Record<string, ServiceConfigInput> = {};
  files.forEach((file, i) => {
    for (const credential of Object.keys(AUTH) as Credential[]) {
      // Prism routes without the document's server path: the config says so, as an operator would.
      services[`d${first + i}-${credential}`] = { endpoint: prisms[i]!.url, definitionFile: file, basePath: '/', auth: AUTH[credential] };
    }
  });
  const gw = await startGateway({ retryPolicy: { maxAttempts: 1, backoffStrategy: 'linear', initialDelay: 10, maxDelay: 10, jitter: false }, services });
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
      const prism = { current: prisms[i]! };
      await callDocument(gw, file, `d${first + i}`, prism, async () => {
        await prism.current.stop().catch(() => undefined);
        prism.current = await startPrism(file, { port: prism.current.port, startTimeoutMs: 60_000 });
        prisms[i] = prism.current;
      });
    }
  } finally {
    await gw.close();
    await Promise.all(prisms.map((p) => p.stop().catch(() => undefined)));
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
      `calls without a result or an error: ${figures.lost}; operations that crash Prism (excluded): ${figures.prismCrashes}`,
      ...rejections.map((r) => `  rejected: ${r}`),
    ].join('\n'),
  );
  expect(figures.documents).toBe(DOCS.length);
  expect(figures.imported / figures.inDocuments).toBeGreaterThanOrEqual(0.99);
  expect(figures.compiled).toBe(figures.schemas);
  expect(figures.accepted / figures.calls).toBeGreaterThanOrEqual(0.95);
  expect(figures.mcpCalls).toBeGreaterThan(20);
  expect(figures.lost).toBe(0);
});

export { GITHUB };
