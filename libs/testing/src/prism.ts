import { freePort } from '@mcp-gateway/redis';
import { startNodeProcess } from './process';

export interface PrismMock {
  url: string;
  port: number;
  pid: number;
  /** Everything Prism logged so far: each request, the violations it found, and any crash. */
  output(): string;
  /** Stops this Prism process and waits for it to exit; rejects if Prism had died on its own. */
  stop(): Promise<void>;
}

export interface PrismOptions {
  port?: number;
  /** More `prism mock` flags, e.g. `['--dynamic']`. */
  args?: string[];
  /** How long Prism may take to load the document (about 2 s for a small one, 10 s for GitHub's). */
  startTimeoutMs?: number;
}

/** Prism's answer; its status does not matter (see {@link startPrism}). */
export interface PrismAnswer {
  headers: Headers | Record<string, string | string[] | undefined>;
  /** The body as text, or already parsed. */
  body: unknown;
}

const HOST = '127.0.0.1';
const PRISM_ERROR = 'https://stoplight.io/prism/errors#';
const BODY_PARSER_ERRORS = ['invalid_json', 'request_entity_too_large'];

/**
 * Starts `prism mock` on an OpenAPI 3.x or Swagger 2.0 document (absolute path): a backend that
 * checks every request against the document. Prism validates requests without any flag; `--errors`
 * only turns a mocked *response* that breaks the document into a 500, so it is not set.
 *
 * Prism accepted a request unless its answer is a Prism problem+json (`type` starting with
 * `https://stoplight.io/prism/errors#`), carries an `sl-violations` header listing a `request`
 * violation of severity `Error`, or is its body parser's `{"error":{"code":"invalid_json"}}`
 * (`request_entity_too_large` over 10 MB): see {@link prismRejection}. The status alone says
 * nothing: a rejected request gets the document's own 400/422/401/default answer when it has one,
 * and an accepted one any status the document lists.
 *
 * Prism does not check cookie parameters, and it dies on some parameter styles (e.g. an absent
 * array header): `stop()` then rejects with its stack.
 */
export async function startPrism(document: string, options: PrismOptions = {}): Promise<PrismMock> {
  const port = options.port ?? (await freePort());
  // startNodeProcess puts its entry last: here the document, `prism mock`'s positional argument.
  // NODE_ENV=production would make Prism fork its server into a second process.
  const prism = startNodeProcess(document, { NODE_ENV: undefined }, [
    require.resolve('@stoplight/prism-cli/dist/index.js'),
    'mock',
    '--port',
    String(port),
    '--host',
    HOST,
    ...(options.args ?? []),
  ]);
  const exited = () => prism.child.exitCode !== null || prism.child.signalCode !== null;
  const url = `http://${HOST}:${port}`;
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const started = Date.now();
  while (!(await answers(url))) {
    if (exited() || Date.now() - started > timeoutMs) {
      const why = exited() ? `exited with ${prism.child.exitCode ?? prism.child.signalCode}` : `did not answer within ${timeoutMs} ms`;
      await prism.stop('SIGKILL');
      throw new Error(`Prism on ${document} ${why}; output:\n${withoutUsage(prism.output()).slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // Prism logs the probe's request after answering it: wait for that line, so that it is not read
  // as part of the first request a test sends.
  for (const until = Date.now() + 2_000; !/\[HTTP SERVER\] get \/ .*terminated with error/.test(prism.output()) && Date.now() < until;)
    await new Promise((r) => setTimeout(r, 10));
  return {
    url,
    port,
    pid: prism.pid,
    output: prism.output,
    async stop() {
      await prism.stop('SIGTERM', 5_000);
      // Prism does not catch signals: an exit code means it had died on its own (a crash exits with 1).
      const code = prism.child.exitCode;
      if (code !== null) throw new Error(`Prism on ${document} had died with exit code ${code}; output:\n${prism.output().slice(-3000)}`);
    },
  };
}

/** Why Prism rejected the request it answered this way, or `undefined` when it accepted it. */
export function prismRejection({ headers, body }: PrismAnswer): string | undefined {
  const parsed = (typeof body === 'string' ? parseJson(body) : body) as PrismProblem | undefined;
  if (typeof parsed?.type === 'string' && parsed.type.startsWith(PRISM_ERROR)) {
    const messages = parsed.validation?.map((v) => v.message);
    return `${parsed.type.slice(PRISM_ERROR.length)}: ${messages?.length ? messages.join('; ') : parsed.detail}`;
  }
  const parserError = parsed?.error?.code;
  if (typeof parserError === 'string' && BODY_PARSER_ERRORS.includes(parserError)) return `${parserError}: ${parsed?.error?.message}`;
  const violations = parseJson(headerValue(headers, 'sl-violations') ?? '');
  const requestErrors = (Array.isArray(violations) ? (violations as Violation[]) : []).filter(
    (v) => v.location?.[0] === 'request' && v.severity === 'Error',
  );
  return requestErrors.length ? requestErrors.map((v) => v.message).join('; ') : undefined;
}

interface Violation {
  location?: string[];
  severity?: string;
  message?: string;
}

interface PrismProblem {
  type?: unknown;
  detail?: string;
  validation?: Violation[];
  error?: { code?: unknown; message?: string };
}

function headerValue(headers: PrismAnswer['headers'], name: string): string | undefined {
  if (typeof headers.get === 'function') return (headers as Headers).get(name) ?? undefined;
  const value = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Prism follows a failure with its usage text: keep what it said before. */
function withoutUsage(output: string): string {
  return output.split('\nprism mock <document>')[0]!;
}

/** Whether anything answers HTTP there (Prism answers an unknown path with a 404). */
async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}
