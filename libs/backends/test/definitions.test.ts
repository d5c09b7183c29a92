import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewayConfigManager } from '@mcp-gateway/config';
import { findOperation, loadServiceDefinition } from '@mcp-gateway/backends';
import { startBackend, type TestBackend } from '@mcp-gateway/testing';

const OPENAPI = {
  openapi: '3.0.3',
  info: { title: 't', version: '1' },
  components: {
    parameters: { Id: { name: 'id', in: 'path', required: true, schema: { type: 'string' } } },
    schemas: { NewUser: { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' } }, required: ['name'] } },
  },
  paths: {
    '/users/{id}': {
      parameters: [{ $ref: '#/components/parameters/Id' }],
      get: { operationId: 'getUser', summary: 'One user', parameters: [{ name: 'expand', in: 'query', schema: { type: 'boolean' } }] },
      delete: { operationId: 'deleteUser' },
    },
    '/users': {
      post: {
        operationId: 'createUser',
        parameters: [{ name: 'notify', in: 'query', schema: { type: 'boolean' } }],
        requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/NewUser' } } } },
      },
      get: { summary: 'no operationId' },
    },
  },
};

const svc = (extra: Record<string, unknown>) =>
  GatewayConfigManager.fromObject({ services: { s: { endpoint: 'http://127.0.0.1:1', ...extra } } }).services.s!;

describe('loadServiceDefinition', () => {
  let backend: TestBackend;
  let docStatus = 200;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcp-defs-'));

  // A document split over files: its references resolve against its own URL.
  const SPLIT = [
    'openapi: 3.1.0',
    'info: {title: split, version: "1"}',
    'paths:',
    '  /pets:',
    '    post:',
    '      operationId: addPet',
    '      requestBody: {required: true, content: {application/json: {schema: {$ref: "schemas/pet.yaml"}}}}',
    '      responses: {"200": {description: ok}}',
  ].join('\n');

  beforeAll(async () => {
    backend = await startBackend((req) => {
      if (req.path === '/openapi.json') return { status: docStatus, body: OPENAPI };
      if (req.path === '/docs/api.yaml') return { body: SPLIT, headers: { 'content-type': 'application/yaml' } };
      if (req.path === '/docs/schemas/pet.yaml') return { body: 'type: object\nproperties: {name: {type: string}}\nrequired: [name]\n' };
      return { status: 404 };
    });
  });
  afterAll(() => backend.close());

  it('uses the config operations first', async () => {
    const def = await loadServiceDefinition(
      's',
      svc({ operations: [{ name: 'a', path: '/a' }], openapiUrl: `${backend.url}/openapi.json` }),
    );
    expect(def.source).toBe('config');
    expect(def.operations.map((o) => o.name)).toEqual(['a']);
    expect(backend.requests).toHaveLength(0);
  });

  it('reads a definition file: {operations}, a bare list, or an OpenAPI document', async () => {
    const a = path.join(dir, 'a.yaml');
    writeFileSync(a, 'operations:\n  - name: list\n    method: get\n    path: /things\n');
    const def = await loadServiceDefinition('s', svc({ definitionFile: a }));
    expect(def).toMatchObject({ source: 'file', operations: [{ name: 'list', method: 'GET', path: '/things' }] });
    const b = path.join(dir, 'b.json');
    writeFileSync(b, JSON.stringify([{ name: 'one', path: '/one' }]));
    expect((await loadServiceDefinition('s', svc({ definitionFile: b }))).operations[0]!.method).toBe('POST');
    const c = path.join(dir, 'c.json');
    writeFileSync(c, JSON.stringify(OPENAPI));
    expect((await loadServiceDefinition('s', svc({ definitionFile: c }))).operations).toHaveLength(4);
  });

  it('names the file and the place of a bad definition', async () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'operations:\n  - name: x\n    path: /a/../b\n');
    await expect(loadServiceDefinition('s', svc({ definitionFile: bad }))).rejects.toThrow(/bad\.yaml is invalid at operations\.0\.path/);
    await expect(loadServiceDefinition('s', svc({ definitionFile: path.join(dir, 'none.yaml') }))).rejects.toThrow(/cannot read/);
  });

  it('fetches the backend OpenAPI document, and says clearly when it cannot', async () => {
    const def = await loadServiceDefinition('s', svc({ openapiUrl: `${backend.url}/openapi.json` }));
    expect(def.source).toBe('openapi');
    expect(def.operations.map((o) => o.name)).toEqual(['getUser', 'deleteUser', 'get_users', 'createUser']);
    expect(def.document).toMatchObject({ format: 'OpenAPI 3.0.3', operationsInDocument: 4, filteredOut: 0 });
    const filtered = await loadServiceDefinition(
      's',
      svc({ openapiUrl: `${backend.url}/openapi.json`, include: ['*User'], exclude: ['method:DELETE'] }),
    );
    expect(filtered.operations.map((o) => o.name)).toEqual(['getUser', 'createUser']);
    expect(filtered.document?.filteredOut).toBe(2);
    docStatus = 500;
    await expect(loadServiceDefinition('s', svc({ openapiUrl: `${backend.url}/openapi.json?token=secret` }))).rejects.toThrow(
      /answered 500/,
    );
    await expect(loadServiceDefinition('s', svc({ openapiUrl: `${backend.url}/openapi.json?token=secret` }))).rejects.not.toThrow(/secret/);
  });

  it("resolves a fetched document's external references against its URL", async () => {
    const def = await loadServiceDefinition('s', svc({ openapiUrl: `${backend.url}/docs/api.yaml` }));
    expect(def.operations[0]).toMatchObject({
      name: 'addPet',
      parameters: { properties: { name: { type: 'string' } }, required: ['name'] },
    });
    expect(backend.requests.map((r) => r.path)).toContain('/docs/schemas/pet.yaml');
  });

  it('without any definition takes any operation as POST /{name}, not idempotent', async () => {
    const def = await loadServiceDefinition('s', svc({}));
    expect(def.source).toBe('dynamic');
    expect(findOperation(def, 'doThing')).toMatchObject({ method: 'POST', path: '/doThing', idempotent: false });
    expect(findOperation(def, '..')).toBeUndefined();
  });
});
