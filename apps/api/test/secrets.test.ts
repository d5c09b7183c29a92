import type { Response } from 'supertest';
import { SignJWT } from 'jose';
import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { capturingLogger, startGateway, type Running } from './harness';

/**
 * A secret planted in every field of the configuration that can hold one must never appear in a
 * log line (debug level, config dump included), a response (body or headers) or a metric.
 */
const S = {
  bearer: 'plant-bearer-9f1c2e',
  apiKey: 'plant-apikey-7a3b4d',
  access: 'plant-access-5e6f70',
  refresh: 'plant-refresh-1a2b3c',
  clientSecret: 'plant-clientsecret-4d5e6f',
  urlPassword: 'plant-urlpass-8c9d0e',
  urlQuery: 'plant-urlquery-2f3a4b',
  inboundKey: 'plant-inbound-key-6c7d8e',
  admin: 'plant-admin-token-0a1b2c3d',
  jwtSecret: 'plant-jwt-secret-4e5f6a7b8c9d0e1f2a3b',
  registered: 'plant-registered-token-3c4d5e',
};

let backend: TestBackend;
let tokenServer: TestBackend;
let gw: Running;
const log = capturingLogger('debug');
const seen: string[] = [];
const keep = (res: Response) => {
  seen.push(res.text ?? '', JSON.stringify(res.headers));
  return res;
};

beforeAll(async () => {
  backend = await startBackend((req) =>
    req.path.startsWith('/deny') ? { status: 401, body: { error: 'no' } } : { status: 200, body: { ok: true } },
  );
  tokenServer = await startBackend(() => ({ status: 400, body: { error: 'invalid_grant' } }));
  gw = await startGateway(
    {
      security: { apiKeys: [{ key: S.inboundKey, agentId: 'agent-1' }], adminToken: S.admin, jwt: { secret: S.jwtSecret } },
      services: {
        bearer: { endpoint: backend.url, auth: { type: 'bearer', credentials: { token: S.bearer } } },
        keyed: { endpoint: backend.url, auth: { type: 'api-key', credentials: { apiKey: S.apiKey, headerName: 'X-Backend-Key' } } },
        oauth: {
          endpoint: `${backend.url}/deny`,
          auth: {
            type: 'oauth2',
            credentials: {
              accessToken: S.access,
              refreshToken: S.refresh,
              tokenUrl: `${tokenServer.url}/token`,
              clientId: 'gw',
              clientSecret: S.clientSecret,
            },
          },
        },
        userinfo: { endpoint: `http://user:${S.urlPassword}@127.0.0.1:${backend.port}/api?key=${S.urlQuery}` },
      },
    },
    undefined,
    { logger: log.logger },
  );
  const key = (r: ReturnType<Running['http']['get']>) => r.set('X-API-Key', S.inboundKey);
  keep(await key(gw.http.post('/mcp/request')).send({ service: 'bearer', operation: 'op' }));
  keep(await key(gw.http.post('/mcp/request')).send({ service: 'keyed', operation: 'op' }));
  keep(await key(gw.http.post('/mcp/request')).send({ service: 'oauth', operation: 'op' }));
  keep(await key(gw.http.post('/mcp/request')).send({ service: 'userinfo', operation: 'op' }));
  keep(await key(gw.http.post('/mcp/request')).send({ service: 'bearer', operation: 'op', parameters: 'bad' }));
  keep(await gw.http.post('/mcp/request').set('Authorization', 'Bearer not-a-valid-key').send({ service: 'bearer', operation: 'op' }));
  const jwt = await new SignJWT({ sub: 'jwt-agent', scope: 'service:*' })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('1m')
    .sign(new TextEncoder().encode(S.jwtSecret));
  keep(await gw.http.post('/mcp/request').set('Authorization', `Bearer ${jwt}`).send({ service: 'keyed', operation: 'op' }));
  keep(
    await gw.http
      .post('/mcp/services')
      .set('X-Admin-Token', S.admin)
      .send({ name: 'reg', endpoint: backend.url, auth: { type: 'bearer', credentials: { token: S.registered } } }),
  );
  keep(await gw.http.post('/mcp/services').set('X-Admin-Token', 'wrong-admin-token').send({ name: 'x', endpoint: backend.url }));
  keep(await key(gw.http.post('/mcp/request')).send({ service: 'reg', operation: 'op' }));
  for (const path of [
    '/mcp/services',
    '/mcp/health',
    '/metrics',
    '/mcp/services/oauth/definition',
    '/mcp/services/bearer/metrics',
    '/mcp/services/userinfo/metrics',
  ]) {
    keep(await key(gw.http.get(path)));
  }
});

afterAll(async () => {
  await gw.close();
  await backend.close();
  await tokenServer.close();
});

it('the traffic did reach the backends with the credentials (so the secrets were in play)', () => {
  const auths = backend.requests.map((r) => String(r.headers.authorization ?? r.headers['x-backend-key'] ?? ''));
  expect(auths).toEqual(expect.arrayContaining([`Bearer ${S.bearer}`, S.apiKey, `Bearer ${S.access}`, `Bearer ${S.registered}`]));
  expect(tokenServer.requests.length).toBeGreaterThanOrEqual(1);
  expect(log.lines.some((l) => l.msg === 'configuration')).toBe(true);
  expect(log.lines.filter((l) => l.msg === 'request finished').length).toBeGreaterThanOrEqual(6);
});

it.each(Object.entries(S))('never shows the %s secret in logs, responses or metrics', (_field, secret) => {
  expect(log.text()).not.toContain(secret);
  for (const text of seen) expect(text).not.toContain(secret);
});
