import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { withOneConnection } from './connections';
import { freePort } from './ports';
import { HOW_TO_GET_REDIS, redisAnswers, startRedisServer } from './provision';

/** A redis-server process started by a topology below; `pid` changes when the node is restarted. */
export interface RedisNode {
  /** redis:// URL, with the password when the topology has one. */
  url: string;
  port: number;
  pid: number;
}

export interface HostPort {
  host: string;
  port: number;
}

/** What `kill` can send: SIGKILL and SIGTERM end the node (kill waits for the exit), SIGSTOP/SIGCONT freeze and thaw it. */
export type NodeSignal = 'SIGKILL' | 'SIGTERM' | 'SIGSTOP' | 'SIGCONT';

export interface RedisClusterOptions {
  /** At least 3 (redis-cli refuses fewer). Default 3. */
  masters?: number;
  /** Default 1. */
  replicasPerMaster?: number;
  /** cluster-node-timeout: a dead master is failed over roughly 2-3 times this after it dies. Default 1000. */
  nodeTimeoutMs?: number;
  /** Limit for the whole start (processes, create, every node agreeing). Default 30 000. */
  startTimeoutMs?: number;
}

export interface LocalRedisCluster {
  /** Every node, masters and replicas (`seeds` says which were masters when created; failovers change roles). */
  nodes: RedisNode[];
  /** redis:// URLs of the masters as created, for REDIS_CLUSTER_NODES. */
  seeds: string[];
  /** The node serving the key's slot in a live node's view (call `waitForState('ok')` after a failover first). */
  masterFor(key: string): Promise<RedisNode>;
  /** A connected, non-failed replica of the master on that port, in a live node's view. */
  replicaOf(masterPort: number): Promise<RedisNode>;
  kill(port: number, signal: NodeSignal): Promise<void>;
  /** Starts a killed node again on its port and nodes.conf; it rejoins (a failed-over master as a replica). */
  restart(port: number): Promise<RedisNode>;
  /**
   * 'ok': every live (running, not SIGSTOPped) node reports cluster_state:ok and the same slot map, in which
   * every slot is served by a live node that answers ROLE as a master, and sees every live node as
   * connected and not failed (a restarted node has rejoined). 'fail': some live node reports cluster_state:fail.
   */
  waitForState(state: 'ok' | 'fail', timeoutMs?: number): Promise<void>;
  /** Ends every node, SIGSTOPped or killed ones too, and removes their directories. Safe to call twice. */
  stop(): Promise<void>;
}

export interface RedisSentinelOptions {
  /** The monitored master's name. Default 'mymaster'. */
  name?: string;
  /** Default 3. */
  sentinels?: number;
  /** Sentinels agreeing the primary is down before a failover. Default a majority of `sentinels`. */
  quorum?: number;
  /** requirepass and masterauth of the primary and the replica (the sentinels themselves have none). */
  password?: string;
  /** Default 1000. */
  downAfterMs?: number;
  /** Also how long sentinels wait before retrying a failed election (twice this). Default 3000. */
  failoverTimeoutMs?: number;
  /** Limit for the whole start. Default 30 000. */
  startTimeoutMs?: number;
}

export interface LocalRedisSentinel {
  name: string;
  sentinels: HostPort[];
  /** The data nodes as started; after a failover their roles are swapped (ask `currentPrimary`). */
  primary: RedisNode;
  replica: RedisNode;
  password?: string;
  /** The primary as the first live sentinel reports it. */
  currentPrimary(): Promise<HostPort>;
  /** A data node's or a sentinel's port. */
  kill(port: number, signal: NodeSignal): Promise<void>;
  /** Until every live sentinel names a primary other than `oldPort` and that node answers ROLE as a master. */
  waitForFailover(oldPort: number, timeoutMs?: number): Promise<HostPort>;
  /** Ends every process, SIGSTOPped or killed ones too, and removes their directories. Safe to call twice. */
  stop(): Promise<void>;
}

/** One started process and what is needed to signal, restart and clean it up. */
interface Proc {
  node: RedisNode;
  child: ChildProcess;
  dir: string;
  /** Extra redis-server arguments, kept for a restart. */
  args: string[];
  paused: boolean;
}

const HOST = '127.0.0.1';
const SLOTS = 16384;

/** Children still running, killed when this process exits without having stopped them (a crashed test run). */
const running = new Set<ChildProcess>();
let exitHookSet = false;

function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (!exitHookSet) {
    exitHookSet = true;
    process.once('exit', () => {
      for (const c of running) c.kill('SIGKILL');
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Resolves true once the child has exited and been reaped (its pid is gone), false after `ms`. */
function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (!alive(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** SIGCONT (a stopped process holds SIGTERM), SIGTERM, then SIGKILL after 3 s; resolves once it is reaped. */
async function terminate(proc: Proc): Promise<void> {
  if (!alive(proc.child)) return;
  proc.child.kill('SIGCONT');
  proc.paused = false;
  proc.child.kill('SIGTERM');
  if (await exited(proc.child, 3000)) return;
  proc.child.kill('SIGKILL');
  if (!(await exited(proc.child, 5000))) throw new Error(`redis process ${proc.node.pid} did not exit after SIGKILL`);
}

async function stopAll(procs: Proc[]): Promise<void> {
  const results = await Promise.allSettled(procs.map((p) => terminate(p)));
  for (const p of procs) rmSync(p.dir, { recursive: true, force: true });
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

async function signalProc(proc: Proc, signal: NodeSignal): Promise<void> {
  if (!alive(proc.child)) throw new Error(`the node on port ${proc.node.port} is not running`);
  proc.child.kill(signal);
  if (signal === 'SIGSTOP') proc.paused = true;
  else if (signal === 'SIGCONT') proc.paused = false;
  else {
    // A stopped process only acts on SIGTERM once continued.
    if (signal === 'SIGTERM' && proc.paused) proc.child.kill('SIGCONT');
    if (!(await exited(proc.child, 5000))) throw new Error(`the node on port ${proc.node.port} did not exit on ${signal}`);
  }
}

function byPort(procs: Proc[], port: number): Proc {
  const proc = procs.find((p) => p.node.port === port);
  if (!proc) throw new Error(`no node of this topology on port ${port} (ports: ${procs.map((p) => p.node.port).join(', ')})`);
  return proc;
}

const live = (procs: Proc[]) => procs.filter((p) => alive(p.child) && !p.paused);

/** Runs `use` on a fresh connection to one node; every command fails after `timeoutMs` (a frozen node never answers). */
function withNode<T>(port: number, password: string | undefined, use: (client: Redis) => Promise<T>, timeoutMs = 1000): Promise<T> {
  return withOneConnection({ host: HOST, port, password }, use, timeoutMs);
}

/** Retries `attempt` (which throws saying what is missing) every 150 ms until it returns or `timeoutMs` passes. */
async function until<T>(what: string, timeoutMs: number, attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() >= deadline) throw new Error(`${what} within ${timeoutMs} ms; last seen: ${(err as Error).message}`);
    }
    await sleep(150);
  }
}

/** `field:value` lines of INFO or CLUSTER INFO. */
function infoField(text: unknown, field: string): string | undefined {
  const line = String(text)
    .split(/\r?\n/)
    .find((l) => l.startsWith(`${field}:`));
  return line?.slice(field.length + 1).trim();
}

/** Distinct free ports, none in `taken`. */
async function freePorts(count: number, taken: Set<number>): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freePort();
    if (!taken.has(port)) {
      taken.add(port);
      ports.push(port);
    }
  }
  return ports;
}

/** A child of `startRedisServer` that is really ours: another process could have taken the port in between. */
async function checkOwner(port: number, pid: number, password?: string): Promise<void> {
  const info = await withNode(port, password, (c) => c.call('INFO', 'server'));
  if (infoField(info, 'process_id') !== String(pid)) throw new Error(`port ${port} is served by another process than ${pid}`);
}

/** `code` is the exit status, 'ENOENT' when the tool is missing, or 'timeout' when it was killed after `timeoutMs`. */
function runTool(bin: string, args: string[], timeoutMs: number): Promise<{ code: number | string | null; output: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const failure = err as (Error & { code?: number | string; killed?: boolean; signal?: string }) | null;
      const code = !failure ? 0 : failure.killed ? 'timeout' : (failure.code ?? failure.signal ?? null);
      resolve({ code, output: `${stdout}${stderr}${err && !stdout && !stderr ? err.message : ''}` });
    });
  });
}

interface NodeLine {
  id: string;
  port: number;
  flags: string[];
  /** The master's id for a replica, '-' for a master. */
  masterId: string;
  link: string;
  slots: string[];
}

function parseClusterNodes(text: unknown): NodeLine[] {
  return String(text)
    .split('\n')
    .filter((l) => l.trim())
    .map((line) => {
      const [id, addr, flags, masterId, , , , link, ...slots] = line.trim().split(' ');
      return { id, port: Number(addr.split('@')[0].split(':').pop()), flags: flags.split(','), masterId, link, slots };
    });
}

/** CLUSTER SLOTS as [first slot, last slot, master port] ranges. */
function parseClusterSlots(reply: unknown): [number, number, number][] {
  if (!Array.isArray(reply)) throw new Error(`unexpected CLUSTER SLOTS reply ${String(reply)}`);
  return reply.map((range: unknown) => {
    if (!Array.isArray(range) || !Array.isArray(range[2])) throw new Error(`unexpected CLUSTER SLOTS range ${String(range)}`);
    return [Number(range[0]), Number(range[1]), Number(range[2][1])];
  });
}

/** A replica's full sync starts at once instead of waiting 5 s (the default) for other replicas to share it. */
const FAST_SYNC = ['--repl-diskless-sync-delay', '0'];

const BAD_FLAGS = ['fail', 'fail?', 'handshake', 'noaddr'];

/**
 * Starts a Redis Cluster of private redis-servers (each on free client and bus ports, in its own
 * temporary directory), joined by `redis-cli --cluster create`, and waits until every node agrees that
 * every master has its replicas and all slots are served.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<LocalRedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 1;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  if (masters < 3) throw new Error(`a Redis Cluster needs at least 3 masters (redis-cli refuses fewer), not ${masters}`);
  const deadline = Date.now() + startTimeoutMs;
  const count = masters * (1 + replicas);
  const procs: Proc[] = [];
  const taken = new Set<number>();

  const startNode = async (dir: string, port: number, args: string[]) => {
    const server = await startRedisServer({ port, dir, args });
    track(server.process);
    const pid = server.process.pid ?? -1;
    await checkOwner(port, pid).catch(async (err: unknown) => {
      server.process.kill('SIGKILL');
      await exited(server.process, 5000);
      throw err;
    });
    return { child: server.process, pid };
  };

  /** A node on fresh ports, tried again on others when a port was taken in the meantime. */
  const startNew = async (): Promise<Proc> => {
    for (let attempt = 1; ; attempt++) {
      // A fresh directory each time: a failed attempt's process may still hold its nodes.conf lock.
      const dir = mkdtempSync(path.join(tmpdir(), 'mcp-redis-cluster-'));
      const [port, busPort] = await freePorts(2, taken);
      const args = [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        path.join(dir, 'nodes.conf'),
        // Its own bus port: port + 10000 (the default) can be taken or above 65535.
        '--cluster-port',
        String(busPort),
        '--cluster-node-timeout',
        String(nodeTimeoutMs),
        '--appendonly',
        'no',
        ...FAST_SYNC,
      ];
      try {
        const { child, pid } = await startNode(dir, port, args);
        return { node: { url: `redis://${HOST}:${port}`, port, pid }, child, dir, args, paused: false };
      } catch (err) {
        rmSync(dir, { recursive: true, force: true });
        if (attempt >= 3) throw err;
      }
    }
  };

  const stop = () => stopAll(procs);
  try {
    const started = await Promise.allSettled(Array.from({ length: count }, () => startNew()));
    for (const s of started) if (s.status === 'fulfilled') procs.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;

    const created = await runTool(
      'redis-cli',
      ['--cluster', 'create', ...procs.map((p) => `${HOST}:${p.node.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
      Math.max(deadline - Date.now(), 1000),
    );
    if (created.code === 'ENOENT') throw new Error(`redis-cli not found on PATH (it comes with redis-server). ${HOW_TO_GET_REDIS}`);
    if (created.code !== 0)
      throw new Error(`redis-cli --cluster create failed (exit status ${created.code}):\n${created.output.slice(-3000)}`);

    await until(
      `the cluster did not form (${masters} masters with ${replicas} replica(s) each, every slot served)`,
      deadline - Date.now(),
      () =>
        Promise.all(
          procs.map((p) =>
            withNode(p.node.port, undefined, async (c) => {
              const info = await c.call('CLUSTER', 'INFO');
              const where = `node ${p.node.port}`;
              if (infoField(info, 'cluster_state') !== 'ok') throw new Error(`${where}: cluster_state:${infoField(info, 'cluster_state')}`);
              if (infoField(info, 'cluster_known_nodes') !== String(count))
                throw new Error(`${where}: knows ${infoField(info, 'cluster_known_nodes')} nodes`);
              const lines = parseClusterNodes(await c.call('CLUSTER', 'NODES'));
              const bad = lines.find((l) => l.link !== 'connected' || l.flags.some((f) => BAD_FLAGS.includes(f)));
              if (bad) throw new Error(`${where}: sees ${bad.port} as ${bad.flags.join(',')} ${bad.link}`);
              const ms = lines.filter((l) => l.flags.includes('master') && l.slots.length > 0);
              if (ms.length !== masters) throw new Error(`${where}: sees ${ms.length} masters with slots`);
              for (const m of ms) {
                const n = lines.filter((l) => l.masterId === m.id).length;
                if (n !== replicas) throw new Error(`${where}: sees ${n} replicas of ${m.port}`);
              }
              if (lines.find((l) => l.flags.includes('myself'))?.flags.includes('slave')) {
                const link = infoField(await c.call('INFO', 'replication'), 'master_link_status');
                if (link !== 'up') throw new Error(`${where}: master_link_status:${link}`);
              }
            }),
          ),
        ),
    );

    const masterPorts = await withNode(procs[0].node.port, undefined, async (c) =>
      parseClusterNodes(await c.call('CLUSTER', 'NODES'))
        .filter((l) => l.flags.includes('master'))
        .map((l) => l.port),
    );
    const seeds = procs.filter((p) => masterPorts.includes(p.node.port)).map((p) => p.node.url);
    return { nodes: procs.map((p) => p.node), seeds, masterFor, replicaOf, kill, restart, waitForState, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  function anyLive(): Proc {
    const p = live(procs)[0];
    if (!p) throw new Error('no node of the cluster is running');
    return p;
  }

  async function masterFor(key: string): Promise<RedisNode> {
    const [slot, ranges] = await withNode(anyLive().node.port, undefined, async (c) => {
      const s = Number(await c.call('CLUSTER', 'KEYSLOT', key));
      return [s, parseClusterSlots(await c.call('CLUSTER', 'SLOTS'))] as const;
    });
    const range = ranges.find(([from, to]) => slot >= from && slot <= to);
    if (!range) throw new Error(`no node serves slot ${slot} of key ${key}`);
    return byPort(procs, range[2]).node;
  }

  async function replicaOf(masterPort: number): Promise<RedisNode> {
    const lines = await withNode(anyLive().node.port, undefined, async (c) => parseClusterNodes(await c.call('CLUSTER', 'NODES')));
    const master = lines.find((l) => l.port === masterPort);
    if (!master) throw new Error(`the cluster does not know a node on port ${masterPort}`);
    const replica = lines.find((l) => l.masterId === master.id && l.link === 'connected' && !l.flags.some((f) => BAD_FLAGS.includes(f)));
    if (!replica) throw new Error(`the node on port ${masterPort} has no connected replica`);
    return byPort(procs, replica.port).node;
  }

  function kill(port: number, signal: NodeSignal): Promise<void> {
    return signalProc(byPort(procs, port), signal);
  }

  async function restart(port: number): Promise<RedisNode> {
    const proc = byPort(procs, port);
    if (alive(proc.child)) throw new Error(`the node on port ${port} is still running: kill it first`);
    const { child, pid } = await startNode(proc.dir, port, proc.args);
    proc.child = child;
    proc.paused = false;
    proc.node.pid = pid;
    return proc.node;
  }

  async function waitForState(state: 'ok' | 'fail', timeoutMs = 30_000): Promise<void> {
    if (state === 'fail') {
      await until('no live node reported cluster_state:fail', timeoutMs, async () => {
        for (const p of live(procs)) {
          const info = await withNode(p.node.port, undefined, (c) => c.call('CLUSTER', 'INFO')).catch(() => '');
          if (infoField(info, 'cluster_state') === 'fail') return;
        }
        throw new Error('every live node reports cluster_state:ok');
      });
      return;
    }
    await until('the cluster did not reach cluster_state:ok with every slot on a live master', timeoutMs, async () => {
      const nodes = live(procs);
      if (nodes.length === 0) throw new Error('no node of the cluster is running');
      const livePorts = new Set(nodes.map((p) => p.node.port));
      const maps = await Promise.all(
        nodes.map((p) =>
          withNode(p.node.port, undefined, async (c) => {
            const info = await c.call('CLUSTER', 'INFO');
            if (infoField(info, 'cluster_state') !== 'ok')
              throw new Error(`node ${p.node.port}: cluster_state:${infoField(info, 'cluster_state')}`);
            const ranges = parseClusterSlots(await c.call('CLUSTER', 'SLOTS')).sort((a, b) => a[0] - b[0]);
            const covered = ranges.reduce((n, [from, to]) => n + to - from + 1, 0);
            if (covered !== SLOTS) throw new Error(`node ${p.node.port}: ${covered} of ${SLOTS} slots served`);
            const dead = ranges.find(([, , owner]) => !livePorts.has(owner));
            if (dead) throw new Error(`node ${p.node.port}: slots ${dead[0]}-${dead[1]} on ${dead[2]}, which is not running`);
            const lines = parseClusterNodes(await c.call('CLUSTER', 'NODES'));
            const doubted = lines.find(
              (l) => livePorts.has(l.port) && (l.link !== 'connected' || l.flags.some((f) => BAD_FLAGS.includes(f))),
            );
            if (doubted) throw new Error(`node ${p.node.port}: sees ${doubted.port} as ${doubted.flags.join(',')} ${doubted.link}`);
            return ranges.map((r) => r.join(':')).join(' ');
          }),
        ),
      );
      if (new Set(maps).size > 1) throw new Error('live nodes disagree on the slot map');
      const owners = new Set(maps[0].split(' ').map((r) => Number(r.split(':')[2])));
      for (const owner of owners) {
        const role = await withNode(owner, undefined, (c) => c.call('ROLE'));
        if (!Array.isArray(role) || role[0] !== 'master') throw new Error(`node ${owner} serves slots but is not a master yet`);
      }
    });
  }
}

/** A sentinel process: redis-server needs the config file first, so startRedisServer cannot start one. */
async function startSentinelProcess(port: number, dir: string, conf: string[], deadline: number): Promise<Proc> {
  const file = path.join(dir, 'sentinel.conf');
  // Sentinel rewrites this file (its id, the epochs, who it found), so it lives in the sentinel's own directory.
  writeFileSync(file, `${conf.join('\n')}\n`);
  const child = spawn('redis-server', [file, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  const proc: Proc = { node: { url: `redis://${HOST}:${port}`, port, pid: child.pid ?? -1 }, child, dir, args: [], paused: false };
  const startedBy = Math.min(deadline, Date.now() + 10_000);
  while (!(await redisAnswers(proc.node.url))) {
    if (spawnError || !alive(child) || Date.now() > startedBy) {
      const why = spawnError
        ? `${spawnError.message}. ${HOW_TO_GET_REDIS}`
        : `${alive(child) ? 'no answer in time' : 'it exited'}; output: ${output.slice(-1000)}`;
      await stopAll([proc]);
      throw new Error(`sentinel did not start on port ${port}: ${why}`);
    }
    await sleep(50);
  }
  await checkOwner(port, proc.node.pid).catch(async (err: unknown) => {
    await stopAll([proc]);
    throw err;
  });
  return proc;
}

/** SENTINEL REPLICAS / SENTINELS entries (flat field-value arrays) as records. */
function parseEntries(reply: unknown): Record<string, string>[] {
  if (!Array.isArray(reply)) return [];
  return reply.map((entry: unknown) => {
    const record: Record<string, string> = {};
    if (Array.isArray(entry)) for (let i = 0; i + 1 < entry.length; i += 2) record[String(entry[i])] = String(entry[i + 1]);
    return record;
  });
}

function masterAddr(reply: unknown, name: string): HostPort {
  if (!Array.isArray(reply) || reply.length < 2) throw new Error(`sentinel does not know a master named ${name}`);
  return { host: String(reply[0]), port: Number(reply[1]) };
}

/**
 * Starts a primary, one replica and `sentinels` sentinels monitoring them (private processes on free
 * ports, each in its own temporary directory), and waits until every sentinel knows the primary, the
 * replica and every other sentinel.
 */
export async function startRedisSentinel(options: RedisSentinelOptions = {}): Promise<LocalRedisSentinel> {
  const name = options.name ?? 'mymaster';
  const count = options.sentinels ?? 3;
  const quorum = options.quorum ?? Math.floor(count / 2) + 1;
  const { password } = options;
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  const procs: Proc[] = [];
  const sentinelProcs: Proc[] = [];
  const taken = new Set<number>();
  const url = (port: number) => (password ? `redis://:${encodeURIComponent(password)}@${HOST}:${port}` : `redis://${HOST}:${port}`);

  /**
   * A data node. startRedisServer checks it with an unauthenticated PING, so the password is set once it
   * answers: requirepass by CONFIG SET, masterauth from the start (the primary has its password by the
   * time the replica starts).
   */
  const startData = async (args: string[]): Promise<Proc> => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mcp-redis-sentinel-'));
    const [port] = await freePorts(1, taken);
    const all = [...FAST_SYNC, ...args, ...(password ? ['--masterauth', password] : [])];
    const server = await startRedisServer({ port, dir, args: all }).catch((err: unknown) => {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    });
    track(server.process);
    const proc: Proc = {
      node: { url: url(port), port, pid: server.process.pid ?? -1 },
      child: server.process,
      dir,
      args: all,
      paused: false,
    };
    procs.push(proc);
    await checkOwner(port, proc.node.pid);
    if (password) await withNode(port, undefined, (c) => c.call('CONFIG', 'SET', 'requirepass', password));
    return proc;
  };

  const stop = () => stopAll(procs);
  try {
    const primary = await startData([]);
    const replica = await startData(['--replicaof', HOST, String(primary.node.port)]);
    const ports = await freePorts(count, taken);
    const started = await Promise.allSettled(
      ports.map((port) =>
        startSentinelProcess(
          port,
          mkdtempSync(path.join(tmpdir(), 'mcp-redis-sentinel-')),
          [
            `port ${port}`,
            `bind ${HOST}`,
            'sentinel resolve-hostnames no',
            `sentinel monitor ${name} ${HOST} ${primary.node.port} ${quorum}`,
            `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1000}`,
            `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 3000}`,
            `sentinel parallel-syncs ${name} 1`,
            // Quoted: the config parser reads a double-quoted string with JSON's escapes.
            ...(password ? [`sentinel auth-pass ${name} ${JSON.stringify(password)}`] : []),
          ],
          deadline,
        ),
      ),
    );
    for (const s of started) if (s.status === 'fulfilled') sentinelProcs.push(s.value);
    procs.push(...sentinelProcs);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;

    await until(
      `the replica did not sync and the sentinels did not all find the primary, the replica and each other`,
      deadline - Date.now(),
      async () => {
        // The replica itself: sentinels refresh their view of its link only every 10 s.
        const link = infoField(await withNode(replica.node.port, password, (c) => c.call('INFO', 'replication')), 'master_link_status');
        if (link !== 'up') throw new Error(`replica ${replica.node.port}: master_link_status:${link}`);
        await Promise.all(
          sentinelProcs.map((s) =>
            withNode(s.node.port, undefined, async (c) => {
              const where = `sentinel ${s.node.port}`;
              const addr = masterAddr(await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name), name);
              if (addr.port !== primary.node.port) throw new Error(`${where}: names ${addr.port} as the primary`);
              const seen = parseEntries(await c.call('SENTINEL', 'REPLICAS', name)).find((r) => Number(r.port) === replica.node.port);
              if (!seen) throw new Error(`${where}: does not know the replica yet`);
              if (seen.flags !== 'slave') throw new Error(`${where}: sees the replica as ${seen.flags}`);
              const others = parseEntries(await c.call('SENTINEL', 'SENTINELS', name));
              if (others.length !== count - 1) throw new Error(`${where}: knows ${others.length} of ${count - 1} other sentinels`);
            }),
          ),
        );
      },
    );
    return {
      name,
      sentinels: sentinelProcs.map((s) => ({ host: HOST, port: s.node.port })),
      primary: primary.node,
      replica: replica.node,
      ...(password ? { password } : {}),
      currentPrimary,
      kill: (port, signal) => signalProc(byPort(procs, port), signal),
      waitForFailover,
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  async function currentPrimary(): Promise<HostPort> {
    let last: unknown = new Error('no sentinel is running');
    for (const s of live(sentinelProcs)) {
      try {
        return masterAddr(await withNode(s.node.port, undefined, (c) => c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)), name);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  async function waitForFailover(oldPort: number, timeoutMs = 30_000): Promise<HostPort> {
    return until(`the sentinels did not fail over from ${oldPort}`, timeoutMs, async () => {
      const sentinels = live(sentinelProcs);
      if (sentinels.length === 0) throw new Error('no sentinel is running');
      const named = await Promise.all(
        sentinels.map((s) =>
          withNode(s.node.port, undefined, async (c) => masterAddr(await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name), name)),
        ),
      );
      const ports = new Set(named.map((a) => a.port));
      if (ports.size > 1 || ports.has(oldPort)) throw new Error(`sentinels name ${named.map((a) => a.port).join(', ')} as the primary`);
      const role = await withNode(named[0].port, password, (c) => c.call('ROLE'));
      if (!Array.isArray(role) || role[0] !== 'master') throw new Error(`${named[0].port} is named but is not a master yet`);
      return named[0];
    });
  }
}
