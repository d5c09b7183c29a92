import os from 'node:os';
import path from 'node:path';
import { GatewayConfigManager } from '@mcp-gateway/config';
import { ServiceRegistry } from '@mcp-gateway/registry';
import { fakingOnly, startBackend, type TestBackend } from '@mcp-gateway/testing';

let backend: TestBackend;
let up = false;

beforeAll(async () => {
  backend = await startBackend(() =>
    up
      ? { status: 200, body: { openapi: '3.0.0', info: { title: 't', version: '1' }, paths: { '/a': { get: { operationId: 'getA' } } } } }
      : { status: 503 },
  );
});
afterAll(() => backend.close());
afterEach(() => jest.useRealTimers());

it('loads a definition once, remembers a failure for a while, then tries again', async () => {
  // The back-off is measured with Date: only Date is faked, the backend still answers over HTTP.
  jest.useFakeTimers(fakingOnly('Date'));
  const errors: string[] = [];
  const config = GatewayConfigManager.fromObject({
    services: {
      api: { endpoint: backend.url, openapiUrl: `${backend.url}/openapi.json` },
      inline: { endpoint: backend.url, operations: [{ name: 'x', path: '/x' }] },
    },
  });
  const registry = new ServiceRegistry(config, { retryFailedAfterMs: 200, onDefinitionError: (s, e) => errors.push(`${s}: ${e.message}`) });

  await expect(registry.operation('api', 'getA')).rejects.toMatchObject({ code: 'BACKEND_ERROR', retryable: true });
  expect(errors).toEqual([expect.stringContaining('answered 503')]);
  up = true;
  // Within the back-off the failure is answered from memory, without asking the backend.
  const asked = backend.requests.length;
  await expect(registry.operation('api', 'getA')).rejects.toMatchObject({ code: 'BACKEND_ERROR' });
  expect(backend.requests.length).toBe(asked);

  // Still within the back-off 1 ms before it ends; tried again once it has.
  jest.advanceTimersByTime(199);
  await expect(registry.operation('api', 'getA')).rejects.toMatchObject({ code: 'BACKEND_ERROR' });
  expect(backend.requests.length).toBe(asked);
  jest.advanceTimersByTime(1);
  expect((await registry.operation('api', 'getA')).path).toBe('/a');
  await registry.operation('api', 'getA');
  expect(backend.requests.length).toBe(asked + 1);

  await expect(registry.operation('inline', 'nope')).rejects.toMatchObject({ code: 'UNKNOWN_OPERATION', details: { operations: ['x'] } });
  expect(() => registry.require('ghost')).toThrow(expect.objectContaining({ code: 'UNKNOWN_SERVICE' }));
  expect(registry.names()).toEqual(['api', 'inline']);
});

it('gives operations as bounded metric labels: the name, one value for a service without a definition, _unknown otherwise', async () => {
  const config = GatewayConfigManager.fromObject({
    services: { inline: { endpoint: backend.url, operations: [{ name: 'x', path: '/x' }] }, open: { endpoint: backend.url } },
  });
  const registry = new ServiceRegistry(config);
  expect(await registry.operationLabel('inline', 'x')).toBe('x');
  expect(await registry.operationLabel('inline', 'nope')).toBe('_unknown');
  expect(await registry.operationLabel('open', 'anything-a-caller-sends')).toBe('_dynamic');
  expect(await registry.operationLabel('ghost', 'x')).toBe('_unknown');
});

it('answers an operation without a promise once its definition is in memory, the same as operation and operationLabel', async () => {
  const config = GatewayConfigManager.fromObject({
    services: { inline: { endpoint: backend.url, operations: [{ name: 'x', path: '/x' }] }, open: { endpoint: backend.url } },
  });
  const registry = new ServiceRegistry(config);
  // Not loaded yet: the caller takes the path that loads it.
  expect(registry.operationNow('inline', 'x')).toBeUndefined();
  const op = await registry.operation('inline', 'x');
  expect(registry.operationNow('inline', 'x')).toEqual({ op, label: 'x' });
  // Unknown operations and services are for `operation` to refuse, with its error.
  expect(registry.operationNow('inline', 'nope')).toBeUndefined();
  expect(registry.operationNow('ghost', 'x')).toBeUndefined();
  await registry.operation('open', 'anything');
  expect(registry.operationNow('open', 'anything')).toEqual({ op: await registry.operation('open', 'anything'), label: '_dynamic' });
});

it('a definition file of the configuration that cannot be loaded stops the start, naming it; an OpenAPI URL that fails does not', async () => {
  const missing = path.join(os.tmpdir(), `no-such-definition-${process.pid}.yaml`);
  const config = GatewayConfigManager.fromObject({
    services: {
      'file-svc': { endpoint: backend.url, definitionFile: missing },
      api: { endpoint: backend.url, openapiUrl: `${backend.url}/gone.json` },
    },
  });
  up = false;
  const errors: string[] = [];
  const registry = new ServiceRegistry(config, { onDefinitionError: (s, e) => errors.push(`${s}: ${e.message}`) });
  const err = await registry.init().then(
    () => undefined,
    (e: unknown) => e as { name: string; issues: { source: string; message: string }[] },
  );
  expect(err?.name).toBe('ConfigError');
  expect(err!.issues).toEqual([
    {
      source: 'services.file-svc.definitionFile (MCP_SERVICE_FILE_SVC_DEFINITION)',
      message: `cannot read definition file ${missing}: ENOENT`,
    },
  ]);
  expect(errors.sort()).toEqual([expect.stringMatching(/^api: .*503/), `file-svc: cannot read definition file ${missing}: ENOENT`]);
  // A caller is not shown the server's path: it is told to look at the log, which has it.
  const call = await registry.operation('file-svc', 'x').catch((e: unknown) => e as { code: string; message: string; retryable: boolean });
  expect(call).toMatchObject({
    code: 'INTERNAL_ERROR',
    retryable: false,
    message: "The definition file of service file-svc could not be loaded; the gateway's log says why",
  });
});
