import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { startGateway, type Running } from './harness';

const SECRET = 'hs256-secret-for-tests-0123456789abcdef';
const enc = new TextEncoder().encode(SECRET);
const ISSUER = 'https://auth.example.test';
const AUDIENCE = 'mcp-gateway';

let backend: TestBackend;
let jwks: TestBackend;
let hs: Running;
let rs: Running;
let rsKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

const call = (service: string) => ({ service, operation: 'op', parameters: {} });
const token = (claims: Record<string, unknown>, opts: { iss?: string; aud?: string; exp?: string | number; key?: Uint8Array } = {}) => {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setIssuer(opts.iss ?? ISSUER)
    .setAudience(opts.aud ?? AUDIENCE)
    .setExpirationTime(opts.exp ?? '5m');
  return jwt.sign(opts.key ?? enc);
};

beforeAll(async () => {
  backend = await startBackend();
  const pair = await generateKeyPair('RS256');
  rsKey = pair.privateKey;
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  jwks = await startBackend(() => ({ status: 200, body: { keys: [publicJwk] } }));
  const services = { users: { endpoint: backend.url }, billing: { endpoint: backend.url } };
  hs = await startGateway({
    security: { jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE } },
    cors: { origins: ['https://console.example.test'] },
    services,
  });
  rs = await startGateway({ security: { jwt: { jwksUrl: `${jwks.url}/.well-known/jwks.json` } }, services });
});

afterAll(async () => {
  await hs.close();
  await rs.close();
  await backend.close();
  await jwks.close();
});

describe('agent JWTs', () => {
  it('accept a valid token: sub is the agent, service:<name> scopes the services', async () => {
    const t = await token({ sub: 'planner-7', scope: 'service:users other' });
    const ok = await hs.http
      .post('/mcp/request')
      .set('Authorization', `Bearer ${t}`)
      .send({ ...call('users'), metadata: { agentId: 'spoofed' } });
    expect(ok.status).toBe(200);
    expect((await hs.api.deps.broker.records.get(ok.body.id))?.agentId).toBe('planner-7');
    const forbidden = await hs.http.post('/mcp/request').set('Authorization', `Bearer ${t}`).send(call('billing'));
    expect(forbidden.status).toBe(403);
    const all = await token({ sub: 'ops', scp: ['service:*'] });
    expect((await hs.http.post('/mcp/request').set('X-API-Key', all).send(call('billing'))).status).toBe(200);
    const list = await hs.http.get('/mcp/services').set('Authorization', `Bearer ${t}`);
    expect(list.body.services.map((s: { name: string }) => s.name)).toEqual(['users']);
  });

  it.each([
    ['expired', () => token({ sub: 'a', scope: 'service:*' }, { exp: Math.floor(Date.now() / 1000) - 60 }), /exp/],
    ['wrong issuer', () => token({ sub: 'a', scope: 'service:*' }, { iss: 'https://evil.example' }), /iss/],
    ['wrong audience', () => token({ sub: 'a', scope: 'service:*' }, { aud: 'someone-else' }), /aud/],
    [
      'wrong key',
      () => token({ sub: 'a', scope: 'service:*' }, { key: new TextEncoder().encode('another-secret-of-enough-length-xyz') }),
      /signature/,
    ],
    ['no subject', () => token({ scope: 'service:*' }), /subject/],
  ])('refuse a token with %s (401, a reason, never the token)', async (_what, make, reason) => {
    const t = await make();
    const res = await hs.http.post('/mcp/request').set('Authorization', `Bearer ${t}`).send(call('users'));
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('UNAUTHORIZED');
    expect(res.body.error.message).toMatch(reason);
    expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
    expect(res.text).not.toContain(t);
  });

  it('verify RS256 tokens against a JWKS fetched from its URL', async () => {
    const t = await new SignJWT({ sub: 'rs-agent', scope: 'service:users' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setExpirationTime('5m')
      .sign(rsKey);
    const res = await rs.http.post('/mcp/request').set('Authorization', `Bearer ${t}`).send(call('users'));
    expect(res.status).toBe(200);
    expect(jwks.requests.length).toBeGreaterThanOrEqual(1);
    // An HS256 token is not accepted where the JWKS decides.
    const hsToken = await token({ sub: 'a', scope: 'service:*' });
    expect((await rs.http.post('/mcp/request').set('Authorization', `Bearer ${hsToken}`).send(call('users'))).status).toBe(401);
  });
});

describe('headers and browsers', () => {
  it('security headers on every answer, errors included', async () => {
    for (const res of [
      await hs.http.get('/mcp/health'),
      await hs.http.post('/mcp/request').send(call('users')),
      await hs.http.get('/metrics'),
    ]) {
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(res.headers['strict-transport-security']).toMatch(/max-age=/);
      expect(res.headers['content-security-policy']).toContain("default-src 'self'");
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
  });

  it('CORS: an allowed origin gets its preflight answered without credentials; others get no grant', async () => {
    const pre = await hs.http
      .options('/mcp/request')
      .set('Origin', 'https://console.example.test')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization,content-type');
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('https://console.example.test');
    expect(pre.headers['access-control-allow-headers']).toMatch(/Authorization/i);
    const foreign = await hs.http
      .options('/mcp/request')
      .set('Origin', 'https://evil.example')
      .set('Access-Control-Request-Method', 'POST');
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
    const get = await hs.http.get('/mcp/health').set('Origin', 'https://console.example.test');
    expect(get.headers['access-control-expose-headers']).toContain('X-Correlation-ID');
  });
});
