import { readFile } from 'node:fs/promises';
import type { AxiosStatic } from 'axios';
import { redactUrl } from '@mcp-gateway/config';
import { isObject, type Json } from './schema';

/** An OpenAPI document read, its external references bundled in, and upgraded to 3.x when it was Swagger 2.0. */
export interface LoadedDocument {
  doc: Json;
  /** `OpenAPI 3.1.0`, `Swagger 2.0 (converted to OpenAPI 3.0)`, … */
  format: string;
  /** Where the document breaks its own spec (when checked): reported, never a reason to refuse it. */
  warnings?: string[];
}

/** Where a document comes from: an operator's file (which may reference other files) or a URL (which may not). */
export type DocumentSource = { file: string } | { url: string };

const MAX_WARNINGS = 20;

/** The first line of an error's message, every URL in it without credentials or query. */
function firstLine(err: unknown): string {
  const line = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
  return line.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (url) => redactUrl(url));
}

/** JSON or YAML text → data (the YAML parser is loaded only for what is not JSON). */
function parseText(text: string, where: string): unknown {
  if (/^\s*[{[]/.test(text)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Not JSON after all: YAML is a superset, and says what is wrong.
    }
  }
  try {
    return (require('yaml') as typeof import('yaml')).parse(text, { maxAliasCount: 10_000 });
  } catch (err) {
    throw new Error(`OpenAPI document ${where} could not be read: not valid JSON or YAML: ${firstLine(err)}`);
  }
}

/** The document in a file, read and parsed. */
async function readFileDocument(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`OpenAPI document ${file} could not be read: ${err.code ?? firstLine(err)}`);
  });
  return parseText(text, file);
}

/** Whether any `$ref` points outside the document (a file or URL): only then is a bundler needed. */
function hasExternalRef(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(hasExternalRef);
  if (!isObject(node)) return false;
  if (typeof node.$ref === 'string' && !node.$ref.startsWith('#')) return true;
  for (const v of Object.values(node)) if (typeof v === 'object' && v !== null && hasExternalRef(v)) return true;
  return false;
}

/** The document at a URL, fetched with the gateway's own limits (its address may well be internal). */
async function fetchDocument(url: string): Promise<unknown> {
  const axios = require('axios') as AxiosStatic;
  const res = await axios
    .get<string>(url, {
      timeout: 10_000,
      maxRedirects: 3,
      responseType: 'text',
      validateStatus: () => true,
      maxContentLength: 64 * 1024 * 1024,
    })
    .catch((err: unknown) => {
      throw new Error(`OpenAPI document at ${redactUrl(url)} could not be fetched: ${(err as { code?: string }).code ?? firstLine(err)}`);
    });
  if (res.status !== 200) throw new Error(`OpenAPI document at ${redactUrl(url)} answered ${res.status}`);
  return parseText(typeof res.data === 'string' ? res.data : JSON.stringify(res.data), `at ${redactUrl(url)}`);
}

/**
 * The document with its external `$ref`s (files, URLs) bundled in, resolved against the document's
 * own path or URL (json-schema-ref-parser); cycles stay references. A document fetched from a URL
 * may not reach the gateway's files through a reference.
 */
async function bundle(source: DocumentSource): Promise<Json> {
  const base = 'file' in source ? source.file : source.url;
  const where = 'file' in source ? source.file : redactUrl(source.url);
  const data = 'file' in source ? await readFileDocument(source.file) : await fetchDocument(source.url);
  if (!isObject(data)) throw new Error(`OpenAPI document ${where} could not be read: it is not an object`);
  // Most documents are one file: the bundler (and its first load) is for those that reference others.
  if (!hasExternalRef(data)) return data;
  const RefParser = require('@apidevtools/json-schema-ref-parser') as typeof import('@apidevtools/json-schema-ref-parser');
  try {
    const options = {
      resolve: {
        ...('file' in source ? {} : { file: false }),
        // Backends and their documents live on internal addresses: the URLs are the operator's, as the endpoint is.
        http: { timeout: 10_000, redirects: 3, safeUrlResolver: false },
      },
    };
    const doc = await RefParser.bundle(base, data, options as never);
    if (!isObject(doc)) throw new Error('the document is not an object');
    return doc;
  } catch (err) {
    // Any URL in the parser's reason (a referenced document's too) loses its credentials and query.
    throw new Error(`OpenAPI document ${where} could not be read: ${firstLine(err)}`);
  }
}

/** Swagger 2.0 → OpenAPI 3.0 (swagger2openapi, patching the small errors it knows how to). */
async function upgrade(doc: Json): Promise<Json> {
  const converter = require('swagger2openapi') as {
    convertObj(doc: unknown, options: Record<string, unknown>): Promise<{ openapi: unknown }>;
  };
  try {
    const { openapi } = await converter.convertObj(doc, { patch: true, warnOnly: true, resolveInternal: false });
    if (!isObject(openapi)) throw new Error('the conversion gave no document');
    return openapi;
  } catch (err) {
    throw new Error(`Swagger 2.0 document could not be converted to OpenAPI 3: ${firstLine(err)}`);
  }
}

/** The parser's complaints about the document against its spec, as warnings. */
async function specWarnings(doc: Json): Promise<string[]> {
  const parser = require('@readme/openapi-parser') as typeof import('@readme/openapi-parser');
  try {
    const result = await parser.validate(structuredClone(doc) as never);
    if (result.valid) return [];
    return result.errors.slice(0, MAX_WARNINGS).map((e) => firstLine(e.message));
  } catch (err) {
    return [firstLine(err)];
  }
}

/**
 * The document of a service, ready to import; refused only when it cannot be read as OpenAPI at all.
 * `check`: also validate it against its spec (ReadMe's parser; a few hundred ms even for a small
 * document, so it is done where an operator reads the answer: at registration).
 */
export function loadOpenApiDocument(source: DocumentSource, check = false): Promise<LoadedDocument> {
  // Services that share a document (one per include filter, say) load it once when they load together.
  const key = JSON.stringify([source, check]);
  let loading = inFlight.get(key);
  if (!loading) {
    loading = readDocument(source, check).finally(() => inFlight.delete(key));
    inFlight.set(key, loading);
  }
  return loading;
}

const inFlight = new Map<string, Promise<LoadedDocument>>();

async function readDocument(source: DocumentSource, check: boolean): Promise<LoadedDocument> {
  const original = await bundle(source);
  const swagger = typeof original.swagger === 'string' ? original.swagger : undefined;
  const openapi = typeof original.openapi === 'string' ? original.openapi : undefined;
  if (swagger !== '2.0' && !openapi?.startsWith('3.')) {
    throw new Error('not an OpenAPI document: it has neither "openapi: 3.x" nor "swagger: 2.0"');
  }
  const warnings = check ? await specWarnings(original) : undefined;
  const doc = swagger ? await upgrade(original) : original;
  if (!isObject(doc.paths) && !isObject(doc.webhooks)) throw new Error('the OpenAPI document has no paths');
  return { doc, format: swagger ? 'Swagger 2.0 (converted to OpenAPI 3.0)' : `OpenAPI ${openapi}`, ...(warnings ? { warnings } : {}) };
}
