import { readFileSync } from 'node:fs';
import path from 'node:path';
import type Redis from 'ioredis';

/** The broker's Lua scripts, read once from the files beside this module. */
const LUA_DIR = path.join(__dirname, 'lua');
const lua = (name: string) => readFileSync(path.join(LUA_DIR, `${name}.lua`), 'utf8');

export type ClaimReply = [0, 'queued'] | [1, string, string | null] | [2];

export interface BrokerCommands {
  mcpClaim(
    key: string,
    pending: string,
    hash: string,
    service: string,
    ttl: number,
    acceptedAt: number,
    deadline: number,
    correlationId: string,
    agentId: string,
    id: string,
  ): Promise<ClaimReply>;
  mcpStart(key: string, now: number, state: string, mayCall: '0' | '1'): Promise<[string, string | null, string | null]>;
  mcpFinish(
    key: string,
    pending: string,
    state: string,
    result: string,
    ttl: number,
    channel: string,
    messageHead: string,
    onlyQueued: '0' | '1',
    id: string,
  ): Promise<number>;
}

const DEFINED = new WeakSet<Redis>();

/** Registers the scripts on a client (once); calls then go as EVALSHA. */
export function withBrokerCommands(client: Redis): Redis & BrokerCommands {
  if (!DEFINED.has(client)) {
    client.defineCommand('mcpClaim', { numberOfKeys: 2, lua: lua('claim') });
    client.defineCommand('mcpStart', { numberOfKeys: 1, lua: lua('start') });
    client.defineCommand('mcpFinish', { numberOfKeys: 2, lua: lua('finish') });
    DEFINED.add(client);
  }
  return client as Redis & BrokerCommands;
}
