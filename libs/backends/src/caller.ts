import http from 'node:http';
import https from 'node:https';
import type { AxiosInstance, AxiosStatic } from 'axios';
import { EventEmitter } from 'node:events';
import type { Agent, Dispatcher } from 'undici';
import type { RedisClient } from '@mcp-gateway/redis';
import { GatewayError, isGatewayError, type ErrorCode, type OperationDefinition } from '@mcp-gateway/protocol';
import type { ServiceConfig } from '@mcp-gateway/config';
import { OAuth2Tokens } from './oauth2';
import { isJsonMedia, isTextMedia } from './openapi/media';
import { buildBackendRequest, type RequestOptions } from './request';

/** What came of one backend call. Never thrown: the pipeline decides what each kind means. */
export type BackendOutcome =
  /** `json`: the body as received, when it is JSON (`data` is its parse): a result can carry it as it came. */
  | { kind: 'response'; status: number; headers: Record<string, string>; data: unknown; json?: string; durationMs: number }
  | { kind: 'timeout'; durationMs: number }
  | { kind: 'network'; code: string; durationMs: number }
  | { kind: 'aborted'; durationMs: number }
  /** The call was not made: its request could not be built, or no credential could be had. */
  | { kind: 'not_sent'; error: GatewayError; retryable: boolean; durationMs: number };

export interface BackendCall {
  service: string;
  config: ServiceConfig;
  operation: OperationDefinition;
  parameters: Record<string, unknown>;
  timeoutMs: number;
  /** Gateway headers (correlation, trace, idempotency); auth headers are added here. */
  headers?: Record<string, string>;
  /** Lets the one who started the call abandon it while it is out. */
  abandon?: CallAbandon;
}

/**
 * Lets the one who started a call abandon it while it is out (a request cancelled as it runs): the
 * call then ends `aborted`. A plain object per call, where an AbortController (an EventTarget) per
 * call would be measurable on the hot path.
 */
export class CallAbandon {
  private hook?: () => void;
  private done = false;

  get abandoned(): boolean {
    return this.done;
  }

  abandon(): void {
    if (this.done) return;
    this.done = true;
    this.hook?.();
  }

  /** The caller's: what aborts the call now out, or undefined once none is. */
  onAbandon(hook: (() => void) | undefined): void {
    this.hook = hook;
  }
}

export interface BackendCallerOptions {
  /** Redis for shared OAuth2 tokens. */
  redis: RedisClient;
  keyPrefix: string;
  /** Largest backend response body accepted (default 10 MB). */
  maxResponseBytes?: number;
  maxSockets?: number;
}

/** Connection errors that happen before any byte of the request could reach the backend. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** What the caller reports when a connection error carries no code of its own. */
const UNKNOWN_NETWORK_ERROR = 'ERR_NETWORK';
/** undici's own timeouts (ours is the deadline's timer, which comes first in practice). */
const UNDICI_TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** A body as axios read it: JSON when it parses (then its text too), the text when it does not, nothing when empty. */
function parseBody(text: string): { data: unknown; json?: string } {
  if (text === '') return { data: undefined };
  try {
    return { data: JSON.parse(text) as unknown, json: text };
  } catch {
    return { data: text };
  }
}

/** An answer read as text (and JSON when it parses): no Content-Type, JSON, text/*, XML and the like. */
function readsAsText(contentType: string | undefined): boolean {
  if (!contentType) return true;
  const type = contentType.split(';')[0]!.trim();
  return type === '' || isJsonMedia(type) || isTextMedia(type);
}

/** Bytes (an image, a PDF, …) as data a result and an MCP client can carry: base64 with its media type. */
function binaryBody(bytes: Buffer, contentType: string): { data: unknown; json?: string } {
  if (bytes.length === 0) return { data: undefined };
  return { data: { mediaType: contentType.split(';')[0]!.trim(), base64: bytes.toString('base64') } };
}

/** Sets a header, dropping any other spelling of its name: an argument's header never stands beside the credential. */
function setHeader(headers: Record<string, string>, name: string, value: string): void {
  const lower = name.toLowerCase();
  for (const k of Object.keys(headers)) if (k.toLowerCase() === lower) delete headers[k];
  headers[name] = value;
}

/** Whether the API key goes where the operation's document says (the config names no header of its own). */
function usesDocumentPlacement(config: ServiceConfig, op: OperationDefinition): boolean {
  return config.auth.type === 'api-key' && config.auth.credentials.headerName === undefined && op.request?.apiKey !== undefined;
}

/** The config's share of building a request: its base path, and the API key when the document places it. */
function requestOptions(config: ServiceConfig, op: OperationDefinition): RequestOptions {
  const options: RequestOptions = {};
  if (config.basePath !== undefined) options.basePath = config.basePath;
  if (usesDocumentPlacement(config, op)) options.apiKey = { ...op.request!.apiKey!, value: config.auth.credentials.apiKey ?? '' };
  return options;
}

/**
 * The most telling code of a connection error: the socket's errno (ECONNREFUSED, …) before undici's
 * wrapper; a connection the backend closed before its answer is ECONNRESET, as callers know it.
 */
function networkCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  const cause = e?.cause?.code;
  if (typeof cause === 'string' && /^E[A-Z]+$/.test(cause)) return cause;
  if (e?.code === 'UND_ERR_SOCKET') return 'ECONNRESET';
  return typeof e?.code === 'string' ? e.code : UNKNOWN_NETWORK_ERROR;
}

/**
 * Calls backends: one keep-alive connection pool (undici) for all services, the remaining deadline as
 * the timeout, no redirects (a redirect could move the call, and its credentials, off the endpoint),
 * and the service's credentials (refreshing an OAuth2 token once on a 401). The per-request call is
 * undici's (cheaper per call: docs/research/memory-per-request.md); axios stays for the occasional OAuth2
 * token request.
 */
export class BackendCaller {
  /** Keep-alive connections to the backends, at most `maxSockets` per origin; redirects are never followed. */
  private readonly pool: Agent;
  /** Token requests to OAuth2 endpoints (a few per token lifetime). */
  private readonly agents: { http: http.Agent; https: https.Agent };
  private readonly tokens: OAuth2Tokens;

  constructor(options: BackendCallerOptions) {
    // undici is loaded by the processes that call backends (workers), not by every importer of this lib.
    const undici = require('undici') as typeof import('undici');
    this.pool = new undici.Agent({ connections: options.maxSockets ?? 256, maxResponseSize: options.maxResponseBytes ?? 10 * 1024 * 1024 });
    this.agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
    // axios too: only a process that calls backends loads it.
    const axios = require('axios') as AxiosStatic;
    const tokenHttp: AxiosInstance = axios.create({
      httpAgent: this.agents.http,
      httpsAgent: this.agents.https,
      maxRedirects: 0,
      validateStatus: () => true,
      maxContentLength: 1024 * 1024,
      proxy: false,
      transitional: { silentJSONParsing: true, forcedJSONParsing: true, clarifyTimeoutError: true },
    });
    this.tokens = new OAuth2Tokens(options.redis, options.keyPrefix, tokenHttp);
  }

  async call(input: BackendCall): Promise<BackendOutcome> {
    const started = Date.now();
    const deadline = started + input.timeoutMs;
    const elapsed = () => Date.now() - started;
    const auth = input.config.auth;
    let request;
    try {
      request = buildBackendRequest(
        input.config.endpoint,
        input.operation,
        input.parameters,
        requestOptions(input.config, input.operation),
      );
    } catch (err) {
      const error = isGatewayError(err) ? err : new GatewayError('INTERNAL_ERROR', 'The backend request could not be built');
      return { kind: 'not_sent', error, retryable: false, durationMs: elapsed() };
    }
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': 'mcp-gateway/0.1',
      ...(request.headers ?? {}),
      ...(input.headers ?? {}),
    };
    if (request.encoded) headers['Content-Type'] = request.encoded.contentType;
    else if (request.body !== undefined) headers['Content-Type'] = 'application/json';
    const payload = request.encoded ? request.encoded.data : request.body === undefined ? undefined : JSON.stringify(request.body);
    let oauthToken: string | undefined;
    try {
      switch (auth.type) {
        case 'bearer':
          setHeader(headers, 'Authorization', `Bearer ${auth.credentials.token}`);
          break;
        case 'api-key':
          // Placed by the request builder when the operation's document says where it goes.
          if (!usesDocumentPlacement(input.config, input.operation))
            setHeader(headers, auth.credentials.headerName ?? 'X-API-Key', auth.credentials.apiKey ?? '');
          break;
        case 'basic':
          setHeader(
            headers,
            'Authorization',
            `Basic ${Buffer.from(`${auth.credentials.username}:${auth.credentials.password}`).toString('base64')}`,
          );
          break;
        case 'oauth2':
          oauthToken = await this.tokens.current(input.service, auth.credentials, deadline);
          if (oauthToken) setHeader(headers, 'Authorization', `Bearer ${oauthToken}`);
          break;
        case 'none':
          break;
      }
    } catch (err) {
      return {
        kind: 'not_sent',
        error: new GatewayError('BACKEND_ERROR', `No access token for ${input.service}: ${(err as Error).message}`),
        retryable: true,
        durationMs: elapsed(),
      };
    }

    let outcome = await this.send(request.method, request.origin, request.path, payload, headers, deadline, input.abandon);
    if (
      outcome.kind === 'response' &&
      outcome.status === 401 &&
      auth.type === 'oauth2' &&
      auth.credentials.tokenUrl &&
      Date.now() < deadline
    ) {
      // One refresh (shared by all workers), then one more try with the new token.
      const fresh = await this.tokens.refresh(input.service, auth.credentials, oauthToken, deadline).catch(() => undefined);
      if (fresh && fresh !== oauthToken) {
        outcome = await this.send(
          request.method,
          request.origin,
          request.path,
          payload,
          { ...headers, Authorization: `Bearer ${fresh}` },
          deadline,
          input.abandon,
        );
      }
    }
    outcome.durationMs = elapsed();
    return outcome;
  }

  private async send(
    method: string,
    origin: string,
    path: string,
    body: string | Uint8Array | undefined,
    headers: Record<string, string>,
    deadline: number,
    external?: CallAbandon,
  ): Promise<BackendOutcome> {
    const started = Date.now();
    if (external?.abandoned) return { kind: 'aborted', durationMs: 0 };
    // The call's abort (deadline or caller): undici takes an EventEmitter as its signal, which costs
    // less per call than an AbortController (an EventTarget) did.
    const abort = new EventEmitter();
    let timedOut = false;
    const timer = setTimeout(
      () => {
        timedOut = true;
        abort.emit('abort');
      },
      Math.max(1, deadline - started),
    );
    external?.onAbandon(() => abort.emit('abort'));
    try {
      // The pool itself, given origin and path: no URL is parsed again per call.
      const res = await this.pool.request({
        origin,
        path,
        method: method as Dispatcher.HttpMethod,
        headers,
        body,
        signal: abort,
      });
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers))
        if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
      const answer = readsAsText(out['content-type'])
        ? parseBody(await res.body.text())
        : binaryBody(Buffer.from(await res.body.arrayBuffer()), out['content-type']!);
      return {
        kind: 'response',
        status: res.statusCode,
        headers: out,
        data: answer.data,
        json: answer.json,
        durationMs: Date.now() - started,
      };
    } catch (err) {
      const durationMs = Date.now() - started;
      if (timedOut) return { kind: 'timeout', durationMs };
      if (external?.abandoned) return { kind: 'aborted', durationMs };
      const code = networkCode(err);
      if (code === 'ETIMEDOUT' || UNDICI_TIMEOUTS.has(code)) return { kind: 'timeout', durationMs };
      if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return { kind: 'network', code: 'RESPONSE_TOO_LARGE', durationMs };
      return { kind: 'network', code, durationMs };
    } finally {
      clearTimeout(timer);
      external?.onAbandon(undefined);
    }
  }

  close(): void {
    void this.pool.destroy().catch(() => undefined);
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}

export interface Classified {
  ok: boolean;
  /** Worth another attempt (idempotency is the pipeline's call). */
  retryable: boolean;
  /** Counts against the circuit breaker: 5xx, timeouts, connection errors. */
  countsAsFailure: boolean;
  /** The request certainly never reached the backend, so even a non-idempotent call may be repeated. */
  neverSent: boolean;
  retryAfterMs?: number;
  code?: ErrorCode;
}

/** `Retry-After` as seconds or an HTTP date, in ms (capped at an hour); undefined when absent or bad. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  let ms: number | undefined;
  if (/^\d+(\.\d+)?$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (!Number.isNaN(at)) ms = Math.max(0, at - now);
  }
  return ms === undefined ? undefined : Math.min(Math.round(ms), 3_600_000);
}

/**
 * The meaning of an outcome. 4xx are the caller's problem: not retried (408 and 429 excepted) and
 * never held against the backend; 5xx, timeouts and connection errors are.
 */
export function classifyOutcome(outcome: BackendOutcome): Classified {
  switch (outcome.kind) {
    case 'response': {
      const s = outcome.status;
      if (s < 400) return { ok: true, retryable: false, countsAsFailure: false, neverSent: false };
      const retryAfterMs = parseRetryAfter(outcome.headers['retry-after']);
      if (s === 429) return { ok: false, retryable: true, countsAsFailure: false, neverSent: false, retryAfterMs, code: 'RATE_LIMITED' };
      if (s === 408) return { ok: false, retryable: true, countsAsFailure: false, neverSent: false, code: 'BACKEND_ERROR' };
      if (s < 500) return { ok: false, retryable: false, countsAsFailure: false, neverSent: false, code: 'BACKEND_ERROR' };
      // 501/505: the backend will never do it; still a server-side failure.
      const permanent = s === 501 || s === 505;
      return { ok: false, retryable: !permanent, countsAsFailure: true, neverSent: false, retryAfterMs, code: 'BACKEND_ERROR' };
    }
    case 'timeout':
      return { ok: false, retryable: true, countsAsFailure: true, neverSent: false, code: 'TIMEOUT' };
    case 'network': {
      if (outcome.code === 'RESPONSE_TOO_LARGE')
        return { ok: false, retryable: false, countsAsFailure: false, neverSent: false, code: 'BACKEND_ERROR' };
      return { ok: false, retryable: true, countsAsFailure: true, neverSent: NEVER_SENT.has(outcome.code), code: 'BACKEND_ERROR' };
    }
    case 'aborted':
      return { ok: false, retryable: false, countsAsFailure: false, neverSent: false, code: 'CANCELLED' };
    case 'not_sent':
      return { ok: false, retryable: outcome.retryable, countsAsFailure: false, neverSent: true, code: outcome.error.code };
  }
}
