import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { buildBackendRequest, importOpenApi, importOperations, ParameterValidator } from '@mcp-gateway/backends';
import type { OperationDefinition } from '@mcp-gateway/protocol';

type Doc = Record<string, unknown>;
const doc = (paths: Doc, extra: Doc = {}): Doc => ({ openapi: '3.0.3', info: { title: 't', version: '1' }, paths, ...extra });
const only = (d: Doc): OperationDefinition => {
  const { operations } = importOperations(d);
  expect(operations).toHaveLength(1);
  return operations[0]!;
};
const ok = (responses: Doc = {}) => ({ responses: { '200': { description: 'ok', ...responses } } });

describe('OpenAPI import: names', () => {
  it('keeps any operationId as the name, makes stable names without one, and numbers duplicates', () => {
    const d = doc({
      '/repos/{owner}': {
        get: { operationId: 'repos/get', ...ok() },
        put: { operationId: 'Get User', ...ok() },
        post: { operationId: 'repos/get', ...ok() },
      },
      '/pets/{petId}/photos': { get: ok(), delete: ok() },
      '/': { get: ok() },
    });
    const first = importOperations(d);
    expect(first.operations.map((o) => o.name)).toEqual([
      'repos/get',
      'Get User',
      'repos/get_2',
      'get_pets_petId_photos',
      'delete_pets_petId_photos',
      'get_root',
    ]);
    expect(importOperations(d).operations.map((o) => o.name)).toEqual(first.operations.map((o) => o.name));
    expect(first.notes).toEqual(
      expect.arrayContaining([
        {
          where: 'POST /repos/{owner}',
          operation: 'repos/get_2',
          change: 'renamed',
          reason: 'operationId repos/get is used by an earlier operation',
        },
        {
          where: 'GET /pets/{petId}/photos',
          operation: 'get_pets_petId_photos',
          change: 'renamed',
          reason: 'no operationId: named from method and path',
        },
      ]),
    );
    expect(first.total).toBe(6);
  });

  it('turns a path fragment into fixed parameters, in the place the document declares them', () => {
    const d = doc({
      '/#Action=DescribeThing': { post: { parameters: [{ name: 'Version', in: 'query', schema: { type: 'string' } }], ...ok() } },
      '/cookies#formExploded': { get: ok() },
      '/#X-Amz-Target=Svc.Op': {
        post: { parameters: [{ name: 'X-Amz-Target', in: 'header', required: true, schema: { type: 'string' } }], ...ok() },
      },
    });
    const [describe, bare, target] = importOperations(d).operations;
    // A bare word only tells operations on one path apart.
    expect(bare).toMatchObject({ name: 'get_cookies_formExploded', path: '/cookies' });
    expect(bare!.request?.fixed).toBeUndefined();
    expect(describe).toMatchObject({
      name: 'post_Action_DescribeThing',
      path: '/',
      request: { fixed: [{ in: 'query', name: 'Action', value: 'DescribeThing' }] },
    });
    expect(target).toMatchObject({ path: '/', request: { fixed: [{ in: 'header', name: 'X-Amz-Target', value: 'Svc.Op' }] } });
    expect(Object.keys((target!.parameters as { properties: Doc }).properties)).toEqual([]);
    const req = buildBackendRequest('http://svc.local', describe!, { Version: '2024' });
    expect(req.path).toBe('/?Action=DescribeThing&Version=2024');
    expect(buildBackendRequest('http://svc.local', target!, {}).headers).toMatchObject({ 'X-Amz-Target': 'Svc.Op' });
  });

  it('never takes a reserved header from a path fragment', () => {
    const { operations, notes } = importOperations(
      doc({ '/#Host=evil.example': { get: { parameters: [{ name: 'Host', in: 'header', schema: { type: 'string' } }], ...ok() } } }),
    );
    expect(operations[0]!.request?.fixed).toBeUndefined();
    expect(buildBackendRequest('http://svc.local', operations[0]!, {}).headers).not.toHaveProperty('Host');
    expect(notes).toContainEqual(
      expect.objectContaining({ change: 'parameter-left-out', reason: expect.stringMatching(/^fixed header Host/) }),
    );
  });

  it('leaves out only what it cannot call safely, saying why', () => {
    const { operations, notes } = importOperations(doc({ '/a/../b': { get: ok() }, '/echo': { trace: ok(), get: ok() } }));
    expect(operations.map((o) => o.name)).toEqual(['get_echo']);
    expect(notes.filter((n) => n.change === 'left-out')).toEqual([
      { where: 'GET /a/../b', change: 'left-out', reason: expect.stringMatching(/^path: must be a plain path/) },
      { where: 'TRACE /echo', change: 'left-out', reason: 'TRACE echoes the request back, credentials included' },
    ]);
  });
});

describe('OpenAPI import: parameters and bodies', () => {
  it('binds header and cookie parameters, leaving out the ones the gateway owns or the credential', () => {
    const op = only(
      doc(
        {
          '/x': {
            get: {
              security: [{ key: [] }],
              parameters: [
                { name: 'X-Trace', in: 'header', schema: { type: 'string' } },
                { name: 'session', in: 'cookie', schema: { type: 'string' } },
                { name: 'Host', in: 'header', schema: { type: 'string' } },
                { name: 'api_key', in: 'header', schema: { type: 'string' } },
                { name: 'Bad Name', in: 'header', schema: { type: 'string' } },
                { name: 'page[size]', in: 'query', schema: { type: 'integer' } },
              ],
              ...ok(),
            },
          },
        },
        { components: { securitySchemes: { key: { type: 'apiKey', in: 'header', name: 'api_key' } } } },
      ),
    );
    expect(Object.keys((op.parameters as { properties: Doc }).properties)).toEqual(['X-Trace', 'session', 'page_size_']);
    expect(op.request?.apiKey).toEqual({ in: 'header', name: 'api_key' });
    const req = buildBackendRequest(
      'http://svc.local',
      op,
      { 'X-Trace': 't1', session: 'a b', page_size_: 5 },
      { apiKey: { in: 'header', name: 'api_key', value: 'k' } },
    );
    expect(req.path).toBe('/x?page%5Bsize%5D=5');
    expect(req.headers).toMatchObject({ 'X-Trace': 't1', Cookie: 'session=a%20b', api_key: 'k' });
    expect(() => buildBackendRequest('http://svc.local', op, { 'X-Trace': 'a\r\nX-Evil: 1' })).toThrow(/header value must be one line/);
  });

  it('serializes query parameters by style and explode', () => {
    const p = (name: string, style: string, explode: boolean, schema: Doc) => ({ name, in: 'query', style, explode, schema });
    const op = only(
      doc({
        '/q': {
          get: {
            parameters: [
              p('a', 'form', true, { type: 'array', items: { type: 'integer' } }),
              p('b', 'form', false, { type: 'array', items: { type: 'integer' } }),
              p('c', 'pipeDelimited', false, { type: 'array', items: { type: 'string' } }),
              p('d', 'spaceDelimited', false, { type: 'array', items: { type: 'string' } }),
              p('e', 'deepObject', true, { type: 'object' }),
              p('f', 'form', true, { type: 'object' }),
            ],
            ...ok(),
          },
        },
      }),
    );
    const req = buildBackendRequest('http://svc.local', op, {
      a: [1, 2],
      b: [3, 4],
      c: ['x', 'y'],
      d: ['x', 'y'],
      e: { R: 100, G: 200 },
      f: { k: 'v' },
    });
    expect(req.path).toBe('/q?a=1&a=2&b=3,4&c=x|y&d=x%20y&e%5BR%5D=100&e%5BG%5D=200&k=v');
  });

  it('spreads an object body into arguments, and uses one body argument when names collide or it is not an object', () => {
    const body = (schema: Doc, type = 'application/json') => ({ requestBody: { required: true, content: { [type]: { schema } } } });
    const spread = only(
      doc({
        '/u/{id}': {
          put: {
            parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
            ...body({ type: 'object', properties: { name: { type: 'string' } }, required: ['name'] }),
            ...ok(),
          },
        },
      }),
    );
    expect(spread.parameters).toMatchObject({ required: ['id', 'name'], additionalProperties: false });
    expect(buildBackendRequest('http://svc.local', spread, { id: '7', name: 'Ada' })).toMatchObject({
      path: '/u/7',
      body: { name: 'Ada' },
    });

    const collide = only(
      doc({
        '/u/{id}': {
          put: {
            parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
            ...body({ type: 'object', properties: { id: { type: 'string' } } }),
            ...ok(),
          },
        },
      }),
    );
    expect(Object.keys((collide.parameters as { properties: Doc }).properties)).toEqual(['id', 'body']);
    expect(buildBackendRequest('http://svc.local', collide, { id: '7', body: { id: 'x' } }).body).toEqual({ id: 'x' });

    // An optional body: its required properties are required once any of its properties is sent.
    const optional = only(
      doc({
        '/o': {
          post: {
            requestBody: {
              content: {
                'application/json': {
                  schema: { type: 'object', properties: { id: { type: 'string' }, note: { type: 'string' } }, required: ['id'] },
                },
              },
            },
            ...ok(),
          },
        },
      }),
    );
    expect(optional.parameters).toMatchObject({ dependentRequired: { note: ['id'] } });
    expect(optional.parameters).not.toHaveProperty('required');
    const validator = new ParameterValidator();
    expect(() => validator.validate('s', optional, {})).not.toThrow();
    expect(() => validator.validate('s', optional, { note: 'n' })).toThrow(/id is required when note is given/);

    // A free-form object body: the arguments no parameter takes are its properties.
    const echo = only(
      doc({
        '/echo/{id}': {
          post: {
            parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
            ...body({ type: 'object' }),
            ...ok(),
          },
        },
      }),
    );
    expect(echo.parameters).toMatchObject({ properties: { id: { type: 'string' } }, additionalProperties: true });
    expect(() => new ParameterValidator().validate('s', echo, { id: '1', hello: 'world' })).not.toThrow();
    expect(buildBackendRequest('http://svc.local', echo, { id: '1', hello: 'world' })).toMatchObject({
      path: '/echo/1',
      body: { hello: 'world' },
    });

    const list = only(doc({ '/tags': { post: { ...body({ type: 'array', items: { type: 'string' } }), ...ok() } } }));
    expect(buildBackendRequest('http://svc.local', list, { body: ['a', 'b'] }).body).toEqual(['a', 'b']);
  });

  it('encodes form, multipart, text and binary bodies with their media types', () => {
    const body = (type: string, schema?: Doc) => ({ requestBody: { content: { [type]: schema ? { schema } : {} } }, ...ok() });
    const form = only(
      doc({
        '/f': {
          post: body('application/x-www-form-urlencoded', {
            type: 'object',
            properties: { name: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } },
          }),
        },
      }),
    );
    expect(buildBackendRequest('http://svc.local', form, { name: 'a b', tags: ['x', 'y'] }).encoded).toEqual({
      contentType: 'application/x-www-form-urlencoded',
      data: 'name=a+b&tags=x&tags=y',
    });

    const upload = only(
      doc({
        '/m': {
          post: body('multipart/form-data', {
            type: 'object',
            properties: { file: { type: 'string', format: 'binary' }, note: { type: 'string' } },
          }),
        },
      }),
    );
    expect((upload.parameters as { properties: Doc }).properties.file).toMatchObject({ type: 'string', contentEncoding: 'base64' });
    const multipart = buildBackendRequest('http://svc.local', upload, {
      file: Buffer.from('hello').toString('base64'),
      note: 'n',
    }).encoded!;
    const boundary = /boundary=(.+)$/.exec(multipart.contentType)![1]!;
    const text = Buffer.from(multipart.data).toString();
    expect(text).toContain(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="file"\r\nContent-Type: application/octet-stream\r\n\r\nhello\r\n`,
    );
    expect(text).toContain('name="note"\r\n\r\nn\r\n');
    expect(() => buildBackendRequest('http://svc.local', upload, { file: 'not base64!' })).toThrow(/must be base64-encoded bytes/);

    const bytes = only(doc({ '/b': { put: body('application/octet-stream', { type: 'string', format: 'binary' }) } }));
    const sent = buildBackendRequest('http://svc.local', bytes, { body: Buffer.from([0, 255]).toString('base64') }).encoded!;
    expect(sent.contentType).toBe('application/octet-stream');
    expect([...sent.data]).toEqual([0, 255]);

    const xml = only(doc({ '/x': { post: body('application/xml', { type: 'string' }) } }));
    expect(buildBackendRequest('http://svc.local', xml, { body: '<a/>' }).encoded).toEqual({
      contentType: 'application/xml',
      data: '<a/>',
    });
  });

  it('asks for the media types the document lists, and adds its server path unless the endpoint has it', () => {
    const op = only(
      doc(
        { '/pets': { get: { responses: { '200': { description: 'ok', content: { 'application/xml': {}, 'application/json': {} } } } } } },
        { servers: [{ url: 'https://{host}/api/{version}', variables: { host: { default: 'x' }, version: { default: 'v3' } } }] },
      ),
    );
    expect(op.request).toMatchObject({ accept: 'application/json, application/xml', basePath: '/api/v3' });
    expect(buildBackendRequest('http://svc.local', op, {}).path).toBe('/api/v3/pets');
    expect(buildBackendRequest('http://svc.local/api/v3', op, {}).path).toBe('/api/v3/pets');
    expect(buildBackendRequest('http://svc.local', op, {}, { basePath: '/' }).path).toBe('/pets');
    expect(buildBackendRequest('http://svc.local', op, {}, { basePath: '/other' }).path).toBe('/other/pets');
  });

  it('never leaves the endpoint, whatever a path argument holds', () => {
    const op = only(
      doc({
        '/files/{name}': { get: { parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }], ...ok() } },
      }),
    );
    expect(buildBackendRequest('http://svc.local/base', op, { name: 'a/b?c#d' }).path).toBe('/base/files/a%2Fb%3Fc%23d');
    expect(() => buildBackendRequest('http://svc.local/base', op, { name: '../../etc' })).toThrow(
      /must not contain \. or \.\. path segments/,
    );
    expect(() => buildBackendRequest('http://svc.local/base', op, { name: '..' })).toThrow(/must not contain \. or \.\. path segments/);
    expect(buildBackendRequest('http://svc.local/base', op, { name: 'http://evil.example/' }).origin).toBe('http://svc.local');
  });
});

describe('OpenAPI import: schemas', () => {
  const ajv = () => new Ajv2020({ strict: true, strictTypes: false, strictRequired: false, strictTuples: false, validateFormats: false });

  it('keeps cycles as $defs, nullable as a type union, and descriptions, enums, formats, defaults and examples', () => {
    const op = only(
      doc(
        {
          '/nodes': {
            post: {
              requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/Node' } } } },
              responses: {
                '200': { description: 'ok', content: { 'application/json': { schema: { $ref: '#/components/schemas/Node' } } } },
              },
            },
          },
        },
        {
          components: {
            schemas: {
              Node: {
                type: 'object',
                description: 'A tree node',
                properties: {
                  id: { type: 'integer', format: 'int64', readOnly: true },
                  label: { type: 'string', nullable: true, default: 'x', example: 'root', 'x-internal': true },
                  kind: { type: 'string', enum: ['a', 'b'] },
                  children: { type: 'array', items: { $ref: '#/components/schemas/Node' } },
                },
              },
            },
          },
        },
      ),
    );
    const props = (op.parameters as { properties: Doc }).properties;
    expect(props.id).toBeUndefined();
    expect(props.label).toEqual({ type: ['string', 'null'], default: 'x', examples: ['root'] });
    expect(props.kind).toEqual({ type: 'string', enum: ['a', 'b'] });
    expect(props.children).toEqual({ type: 'array', items: { $ref: '#/$defs/Node' } });
    expect((op.parameters as { $defs: Doc }).$defs.Node).toMatchObject({
      type: 'object',
      description: 'A tree node',
      properties: { children: { items: { $ref: '#/$defs/Node' } } },
    });
    expect(op.outputSchema).toMatchObject({ type: 'object', properties: { id: { type: 'integer', format: 'int64' } } });
    expect(() => ajv().compile(op.parameters)).not.toThrow();
    expect(() => ajv().compile(op.outputSchema!)).not.toThrow();
    // The gateway's own validator reads the same schema, $defs and all.
    const validator = new ParameterValidator();
    expect(() => validator.validate('s', op, { label: null, children: [{ label: 'c', children: [] }] })).not.toThrow();
    expect(() => validator.validate('s', op, { children: [{ kind: 'z' }] })).toThrow(
      /children\.0\.kind must be equal to one of the allowed values/,
    );
  });

  it('keeps a oneOf as it is, and reads answers tolerantly', () => {
    const cat = { type: 'object', properties: { kind: { type: 'string' }, meows: { type: 'boolean' } }, required: ['kind'] };
    const dog = { type: 'object', properties: { kind: { type: 'string' }, barks: { type: 'boolean' } }, required: ['kind'] };
    const op = only(
      doc({
        '/pets': {
          post: {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: { oneOf: [cat, dog], discriminator: { propertyName: 'kind' } } } },
            },
            responses: {
              '200': { description: 'ok', content: { 'application/json': { schema: { ...cat, additionalProperties: false } } } },
            },
          },
        },
      }),
    );
    expect((op.parameters as { properties: { body: Doc } }).properties.body).toEqual({ oneOf: [cat, dog] });
    // As JSON Schema (and a validating backend) reads it: {kind} fits both branches, so neither.
    expect(() => new ParameterValidator().validate('s', op, { body: { kind: 'cat', meows: true } })).toThrow(
      /must match exactly one schema in oneOf/,
    );
    expect(() => new ParameterValidator().validate('s', op, { body: { kind: 'cat', meows: true, barks: 'no' } })).not.toThrow();
    expect(op.outputSchema).toEqual({ type: 'object', properties: cat.properties });
  });

  it('drops a pattern JavaScript cannot compile, saying so in the description', () => {
    const op = only(
      doc({ '/p': { get: { parameters: [{ name: 'q', in: 'query', schema: { type: 'string', pattern: '\\Z(?i)x' } }], ...ok() } } }),
    );
    expect((op.parameters as { properties: Doc }).properties.q).toEqual({
      type: 'string',
      description: 'Pattern (not checked here): \\Z(?i)x',
    });
  });
});

describe('OpenAPI documents', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcp-openapi-'));

  it('reads Swagger 2.0 and YAML, and resolves external references against the document path', async () => {
    writeFileSync(path.join(dir, 'pet.yaml'), 'type: object\nproperties:\n  name: {type: string}\nrequired: [name]\n');
    writeFileSync(
      path.join(dir, 'api.yaml'),
      [
        'swagger: "2.0"',
        'info: {title: t, version: "1"}',
        'basePath: /v2',
        'paths:',
        '  /pets:',
        '    post:',
        '      parameters:',
        '        - {name: body, in: body, required: true, schema: {$ref: "./pet.yaml"}}',
        '      responses: {"200": {description: ok}}',
      ].join('\n'),
    );
    const { operations, document } = await importOpenApi({ file: path.join(dir, 'api.yaml') });
    expect(document.format).toBe('Swagger 2.0 (converted to OpenAPI 3.0)');
    expect(operations[0]).toMatchObject({ name: 'post_pets', request: { basePath: '/v2', body: { mediaType: 'application/json' } } });
    expect(operations[0]!.parameters).toMatchObject({ properties: { name: { type: 'string' } }, required: ['name'] });
  });

  it("refuses what it cannot read, with the parser's reason", async () => {
    writeFileSync(path.join(dir, 'broken.yaml'), 'openapi: 3.0.0\npaths: {a: [}\n');
    await expect(importOpenApi({ file: path.join(dir, 'broken.yaml') })).rejects.toThrow(
      /broken\.yaml could not be read: not valid JSON or YAML: .* at line 2/,
    );
    writeFileSync(path.join(dir, 'other.json'), JSON.stringify({ hello: 'world' }));
    await expect(importOpenApi({ file: path.join(dir, 'other.json') })).rejects.toThrow(/neither "openapi: 3.x" nor "swagger: 2.0"/);
    writeFileSync(
      path.join(dir, 'missing-ref.json'),
      JSON.stringify(doc({ '/a': { get: { parameters: [{ $ref: './nowhere.json' }], ...ok() } } })),
    );
    await expect(importOpenApi({ file: path.join(dir, 'missing-ref.json') })).rejects.toThrow(/nowhere\.json/);
  });
});

describe('OpenAPI import: what a review found', () => {
  it('lets no argument set a query parameter the gateway or document owns, nor cut the query short', () => {
    const op = only(
      doc(
        {
          '/#Action=Describe': {
            get: {
              security: [{ key: [] }],
              parameters: [
                { name: 'filter', in: 'query', schema: { type: 'object' } },
                { name: 'q', in: 'query', allowReserved: true, schema: { type: 'string' } },
                { name: 'api_key', in: 'query', schema: { type: 'string' } },
              ],
              ...ok(),
            },
          },
        },
        { components: { securitySchemes: { key: { type: 'apiKey', in: 'query', name: 'api_key' } } } },
      ),
    );
    expect(Object.keys((op.parameters as { properties: Doc }).properties)).toEqual(['filter', 'q']);
    const key = { apiKey: { in: 'query' as const, name: 'api_key', value: 'SECRET' } };
    expect(() => buildBackendRequest('http://svc.local', op, { filter: { Action: 'DeleteAll' } }, key)).toThrow(
      /must not set the query parameter Action/,
    );
    expect(() => buildBackendRequest('http://svc.local', op, { filter: { api_key: 'mine' } }, key)).toThrow(
      /must not set the query parameter api_key/,
    );
    expect(buildBackendRequest('http://svc.local', op, { q: 'a/b:c&api_key=x#frag' }, key).path).toBe(
      '/?Action=Describe&q=a/b:c%26api_key%3Dx%23frag&api_key=SECRET',
    );
  });

  it('keeps null allowed beside allOf or a reference, and 3.1 keywords beside a reference', () => {
    const components = { schemas: { User: { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] } } };
    const body = (schema: Doc, version = '3.0.3') => ({
      ...doc(
        {
          '/u': {
            post: {
              requestBody: {
                required: true,
                content: { 'application/json': { schema: { type: 'object', properties: { owner: schema } } } },
              },
              ...ok(),
            },
          },
        },
        { components },
      ),
      openapi: version,
    });
    const owner = (d: Doc) => (only(d).parameters as { properties: { owner: Doc } }).properties.owner;
    expect(owner(body({ nullable: true, allOf: [{ $ref: '#/components/schemas/User' }] }))).toEqual({
      anyOf: [{ allOf: [components.schemas.User] }, { type: 'null' }],
    });
    expect(owner(body({ nullable: true, $ref: '#/components/schemas/User' }))).toEqual({
      anyOf: [components.schemas.User, { type: 'null' }],
    });
    expect(owner(body({ $ref: '#/components/schemas/User', properties: { extra: { type: 'string' } } }, '3.1.0'))).toEqual({
      allOf: [components.schemas.User],
      properties: { extra: { type: 'string' } },
    });
    expect(owner(body({ $ref: '#/components/schemas/User', type: 'string' }))).toEqual(components.schemas.User);
  });

  it('drops a patternProperties key JavaScript cannot compile, sends a required body with no arguments, and keeps operationIds for their operations', () => {
    const d = doc({
      '/a': {
        post: {
          operationId: 'x',
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: { type: 'object', properties: { n: { type: 'integer' } }, patternProperties: { '^[a-z\\_]+$': {} } },
              },
            },
          },
          ...ok(),
        },
        put: { operationId: 'x', ...ok() },
      },
      '/b': { get: { operationId: 'x_2', ...ok() } },
    });
    const ops = importOperations(d).operations;
    // PUT is listed before POST: the first x keeps it, the next skips x_2 (another operation's id).
    expect(ops.map((o) => `${o.method} ${o.name}`)).toEqual(['PUT x', 'POST x_3', 'GET x_2']);
    const post = ops.find((o) => o.method === 'POST');
    expect(() => new ParameterValidator().validate('s', post!, {})).not.toThrow();
    expect(buildBackendRequest('http://svc.local', post!, {}).body).toEqual({});
  });
});
