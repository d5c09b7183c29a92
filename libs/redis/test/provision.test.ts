import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { acquireRedis, freePort, HOW_TO_GET_REDIS } from '@mcp-gateway/redis';
import { startBackend } from '@mcp-gateway/testing';

const REDIS_DIST = path.resolve(__dirname, '../dist');

describe('acquireRedis', () => {
  it('a REDIS_URL that does not answer is named in the error without its password', async () => {
    const dead = await freePort();
    const err = await acquireRedis({ REDIS_URL: `redis://ops:s3cret-pw@127.0.0.1:${dead}/0` }).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(`REDIS_URL=redis://ops:[REDACTED]@127.0.0.1:${dead}/0 does not answer PING`);
  });

  it('with no redis-server installed and Docker at DOCKER_HOST, it tries a container through testcontainers (which npm ci installs) and says why that failed', async () => {
    // No Docker engine on this machine: a Docker host that answers every call 500 stands in for one,
    // so the container path can be seen to run up to Docker, and the message to say what happened.
    const docker = await startBackend(() => ({ status: 500, body: { message: 'no engine here' } }));
    const bin = mkdtempSync(path.join(tmpdir(), 'mcp-no-redis-bin-'));
    const home = mkdtempSync(path.join(tmpdir(), 'mcp-no-redis-home-'));
    // A PATH with a shell and no redis-server; a HOME without testcontainers or Docker settings.
    symlinkSync('/bin/sh', path.join(bin, 'sh'));
    try {
      const script = `require(${JSON.stringify(REDIS_DIST)}).acquireRedis({}).then(
        (r) => r.stop().then(() => { console.log('started'); process.exit(2); }),
        (e) => { console.log(e.message); process.exit(1); })`;
      const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
        execFile(
          process.execPath,
          ['-e', script],
          { env: { PATH: bin, HOME: home, DOCKER_HOST: `tcp://127.0.0.1:${docker.port}` }, timeout: 20_000 },
          (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout }),
        );
      });
      expect(out.code).toBe(1);
      expect(out.stdout).toContain(HOW_TO_GET_REDIS);
      expect(out.stdout).toContain('a Redis container could not be started through testcontainers');
      expect(out.stdout).not.toMatch(/not installed|could not be loaded/);
      // testcontainers asked that Docker host what it is before giving up.
      expect(docker.requests.length).toBeGreaterThan(0);
      expect(docker.requests.map((r) => r.path)).toContainEqual(expect.stringMatching(/\/info$/));
    } finally {
      rmSync(bin, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
      await docker.close();
    }
  });
});
