import http from 'node:http';
import https from 'node:https';
import type { AxiosInstance, AxiosStatic } from 'axios';
import type { Agent } from 'undici';
import type { RedisClient } from '@mcp-gateway/redis';
import { GatewayError, isGatewayError, type ErrorCode, type OperationDefinition } from '@mcp-gateway/protocol';
import type { ServiceConfig } from '@mcp-gateway/config';
import { OAuth2Tokens } from './oauth2';
import { exchange, NEVER_SENT } from './exchange';
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

    const exchanged = { method: request.method, origin: request.origin, path: request.path, body: payload, headers };
    let outcome = await exchange(this.pool, exchanged, deadline, input.abandon);
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
        outcome = await exchange(
          this.pool,
          { ...exchanged, headers: { ...headers, Authorization: `Bearer ${fresh}` } },
          deadline,
          input.abandon,
        );
      }
    }
    outcome.durationMs = elapsed();
    return outcome;
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
