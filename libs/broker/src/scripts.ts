import { readFileSync } from 'node:fs';
import path from 'node:path';
import type Redis from 'ioredis';
import type { RequestState } from '@mcp-gateway/protocol';
import type { BrokerKeys } from './keys';
import { storedResultJson, type StoredResult } from './stored-result';

/** The broker's Lua scripts, read once from the files beside this module. */
const LUA_DIR = path.join(__dirname, 'lua');
const lua = (name: string) => readFileSync(path.join(LUA_DIR, `${name}.lua`), 'utf8');

/** claim.lua's first reply element (its header lists the same names). */
export const ClaimCode = { Created: 0, Joined: 1, Conflict: 2 } as const;
export type ClaimCode = (typeof ClaimCode)[keyof typeof ClaimCode];

/** finish.lua's reply (its header lists the same names). */
export const FinishCode = { Stored: 1, Refused: 0, Missing: -1 } as const;
export type FinishCode = (typeof FinishCode)[keyof typeof FinishCode];

/** start.lua's state when the request has no record. */
export const START_MISSING = 'missing';

export interface ClaimArgs {
  id: string;
  /** The body's hash: the same id with another body is a conflict. */
  hash: string;
  service: string;
  ttlSeconds: number;
  acceptedAt: number;
  deadline: number;
  correlationId: string;
  /** Absent for an anonymous caller. */
  agentId?: string;
}

export type ClaimOutcome =
  | { kind: 'created' }
  /** The request that holds the id: its state, and its result's JSON once it has one. */
  | { kind: 'joined'; state: RequestState; resultJson?: string }
  /** The id is held by a request with another body. */
  | { kind: 'conflict' };

export interface StartArgs {
  id: string;
  now: number;
  state: 'active' | 'retrying' | 'queued';
  /** A call that must not be repeated may follow: the record keeps the mark until a run clears it. */
  mayCall: boolean;
}

export interface Started {
  /** The state set, or the one the request had ended in; `missing` when it has no record. */
  state: RequestState | typeof START_MISSING;
  /** The first run's start (this one's when it is the first). */
  startedAt: number;
  /** The mark a previous run left: that run may have sent its call and never ended. */
  markedBefore?: number;
}

export interface FinishArgs {
  id: string;
  state: 'completed' | 'failed' | 'cancelled';
  result: StoredResult;
  ttlSeconds: number;
  channel: string;
  /** The message's head (id and state); the script appends the result JSON. */
  messageHead: string;
  /** Store only while the request is not running (queued or waiting for a retry). */
  onlyIfQueued: boolean;
}

export type FinishOutcome = 'stored' | 'refused' | 'missing';

type ScriptArgs = (string | number)[];
const flag = (on: boolean) => (on ? '1' : '0');

// Each script's KEYS then ARGV, in the order its header lists: the one place that order is written.
function claimArgs(keys: BrokerKeys, a: ClaimArgs): ScriptArgs {
  const argv = [a.hash, a.service, a.ttlSeconds, a.acceptedAt, a.deadline, a.correlationId, a.agentId ?? '', a.id];
  return [keys.request(a.id), keys.pending(a.id), ...argv];
}

function startArgs(keys: BrokerKeys, a: StartArgs): ScriptArgs {
  return [keys.request(a.id), a.now, a.state, flag(a.mayCall)];
}

function finishArgs(keys: BrokerKeys, a: FinishArgs): ScriptArgs {
  const r = a.result;
  const argv = [a.state, r.body?.field ?? '', a.ttlSeconds, a.channel, a.messageHead, flag(a.onlyIfQueued), a.id];
  return [keys.request(a.id), keys.pending(a.id), ...argv, r.before, r.body?.json ?? '', r.after, ...r.meta.flat()];
}

function unknownReply(script: string, reply: unknown): Error {
  return new Error(`${script}.lua answered ${JSON.stringify(reply)}, which is none of its reply codes`);
}

/** `id`: the claimed id (a joined record's result is rebuilt with it). */
export function decodeClaim(reply: unknown, id: string): ClaimOutcome {
  const [code, flat] = reply as [number, string[]?];
  switch (code) {
    case ClaimCode.Created:
      return { kind: 'created' };
    case ClaimCode.Joined: {
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < (flat?.length ?? 0); i += 2) fields[flat![i]!] = flat![i + 1]!;
      const state = fields.state as RequestState;
      const resultJson = storedResultJson(id, state, fields);
      return { kind: 'joined', state, ...(resultJson ? { resultJson } : {}) };
    }
    case ClaimCode.Conflict:
      return { kind: 'conflict' };
    default:
      throw unknownReply('claim', reply);
  }
}

/** `now` stands for the first start when the record has none (a missing one). */
export function decodeStart(reply: unknown, now: number): Started {
  const [state, startedAt, marked] = reply as [string, string | null, string | null];
  return {
    state: state as Started['state'],
    startedAt: startedAt ? Number(startedAt) : now,
    ...(marked ? { markedBefore: Number(marked) } : {}),
  };
}

export function decodeFinish(reply: unknown): FinishOutcome {
  switch (reply) {
    case FinishCode.Stored:
      return 'stored';
    case FinishCode.Refused:
      return 'refused';
    case FinishCode.Missing:
      return 'missing';
    default:
      throw unknownReply('finish', reply);
  }
}

interface BrokerCommands {
  mcpClaim(...args: ScriptArgs): Promise<unknown>;
  mcpStart(...args: ScriptArgs): Promise<unknown>;
  mcpFinish(...args: ScriptArgs): Promise<unknown>;
}

const DEFINED = new WeakSet<Redis>();

/** Registers the scripts on a client (once); calls then go as EVALSHA. */
function withBrokerCommands(client: Redis): Redis & BrokerCommands {
  if (!DEFINED.has(client)) {
    client.defineCommand('mcpClaim', { numberOfKeys: 2, lua: lua('claim') });
    client.defineCommand('mcpStart', { numberOfKeys: 1, lua: lua('start') });
    client.defineCommand('mcpFinish', { numberOfKeys: 2, lua: lua('finish') });
    DEFINED.add(client);
  }
  return client as Redis & BrokerCommands;
}

/**
 * The broker's scripts on one client, one EVALSHA per call with its reply decoded. Each sends its
 * command when called (not after an await), so callers can put several in one write.
 */
export class BrokerScripts {
  private readonly redis: Redis & BrokerCommands;

  constructor(
    redis: Redis,
    private readonly keys: BrokerKeys,
  ) {
    this.redis = withBrokerCommands(redis);
  }

  claim(a: ClaimArgs): Promise<ClaimOutcome> {
    return this.redis.mcpClaim(...claimArgs(this.keys, a)).then((reply) => decodeClaim(reply, a.id));
  }

  start(a: StartArgs): Promise<Started> {
    return this.redis.mcpStart(...startArgs(this.keys, a)).then((reply) => decodeStart(reply, a.now));
  }

  finish(a: FinishArgs): Promise<FinishOutcome> {
    return this.redis.mcpFinish(...finishArgs(this.keys, a)).then(decodeFinish);
  }
}
