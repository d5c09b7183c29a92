import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { RedisClient } from '@mcp-gateway/redis';
import type { BrokerKeys } from './keys';

/** The broker's Lua scripts, read once from the files beside this module. */
const LUA_DIR = path.join(__dirname, 'lua');
const lua = (name: string) => readFileSync(path.join(LUA_DIR, `${name}.lua`), 'utf8');

/** finish.lua's reply (its header lists the same names). */
export const FinishCode = { Stored: 1, Refused: 0, Missing: -1 } as const;
export type FinishCode = (typeof FinishCode)[keyof typeof FinishCode];

export interface FinishArgs {
  id: string;
  state: 'completed' | 'failed' | 'cancelled';
  /** The result's JSON, split after its id (the record keeps the rest: its key holds the id). */
  result: { head: string; rest: string };
  /** The record's body hash and agent lines, kept from its claim. */
  owner: string;
  ttlSeconds: number;
  channel: string;
  /** PUBLISH, SPUBLISH (a sharded channel), or none (the caller publishes). */
  publish: 'PUBLISH' | 'SPUBLISH' | '';
  /** Whether the id may be in the sweep's index, to take it out (a request indexed later may not be yet). */
  unindex: boolean;
}

export type FinishOutcome = 'stored' | 'refused' | 'missing';

type ScriptArgs = (string | number)[];

// The script's KEYS then ARGV, in the order its header lists: the one place that order is written.
function finishArgs(keys: BrokerKeys, a: FinishArgs): ScriptArgs {
  return [
    keys.request(a.id),
    keys.pending(a.id),
    a.state,
    a.ttlSeconds,
    a.channel,
    a.id,
    a.result.head,
    a.result.rest,
    a.owner,
    a.publish,
    a.unindex ? '1' : '',
  ];
}

function unknownReply(script: string, reply: unknown): Error {
  return new Error(`${script}.lua answered ${JSON.stringify(reply)}, which is none of its reply codes`);
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
  mcpFinish(...args: ScriptArgs): Promise<unknown>;
}

const DEFINED = new WeakSet<RedisClient>();

/** Registers the script on a client (once); calls then go as EVALSHA. */
function withBrokerCommands(client: RedisClient): RedisClient & BrokerCommands {
  if (!DEFINED.has(client)) {
    client.defineCommand('mcpFinish', { numberOfKeys: 2, lua: lua('finish') });
    DEFINED.add(client);
  }
  return client as RedisClient & BrokerCommands;
}

/**
 * The broker's scripts on one client, one EVALSHA per call with its reply decoded. Each sends its
 * command when called (not after an await), so callers can put several in one write.
 */
export class BrokerScripts {
  private readonly redis: RedisClient & BrokerCommands;

  constructor(
    redis: RedisClient,
    private readonly keys: BrokerKeys,
  ) {
    this.redis = withBrokerCommands(redis);
  }

  finish(a: FinishArgs): Promise<FinishOutcome> {
    return this.redis.mcpFinish(...finishArgs(this.keys, a)).then(decodeFinish);
  }
}
