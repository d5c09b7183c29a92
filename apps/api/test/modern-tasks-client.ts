import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createTaskSessionFromClient, type RawClientDispatch } from '@modelcontextprotocol/ext-tasks/client';

/**
 * A 2026-07-28 MCP client that takes tasks: the v2 SDK Client, and the official Tasks-extension
 * requester (`@modelcontextprotocol/ext-tasks`) over it. The v2 Client cannot send or receive
 * task-shaped messages yet, so, as the extension's docs ask, the host supplies `rawDispatch`: one
 * JSON-RPC exchange over HTTP with the 2026-07-28 routing headers.
 */
export const MODERN = '2026-07-28';
const clientInfo = { name: 'tasks-client', version: '1.0.0' };

/**
 * Jest runs a test file in a realm of its own, and Node's fetch builds `response.json()` objects in
 * the outer one, which the ext-tasks JSON check (plain-object prototype) refuses: parse here instead.
 */
const sameRealm =
  (base: typeof fetch): typeof fetch =>
  async (input, init) => {
    const res = await base(input, init);
    return Object.assign(res, { json: async () => JSON.parse(await res.text()) as unknown });
  };

/** The per-request `_meta` a 2026-07-28 request carries, declaring the tasks extension. */
export const framed = (params: Record<string, unknown>) => ({
  ...params,
  _meta: {
    'io.modelcontextprotocol/protocolVersion': MODERN,
    'io.modelcontextprotocol/clientInfo': clientInfo,
    'io.modelcontextprotocol/clientCapabilities': { extensions: { 'io.modelcontextprotocol/tasks': {} } },
  },
});

/** `via` decides where each HTTP request goes (a load balancer in the process tests). */
export async function modernTaskClient(url: URL, via: typeof fetch = fetch) {
  const send = sameRealm(via);
  let next = 1;
  const rawDispatch: RawClientDispatch = async (request, options) => {
    const msg = request as { method: string; params?: { name?: string; taskId?: string } };
    const id = next++;
    const name = msg.params?.name ?? msg.params?.taskId;
    const res = await send(url, {
      method: 'POST',
      signal: options?.signal,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': MODERN,
        'mcp-method': msg.method,
        ...(name ? { 'mcp-name': String(name) } : {}),
      },
      body: JSON.stringify({ jsonrpc: '2.0', id, ...msg }),
    });
    const text = await res.text();
    const messages = text.trimStart().startsWith('{')
      ? [JSON.parse(text)]
      : text
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => JSON.parse(l.slice(6)));
    const answer = messages.find((m: { id?: unknown }) => m.id === id);
    if (!answer) throw new Error(`no answer to ${msg.method}: HTTP ${res.status} ${text.slice(0, 200)}`);
    return answer.error ? { kind: 'error', error: answer.error } : { kind: 'result', result: answer.result };
  };
  const client = new Client(clientInfo, { versionNegotiation: { mode: { pin: MODERN } } });
  await client.connect(new StreamableHTTPClientTransport(url, { fetch: send }));
  const session = createTaskSessionFromClient(client, {
    endpointId: 'gateway',
    rawDispatch,
    v2RequestFraming: { protocolVersion: MODERN, clientInfo, clientCapabilities: {} },
  });
  return {
    client,
    session,
    rawDispatch,
    close: async () => {
      await session.close();
      await client.close();
    },
  };
}
