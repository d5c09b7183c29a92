import { randomUUID } from 'node:crypto';
import type { RedisClient } from '@mcp-gateway/redis';
import type { AxiosInstance } from 'axios';
import type { AuthCredentials } from '@mcp-gateway/config';

interface StoredToken {
  accessToken: string;
  /** Epoch ms; absent when the token server gave no expiry. */
  expiresAt?: number;
}

const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** A token expiring within this margin is refreshed before use. */
const EXPIRY_MARGIN_MS = 30_000;
const LOCK_MS = 15_000;
const NO_EXPIRY_TTL_S = 24 * 3600;
const REFRESH_TOKEN_TTL_S = 30 * 24 * 3600;

export function oauth2Keys(prefix: string, service: string) {
  const base = `${prefix}:{${service}}:oauth2`;
  return { token: `${base}:token`, refresh: `${base}:refresh`, lock: `${base}:lock` };
}

/**
 * OAuth2 access tokens shared by every worker through Redis. One refresh at a time across all
 * processes (a Redis lock); the others wait for the new token to appear instead of refreshing too.
 * Token values never reach logs or errors.
 */
export class OAuth2Tokens {
  private readonly inFlight = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly http: AxiosInstance,
  ) {}

  private async read(service: string): Promise<StoredToken | undefined> {
    const raw = await this.redis.get(oauth2Keys(this.prefix, service).token);
    if (!raw) return undefined;
    try {
      return JSON.parse(raw) as StoredToken;
    } catch {
      return undefined;
    }
  }

  /** The token to use now: the shared one, else the configured one, else a fresh one (client credentials). */
  async current(service: string, creds: AuthCredentials, deadline: number): Promise<string | undefined> {
    const stored = await this.read(service);
    if (stored && (stored.expiresAt === undefined || stored.expiresAt - EXPIRY_MARGIN_MS > Date.now())) return stored.accessToken;
    if (!stored && creds.accessToken) return creds.accessToken;
    if (creds.tokenUrl) return this.refresh(service, creds, stored?.accessToken ?? creds.accessToken, deadline);
    return stored?.accessToken ?? creds.accessToken;
  }

  /**
   * A token newer than `used` (the one the backend refused). Exactly one process asks the token
   * endpoint; the rest wait for its answer in Redis. Undefined when no new token could be had.
   */
  async refresh(service: string, creds: AuthCredentials, used: string | undefined, deadline: number): Promise<string | undefined> {
    const memo = `${service}\n${used ?? ''}`;
    let p = this.inFlight.get(memo);
    if (!p) {
      p = this.refreshShared(service, creds, used, deadline).finally(() => this.inFlight.delete(memo));
      this.inFlight.set(memo, p);
    }
    return p;
  }

  private async refreshShared(
    service: string,
    creds: AuthCredentials,
    used: string | undefined,
    deadline: number,
  ): Promise<string | undefined> {
    const keys = oauth2Keys(this.prefix, service);
    const owner = randomUUID();
    while (Date.now() < deadline) {
      const stored = await this.read(service);
      if (stored && stored.accessToken !== used && (stored.expiresAt === undefined || stored.expiresAt > Date.now()))
        return stored.accessToken;
      const locked = await this.redis.set(keys.lock, owner, 'PX', LOCK_MS, 'NX');
      if (locked === 'OK') {
        try {
          // Someone may have finished a refresh between our read and our lock.
          const again = await this.read(service);
          if (again && again.accessToken !== used && (again.expiresAt === undefined || again.expiresAt > Date.now()))
            return again.accessToken;
          return await this.fetchToken(service, creds, deadline);
        } finally {
          await this.redis.eval(RELEASE_LOCK, 1, keys.lock, owner).catch(() => undefined);
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return undefined;
  }

  private async fetchToken(service: string, creds: AuthCredentials, deadline: number): Promise<string | undefined> {
    if (!creds.tokenUrl) return undefined;
    const keys = oauth2Keys(this.prefix, service);
    const stored = await this.redis.get(keys.refresh);
    try {
      return await this.requestToken(service, creds, stored ?? creds.refreshToken, deadline);
    } catch (err) {
      // A rotated refresh token that stopped working (revoked, replaced in the config): forget it and
      // try once more with the configured one (or client credentials).
      if (!stored) throw err;
      await this.redis.del(keys.refresh);
      return this.requestToken(service, creds, creds.refreshToken, deadline);
    }
  }

  private async requestToken(
    service: string,
    creds: AuthCredentials,
    refreshToken: string | undefined,
    deadline: number,
  ): Promise<string | undefined> {
    if (!creds.tokenUrl) return undefined;
    const keys = oauth2Keys(this.prefix, service);
    const form = new URLSearchParams();
    if (refreshToken) {
      form.set('grant_type', 'refresh_token');
      form.set('refresh_token', refreshToken);
    } else {
      form.set('grant_type', 'client_credentials');
    }
    if (creds.clientId) form.set('client_id', creds.clientId);
    if (creds.clientSecret) form.set('client_secret', creds.clientSecret);
    if (creds.scope) form.set('scope', creds.scope);
    const res = await this.http.post<unknown>(creds.tokenUrl, form.toString(), {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      timeout: Math.max(1000, Math.min(10_000, deadline - Date.now())),
      maxRedirects: 0,
      validateStatus: () => true,
    });
    const body = (typeof res.data === 'object' && res.data !== null ? res.data : {}) as Record<string, unknown>;
    if (res.status !== 200 || typeof body.access_token !== 'string' || body.access_token === '') {
      throw new Error(`the token endpoint of ${service} answered ${res.status} without an access token`);
    }
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : undefined;
    const token: StoredToken = { accessToken: body.access_token, ...(expiresIn ? { expiresAt: Date.now() + expiresIn * 1000 } : {}) };
    const multi = this.redis.multi().set(keys.token, JSON.stringify(token), 'EX', expiresIn ?? NO_EXPIRY_TTL_S);
    if (typeof body.refresh_token === 'string' && body.refresh_token)
      multi.set(keys.refresh, body.refresh_token, 'EX', REFRESH_TOKEN_TTL_S);
    await multi.exec();
    return token.accessToken;
  }
}
