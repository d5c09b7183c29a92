import { spawn } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { childTraceparent, createLogger, lazyChild, logScalars, parseTraceparent, traceIdOf } from '@mcp-gateway/observability';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, destination };
}

describe('logger', () => {
  it('writes JSON lines and censors secrets in fields, headers and credentials', () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'info', name: 'api', destination });
    log.info(
      {
        token: 'tok-secret-1',
        headers: { authorization: 'Bearer tok-secret-2', 'x-api-key': 'tok-secret-3', accept: 'application/json' },
        req: { headers: { cookie: 'sid=tok-secret-4' } },
        service: { auth: { credentials: { clientSecret: 'tok-secret-5' } } },
        upstream: { accessToken: 'tok-secret-6' },
      },
      'hello',
    );
    log.debug('not at info');
    expect(lines).toHaveLength(1);
    const text = JSON.stringify(lines[0]);
    expect(text).not.toMatch(/tok-secret/);
    expect(lines[0]).toMatchObject({ msg: 'hello', name: 'api', level: 30, headers: { accept: 'application/json' } });
  });

  it('a line of scalar fields is written as it is; one with a secret-named key is still censored', () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'warn', name: 'worker', destination });
    logScalars(log, 'info', { id: 'r1' }, 'below the level');
    logScalars(log, 'warn', { id: 'r1', service: 'users', attempts: 2, stored: true, backendMs: undefined }, 'request finished');
    logScalars(log, 'warn', { id: 'r2', Token: 'tok-secret-7' }, 'careless line');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      msg: 'request finished',
      name: 'worker',
      level: 40,
      id: 'r1',
      service: 'users',
      attempts: 2,
      stored: true,
    });
    expect(JSON.stringify(lines[1])).not.toMatch(/tok-secret/);
  });

  it('a lazy child carries its bindings on every line it writes, and writes nothing below the level', () => {
    const { lines, destination } = capture();
    const log = lazyChild(createLogger({ level: 'info', destination }), { id: 'req-1', service: 'users' });
    log.debug({ skipped: true }, 'below the level');
    log.info({ attempt: 2 }, 'retry scheduled');
    log.error('plain message');
    expect(lines).toEqual([
      expect.objectContaining({ id: 'req-1', service: 'users', attempt: 2, msg: 'retry scheduled', level: 30 }),
      expect.objectContaining({ id: 'req-1', service: 'users', msg: 'plain message', level: 50 }),
    ]);
  });

  it('silent writes nothing', () => {
    const { lines, destination } = capture();
    createLogger({ level: 'silent', destination }).error('x');
    expect(lines).toHaveLength(0);
  });
});

describe('logger to stdout (a process of its own)', () => {
  const entry = JSON.stringify(path.resolve(__dirname, '../dist/index.js'));
  /** Runs `body` with `log` (a stdout logger) in a child; its stdout, and when each line came. */
  function child(body: string): Promise<{ code: number | null; lines: { line: Record<string, unknown>; at: number }[] }> {
    const proc = spawn(process.execPath, ['-e', `const log = require(${entry}).createLogger({ name: 't' }); ${body}`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const started = Date.now();
    const lines: { line: Record<string, unknown>; at: number }[] = [];
    let rest = '';
    proc.stdout.on('data', (d: Buffer) => {
      const parts = (rest + d.toString('utf8')).split('\n');
      rest = parts.pop()!;
      for (const l of parts) lines.push({ line: JSON.parse(l) as Record<string, unknown>, at: Date.now() - started });
    });
    return new Promise((resolve) => proc.on('close', (code) => resolve({ code, lines })));
  }

  it('a few lines go out within the flush interval, while the process still runs', async () => {
    const { code, lines } = await child(
      `log.info({ n: 1 }, 'a'); log.info({ n: 2 }, 'b'); setTimeout(() => log.info({ n: 3 }, 'c'), 1500);`,
    );
    expect(code).toBe(0);
    expect(lines.map((l) => l.line.n)).toEqual([1, 2, 3]);
    // Logged at once, out long before the third (1.5 s later): batches wait at most 100 ms.
    expect(lines[1]!.at).toBeLessThan(lines[2]!.at - 1000);
  });

  it('every line, whole and in order, reaches stdout when the process exits right after logging it', async () => {
    const { code, lines } = await child(
      `for (let i = 0; i < 20000; i++) log.info({ i, text: 'x'.repeat(i % 300) }, 'line'); process.exit(0);`,
    );
    expect(code).toBe(0);
    expect(lines).toHaveLength(20000);
    expect(lines.every(({ line }, i) => line.i === i && line.text === 'x'.repeat(i % 300) && line.msg === 'line')).toBe(true);
  });
});

describe('W3C trace context', () => {
  const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

  it('accepts valid headers and rejects malformed or all-zero ones', () => {
    expect(parseTraceparent(parent.toUpperCase())).toBe(parent);
    for (const bad of [
      '',
      'garbage',
      '00-00000000000000000000000000000000-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
      'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      `${parent}-extra`,
    ]) {
      expect(parseTraceparent(bad)).toBeUndefined();
    }
    // A later version may carry more fields: they are dropped and the header continues as version 00.
    expect(parseTraceparent('01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future')).toBe(parent);
  });

  it('continues a trace with a new span, or starts a sampled one', () => {
    const child = childTraceparent(parent);
    expect(traceIdOf(child)).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(child.split('-')[2]).not.toBe('b7ad6b7169203331');
    expect(child.endsWith('-01')).toBe(true);
    const root = childTraceparent(undefined);
    expect(root).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(traceIdOf(childTraceparent(undefined))).not.toBe(traceIdOf(root));
    // The flags are the parent's, and span ids stay unique across refills of the random pool.
    expect(childTraceparent(parent.replace(/-01$/, '-00'))).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-00$/);
    const ids = new Set(Array.from({ length: 2000 }, () => childTraceparent(parent).split('-')[2]));
    expect(ids.size).toBe(2000);
  });
});
