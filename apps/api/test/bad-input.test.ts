import { startBackend, type TestBackend } from '@mcp-gateway/testing';
import { startGateway, type Running } from './harness';

// Each test has its own backend and gateway: the backend's request log is that test's alone.
let backend: TestBackend;
let gw: Running;

beforeEach(async () => {
  backend = await startBackend();
  gw = await startGateway({
    limits: { maxBodyBytes: 1_048_576 },
    services: {
      files: {
        endpoint: `${backend.url}/v1`,
        operations: [
          {
            name: 'read',
            method: 'GET',
            path: '/files/{name}',
            parameters: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
          },
          {
            name: 'write',
            method: 'POST',
            path: '/files',
            parameters: {
              type: 'object',
              properties: { name: { type: 'string', maxLength: 64 }, size: { type: 'integer', minimum: 0 } },
              required: ['name', 'size'],
            },
          },
        ],
      },
    },
  });
});

afterEach(async () => {
  await gw.close();
  await backend.close();
});

async function expectError(
  res: { status: number; body: { status: string; error: { code: string; message: string } } },
  status: number,
  code: string,
) {
  expect(res.status).toBe(status);
  expect(res.body.status).toBe('error');
  expect(res.body.error.code).toBe(code);
  expect(res.body.error.message.length).toBeGreaterThan(5);
}

describe('bad input gets a clear coded error and never reaches the backend', () => {
  it('malformed JSON → 400 VALIDATION_ERROR', async () => {
    const res = await gw.http.post('/mcp/request').set('content-type', 'application/json').send('{"service": "files",');
    await expectError(res, 400, 'VALIDATION_ERROR');
    expect(res.body.error.message).toMatch(/JSON/);
  });

  it('a body that is not a JSON object → 400', async () => {
    await expectError(await gw.http.post('/mcp/request').set('content-type', 'application/json').send('[1,2]'), 400, 'VALIDATION_ERROR');
    await expectError(await gw.http.post('/mcp/request').set('content-type', 'text/plain').send('hello'), 400, 'VALIDATION_ERROR');
    // JSON, but not an object: said as such, not as "not valid JSON".
    const nullBody = await gw.http.post('/mcp/request').set('content-type', 'application/json').send('null');
    await expectError(nullBody, 400, 'VALIDATION_ERROR');
    expect(nullBody.body.error.message).toBe('The body must be a JSON object');
  });

  it('a body its Content-Encoding does not describe → 400, not a gateway error', async () => {
    const res = await gw.http
      .post('/mcp/request')
      .set('content-type', 'application/json')
      .set('content-encoding', 'gzip')
      .send('{"service":"files"}');
    await expectError(res, 400, 'VALIDATION_ERROR');
    expect(res.body.error.message).toMatch(/could not be decompressed/);
  });

  it('parameters nested deeper than 100 levels → 400 naming the limit, however deep (no stack overflow)', async () => {
    // Written as text: JSON.stringify itself overflows the stack on the deepest.
    const send = (levels: number) =>
      gw.http
        .post('/mcp/request')
        .set('content-type', 'application/json')
        .send(
          `{"service":"files","operation":"write","parameters":{"name":"a","size":1,"deep":${'{"a":'.repeat(levels)}"leaf"${'}'.repeat(levels)}}}`,
        );
    // parameters is level 1, and `deep`'s 99 objects are levels 2 to 100: the most allowed.
    const ok = await send(99);
    expect(ok.status).toBe(200);
    expect(backend.requests).toHaveLength(1);
    for (const levels of [100, 5000]) {
      const res = await send(levels);
      await expectError(res, 400, 'VALIDATION_ERROR');
      expect(res.body.error.message).toBe('Invalid parameters: nested more than 100 levels deep');
    }
    expect(backend.requests).toHaveLength(1);
  });

  it('missing or mistyped envelope fields name the field', async () => {
    const res = await gw.http.post('/mcp/request').send({ operation: 'read' });
    await expectError(res, 400, 'VALIDATION_ERROR');
    expect(res.body.error.message).toContain('service');
    const typed = await gw.http.post('/mcp/request').send({ service: 'files', operation: 'read', parameters: 'x' });
    expect(typed.body.error.details[0].path).toBe('parameters');
    const extra = await gw.http
      .post('/mcp/request')
      .send({ service: 'files', operation: 'read', parameters: { name: 'a' }, metadata: { bogus: 1 } });
    await expectError(extra, 400, 'VALIDATION_ERROR');
    const prio = await gw.http
      .post('/mcp/request')
      .send({ service: 'files', operation: 'read', parameters: { name: 'a' }, metadata: { priority: 'urgent' } });
    await expectError(prio, 400, 'VALIDATION_ERROR');
  });

  it('unknown service → 404 UNKNOWN_SERVICE; unknown operation → 404 UNKNOWN_OPERATION', async () => {
    await expectError(await gw.http.post('/mcp/request').send({ service: 'nope', operation: 'read' }), 404, 'UNKNOWN_SERVICE');
    const op = await gw.http.post('/mcp/request').send({ service: 'files', operation: 'delete' });
    await expectError(op, 404, 'UNKNOWN_OPERATION');
    expect(op.body.error.details.operations).toEqual(['read', 'write']);
  });

  it('parameters violating the schema → 400 with the offending field', async () => {
    const res = await gw.http.post('/mcp/request').send({ service: 'files', operation: 'write', parameters: { name: 'a', size: -1 } });
    await expectError(res, 400, 'VALIDATION_ERROR');
    expect(JSON.stringify(res.body.error.details)).toContain('size');
    await expectError(
      await gw.http.post('/mcp/request').send({ service: 'files', operation: 'write', parameters: { size: 1 } }),
      400,
      'VALIDATION_ERROR',
    );
  });

  it('a body over 1 MB → 413 PAYLOAD_TOO_LARGE', async () => {
    const big = { service: 'files', operation: 'write', parameters: { name: 'x', size: 1, blob: 'a'.repeat(1_100_000) } };
    await expectError(await gw.http.post('/mcp/request').send(big), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('path traversal in a path parameter → 400, and an absolute URL stays an encoded segment', async () => {
    for (const name of ['..', '.', '%2e%2e']) {
      await expectError(
        await gw.http.post('/mcp/request').send({ service: 'files', operation: 'read', parameters: { name } }),
        400,
        'VALIDATION_ERROR',
      );
    }
    // Slashes are encoded anyway, but a backend or proxy that decodes %2F must not be walkable: refused.
    for (const name of ['../../admin', 'a/../../b', '%2e%2e%2fadmin']) {
      const res = await gw.http.post('/mcp/request').send({ service: 'files', operation: 'read', parameters: { name } });
      await expectError(res, 400, 'VALIDATION_ERROR');
      expect(res.body.error.details[0].path).toBe('parameters.name');
    }
    expect(backend.requests).toHaveLength(0);
    const abs = await gw.http
      .post('/mcp/request')
      .send({ service: 'files', operation: 'read', parameters: { name: 'http://evil.example/x' } });
    expect(abs.status).toBe(200);
    expect(backend.requests.map((r) => r.path)).toEqual(['/v1/files/http%3A%2F%2Fevil.example%2Fx']);
  });

  it('header injection in parameters goes nowhere near a header', async () => {
    const res = await gw.http
      .post('/mcp/request')
      .send({ service: 'files', operation: 'read', parameters: { name: 'a\r\nX-Injected: yes' } });
    expect(res.status).toBe(200);
    expect(backend.requests[0]!.headers['x-injected']).toBeUndefined();
    expect(backend.requests[0]!.path).toBe('/v1/files/a%0D%0AX-Injected%3A%20yes');
  });

  it('bad request ids → 400 (colons, all digits, too long)', async () => {
    for (const id of ['a:b', '12345', 'x'.repeat(200), 'sp ace']) {
      await expectError(
        await gw.http.post('/mcp/request').send({ id, service: 'files', operation: 'read', parameters: { name: 'a' } }),
        400,
        'VALIDATION_ERROR',
      );
    }
  });

  it('a bad correlation id header is replaced, not echoed', async () => {
    const res = await gw.http
      .post('/mcp/request')
      .set('X-Correlation-ID', 'has space')
      .send({ service: 'files', operation: 'read', parameters: { name: 'a' } });
    expect(res.status).toBe(200);
    expect(res.headers['x-correlation-id']).not.toBe('has space');
    // ... by the body's own correlation id when it has one.
    const withMeta = await gw.http
      .post('/mcp/request')
      .set('X-Correlation-ID', 'has space')
      .send({ service: 'files', operation: 'read', parameters: { name: 'a' }, metadata: { correlationId: 'meta-ok' } });
    expect(withMeta.headers['x-correlation-id']).toBe('meta-ok');
    expect(withMeta.body.metadata.correlationId).toBe('meta-ok');
    expect(backend.requests.at(-1)!.headers['x-correlation-id']).toBe('meta-ok');
  });
});
