import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { redactUrl } from '@mcp-gateway/config';
import { withOneConnection } from './connections';
import { freePort } from './ports';

export interface LocalRedis {
  url: string;
  /** How it was found: the given REDIS_URL, a private redis-server, or a container. */
  source: 'REDIS_URL' | 'redis-server' | 'testcontainers';
  pid?: number;
  stop(): Promise<void>;
}

export const HOW_TO_GET_REDIS =
  'No Redis available: set REDIS_URL to a reachable Redis, install redis-server (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), or run Docker so a Redis container can be started.';

/** A plain TCP probe first: ioredis keeps a timer alive for seconds after a refused connection. */
function listening(url: string, timeoutMs: number): Promise<boolean> {
  let host = '127.0.0.1';
  let port = 6379;
  try {
    const u = new URL(url);
    host = u.hostname || host;
    port = Number(u.port || 6379);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function ping(url: string, timeoutMs = 1000): Promise<boolean> {
  if (!(await listening(url, timeoutMs))) return false;
  return withOneConnection(url, async (client) => (await client.ping()) === 'PONG', timeoutMs).catch(() => false);
}

function findRedisServer(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const bin = found.stdout.trim();
  return found.status === 0 && bin ? bin : undefined;
}

/** Starts a private redis-server (no persistence unless asked, noeviction) and waits until it answers. */
export async function startRedisServer(
  options: { args?: string[]; port?: number; /** Data directory to use and keep (AOF across restarts). */ dir?: string } = {},
): Promise<LocalRedis & { process: ChildProcess; dir: string }> {
  const bin = findRedisServer();
  if (!bin) throw new Error(HOW_TO_GET_REDIS);
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), 'mcp-redis-'));
  const child = spawn(
    bin,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--maxmemory-policy',
      'noeviction',
      ...(options.args ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const url = `redis://127.0.0.1:${port}`;
  const started = Date.now();
  while (!(await ping(url, 200))) {
    if (child.exitCode !== null || Date.now() - started > 10_000) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not start on port ${port}: ${output.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    source: 'redis-server',
    pid: child.pid,
    process: child,
    dir,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000).unref())]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function dockerAvailable(): boolean {
  if (process.env.DOCKER_HOST) return true;
  return existsSync('/var/run/docker.sock');
}

async function startContainer(): Promise<LocalRedis> {
  // A root devDependency, so `npm ci` installs it; loaded only here (when Docker is there and no
  // redis-server is installed), so no other path pays for it. Absent only from an install without
  // dev dependencies (`npm ci --omit=dev`, as the production image is).
  let tc: typeof import('testcontainers');
  try {
    tc = await import('testcontainers');
  } catch (err) {
    throw new Error(
      `${HOW_TO_GET_REDIS} (Docker is present but testcontainers, a development dependency, could not be loaded: run npm ci without --omit=dev)`,
      { cause: err },
    );
  }
  let container: StartedTestContainer;
  try {
    container = await new tc.GenericContainer('redis:7-alpine')
      .withCommand(['redis-server', '--save', '', '--maxmemory-policy', 'noeviction'])
      .withExposedPorts(6379)
      .start();
  } catch (err) {
    throw new Error(
      `${HOW_TO_GET_REDIS} (Docker is present, but a Redis container could not be started through testcontainers: ${(err as Error).message})`,
      { cause: err },
    );
  }
  return {
    url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
    source: 'testcontainers',
    stop: async () => {
      await container.stop();
    },
  };
}

/**
 * Redis for tests and for `gateway:dev`: REDIS_URL when given (and reachable), else a private
 * redis-server on a free port, else a container when Docker is there, else an error saying how to get one.
 */
export async function acquireRedis(env: NodeJS.ProcessEnv = process.env): Promise<LocalRedis> {
  if (env.REDIS_URL) {
    if (!(await ping(env.REDIS_URL, 2000))) throw new Error(`REDIS_URL=${redactUrl(env.REDIS_URL)} does not answer PING`);
    return { url: env.REDIS_URL, source: 'REDIS_URL', stop: async () => undefined };
  }
  if (findRedisServer()) return startRedisServer();
  if (dockerAvailable()) return startContainer();
  throw new Error(HOW_TO_GET_REDIS);
}

export async function redisAnswers(url: string): Promise<boolean> {
  return ping(url, 1000);
}
