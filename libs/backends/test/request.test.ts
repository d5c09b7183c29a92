import { OperationDefinitionSchema, type OperationDefinitionInput } from '@mcp-gateway/protocol';
import { buildBackendRequest, ParameterValidator, pathValueProblem } from '@mcp-gateway/backends';

const op = (o: Partial<OperationDefinitionInput>) => OperationDefinitionSchema.parse({ name: 'op', path: '/x', ...o });

describe('buildBackendRequest', () => {
  it('fills path parameters URL-encoded, keeps the base path and the endpoint query', () => {
    const r = buildBackendRequest('http://svc.local:8080/api/v2/?tenant=t1', op({ method: 'GET', path: '/users/{id}/posts/{post}' }), {
      id: 'a/b c?d#e',
      post: 42,
      q: 'x y',
      tags: ['a', 'b'],
      filter: { on: true },
      skip: null,
    });
    const u = new URL(r.url);
    expect(u.origin).toBe('http://svc.local:8080');
    expect(u.pathname).toBe('/api/v2/users/a%2Fb%20c%3Fd%23e/posts/42');
    expect(u.searchParams.get('tenant')).toBe('t1');
    expect(u.searchParams.getAll('tags')).toEqual(['a', 'b']);
    expect(u.searchParams.get('q')).toBe('x y');
    expect(u.searchParams.get('filter')).toBe('{"on":true}');
    expect(u.searchParams.has('skip')).toBe(false);
    expect(r.body).toBeUndefined();
    // What the connection pool is given: the origin, and the path with the query.
    expect(r.origin).toBe('http://svc.local:8080');
    expect(r.path).toBe(`${u.pathname}${u.search}`);
    expect(r.path.startsWith('/api/v2/users/a%2Fb%20c%3Fd%23e/posts/42?tenant=t1&')).toBe(true);
  });

  it('sends the non-path parameters as the JSON body for POST/PUT/PATCH', () => {
    const r = buildBackendRequest('http://svc.local', op({ method: 'PUT', path: '/users/{id}' }), { id: '7', name: 'Ada', roles: ['x'] });
    expect(r).toEqual({
      method: 'PUT',
      url: 'http://svc.local/users/7',
      origin: 'http://svc.local',
      path: '/users/7',
      body: { name: 'Ada', roles: ['x'] },
    });
    expect(buildBackendRequest('http://svc.local', op({ method: 'POST' }), {}).body).toEqual({});
  });

  it('sends the parameters an operation names in `query` in the query string, even for POST', () => {
    const r = buildBackendRequest('http://svc.local/?k=1', op({ method: 'POST', path: '/users', query: ['notify', 'tags', 'absent'] }), {
      name: 'Ada',
      notify: true,
      tags: ['a', 'b'],
    });
    expect(r).toEqual({
      method: 'POST',
      url: 'http://svc.local/users?k=1&notify=true&tags=a&tags=b',
      origin: 'http://svc.local',
      path: '/users?k=1&notify=true&tags=a&tags=b',
      body: { name: 'Ada' },
    });
  });

  it('never leaves the endpoint: traversal is refused, absolute URLs and CRLF stay inside one segment', () => {
    const read = op({ method: 'GET', path: '/files/{name}' });
    for (const name of ['..', '.', '%2e%2e', '%252e%252e', '../../admin', 'a/../../b', '..\\..\\win', '']) {
      expect(() => buildBackendRequest('http://svc.local/v1', read, { name })).toThrow(
        expect.objectContaining({ code: 'VALIDATION_ERROR' }),
      );
    }
    expect(new URL(buildBackendRequest('http://svc.local/v1', read, { name: 'http://evil.example/x' }).url).pathname).toBe(
      '/v1/files/http%3A%2F%2Fevil.example%2Fx',
    );
    expect(buildBackendRequest('http://svc.local/v1', read, { name: '//evil.example' }).url).toBe(
      'http://svc.local/v1/files/%2F%2Fevil.example',
    );
    expect(buildBackendRequest('http://svc.local/v1', read, { name: 'a\r\nX-Injected: yes' }).url).toBe(
      'http://svc.local/v1/files/a%0D%0AX-Injected%3A%20yes',
    );
    expect(buildBackendRequest('http://svc.local/v1', read, { name: '...' }).url).toBe('http://svc.local/v1/files/...');
  });

  it('pathValueProblem explains what is wrong', () => {
    expect(pathValueProblem(undefined)).toMatch(/required/);
    expect(pathValueProblem({})).toMatch(/string, number or boolean/);
    expect(pathValueProblem('ok')).toBeUndefined();
  });
});

describe('ParameterValidator', () => {
  const v = new ParameterValidator();
  const write = op({
    name: 'write',
    method: 'POST',
    path: '/files/{name}',
    parameters: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        size: { type: 'integer', minimum: 0, format: 'int32' },
        mail: { type: 'string', format: 'email' },
      },
      required: ['name', 'size'],
      additionalProperties: false,
    },
  });

  it('accepts valid parameters', () => {
    expect(() => v.validate('files', write, { name: 'a', size: 3, mail: 'a@b.example' })).not.toThrow();
  });

  it('names each offending field under parameters.*', () => {
    let caught: { code?: string; message?: string; details?: unknown } = {};
    try {
      v.validate('files', write, { size: -1, extra: true, mail: 'not-mail' });
    } catch (err) {
      caught = err as typeof caught;
    }
    expect(caught.code).toBe('VALIDATION_ERROR');
    const paths = (caught.details as { path: string }[]).map((d) => d.path).sort();
    expect(paths).toEqual(['parameters.extra', 'parameters.mail', 'parameters.name', 'parameters.size']);
    expect(caught.message).toContain('files.write');
  });

  it('requires a usable value for each path placeholder even when the schema forgets it', () => {
    const loose = op({ method: 'GET', path: '/items/{id}', parameters: { type: 'object' } });
    expect(() => v.validate('s', loose, {})).toThrow(/id is required/);
    expect(() => v.validate('s', loose, { id: '..' })).toThrow(/\.\./);
  });

  it('reports a broken schema as the operator’s problem, not the caller’s', () => {
    const broken = op({ parameters: { type: 'object', properties: { a: { type: 'no-such-type' } } } });
    expect(() => v.validate('s', broken, {})).toThrow(expect.objectContaining({ code: 'INTERNAL_ERROR' }));
  });
});
