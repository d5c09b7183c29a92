import fs from 'node:fs';
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import SonicBoom from 'sonic-boom';
import { isoTime } from '@mcp-gateway/protocol';

export type { Logger } from 'pino';

/**
 * Paths pino censors before a line is written. pino's `*` covers one level, so the common shapes
 * are listed: a bare field, a field of any logged object, and headers of a logged request/response.
 */
const SECRET_FIELDS = [
  'authorization',
  'cookie',
  'token',
  'apiKey',
  'accessToken',
  'refreshToken',
  'clientSecret',
  'adminToken',
  'password',
  'secret',
];
const SECRET_HEADERS = ['authorization', 'cookie', '"set-cookie"', '"x-api-key"', '"proxy-authorization"'];

export const REDACT_PATHS: string[] = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  ...SECRET_HEADERS.map((h) => `headers[${h.startsWith('"') ? h : JSON.stringify(h)}]`),
  ...SECRET_HEADERS.map((h) => `*.headers[${h.startsWith('"') ? h : JSON.stringify(h)}]`),
  'credentials',
  '*.credentials',
  '*.*.credentials',
];

/** The most log output held in memory while stdout is not taking it. */
const LOG_BUFFER_BYTES = 16 * 1024 * 1024;
/** Lines are written in batches of about this size… */
const LOG_BATCH_BYTES = 4096;
/** …or at most this long after they were logged. */
const LOG_FLUSH_MS = 100;

export interface LoggerSettings {
  level?: LoggerOptions['level'];
  /** Process role: api, worker, gateway. */
  name?: string;
  /** Where lines go (default stdout); tests pass a stream to read them back. */
  destination?: DestinationStream;
  /** Human-readable lines (pino-pretty) instead of JSON: for development on a terminal only. */
  pretty?: boolean;
}

/** pino JSON lines with secrets censored, to stdout unless told otherwise; `level: 'silent'` writes nothing. */
export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    ...(settings.name ? { name: settings.name } : {}),
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    base: { pid: process.pid },
    // pino's isoTime, formatted once per second (isoTime).
    timestamp: () => `,"time":"${isoTime(Date.now())}"`,
  };
  if (settings.destination) return pino(options, settings.destination);
  if (settings.pretty) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino(options, (stdoutLines ??= new LineBatches(1)));
}

/** One per process, shared by its loggers: their lines go out in the order they were logged. */
let stdoutLines: LineBatches | undefined;
/** What a write at exit waits on between tries while a full pipe drains. */
const EXIT_PAUSE = new Int32Array(new SharedArrayBuffer(4));

/**
 * Where a process's lines go: written off the event loop (sonic-boom), in batches, as a line per
 * request would be a write syscall each otherwise. Lines go out once LOG_BATCH_BYTES have gathered,
 * or at most LOG_FLUSH_MS after they were logged, and what is left when the process exits. If stdout
 * stalls, at most LOG_BUFFER_BYTES wait in memory; lines beyond are dropped, not the process.
 *
 * The batches are made here, not by sonic-boom's `minLength`: sonic-boom measures the text it holds
 * (`Buffer.byteLength`, which first copies it flat) on every write, a cost per line that grows with
 * the batch (docs/research/bench-costs.md, session 20). Handed whole batches, it pays it per batch.
 */
class LineBatches implements DestinationStream {
  private lines: string[] = [];
  private length = 0;
  private readonly out: SonicBoom;

  constructor(private readonly fd: number) {
    this.out = new SonicBoom({ fd, sync: false, maxLength: LOG_BUFFER_BYTES });
    // A write that fails (the reader gone: EPIPE) loses its lines, never the process.
    this.out.on('error', () => undefined);
    setInterval(() => this.flush(), LOG_FLUSH_MS).unref();
    process.on('exit', () => this.flushAtExit());
  }

  /**
   * Synchronously, as nothing asynchronous runs after 'exit': what sonic-boom holds (the older lines),
   * then what is gathered here. Handed to sonic-boom now, they would start a write that never ends.
   */
  private flushAtExit(): void {
    let rest = Buffer.from(this.lines.join(''));
    this.lines = [];
    try {
      this.out.flushSync();
      // A full pipe (EAGAIN) gets up to a second to drain.
      for (let waited = 0; rest.length > 0;) {
        try {
          rest = rest.subarray(fs.writeSync(this.fd, rest));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || waited >= 1000) throw err;
          Atomics.wait(EXIT_PAUSE, 0, 0, 10);
          waited += 10;
        }
      }
    } catch {
      // The reader gone: nothing left to write to.
    }
  }

  write(line: string): void {
    this.lines.push(line);
    this.length += line.length;
    if (this.length >= LOG_BATCH_BYTES) this.flush();
  }

  private flush(): void {
    if (this.lines.length === 0) return;
    const batch = this.lines.join('');
    this.lines = [];
    this.length = 0;
    this.out.write(batch);
  }
}

type LogArgs = [obj: object, msg?: string] | [msg: string];

/** Fields of a line that are all scalars: ids, names, counts, durations. */
export type ScalarFields = Record<string, string | number | boolean | undefined>;

const SECRET_KEYS = new Set([...SECRET_FIELDS, 'credentials'].map((k) => k.toLowerCase()));
const UNREDACTED = new WeakMap<Logger, Logger>();
/** Whether each field name seen so far names a secret: a line's names are a handful, asked on every line. */
const KEY_IS_SECRET = new Map<string, boolean>();

function isSecretKey(key: string): boolean {
  let secret = KEY_IS_SECRET.get(key);
  if (secret === undefined) {
    secret = SECRET_KEYS.has(key.toLowerCase());
    // Names come from code, not input; the bound only guards against a caller that makes them up.
    if (KEY_IS_SECRET.size < 1000) KEY_IS_SECRET.set(key, secret);
  }
  return secret;
}

/**
 * A line of scalar fields, without pino's redaction pass (which re-parses every redact path on every
 * line, most of a line's cost). With scalars only, the
 * one thing a redact path could match is a top-level secret key, and such a key is censored here
 * (whatever its case, which the paths do not cover).
 */
export function logScalars(logger: Logger, level: 'info' | 'warn' | 'error', fields: ScalarFields, msg: string): void {
  if (!logger.isLevelEnabled(level)) return;
  let line = fields;
  for (const key in fields) if (isSecretKey(key)) line = { ...line, [key]: '[REDACTED]' };
  let plain = UNREDACTED.get(logger);
  if (!plain) UNREDACTED.set(logger, (plain = logger.child({}, { redact: [] })));
  plain[level](line, msg);
}

export interface LazyLogger {
  debug(...args: LogArgs): void;
  info(...args: LogArgs): void;
  warn(...args: LogArgs): void;
  error(...args: LogArgs): void;
}

/**
 * A child logger made on first use. Per-job bindings cost a child logger each (measurable on the
 * hot path); most jobs log only their end, with the fields written out.
 */
export function lazyChild(logger: Logger, bindings: Record<string, unknown>): LazyLogger {
  let child: Logger | undefined;
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: LogArgs) => {
      if (!logger.isLevelEnabled(level)) return;
      child ??= logger.child(bindings);
      if (typeof args[0] === 'string') child[level](args[0]);
      else child[level](args[0], args[1] as string | undefined);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/**
 * Awaits `work`, logging `msg` (a warning, with `fields`) every `everyMs` until it settles: a process
 * whose start waits on something (Redis not answering yet) says so instead of staying silent.
 */
export async function sayWhileWaiting<T>(
  logger: Logger,
  work: Promise<T>,
  fields: Record<string, unknown>,
  msg: string,
  everyMs = 5000,
): Promise<T> {
  const started = Date.now();
  const timer = setInterval(() => logger.warn({ ...fields, waitedMs: Date.now() - started }, msg), everyMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
