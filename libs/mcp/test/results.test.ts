import { OperationDefinitionSchema, type MCPResponse } from '@mcp-gateway/protocol';
import { operationTool, toolName, toolResult } from '@mcp-gateway/mcp';

const result = (data: unknown): MCPResponse => ({
  id: 'req-1',
  status: 'success',
  data,
  metadata: {
    correlationId: 'c',
    service: 's',
    operation: 'o',
    attempts: 1,
    queuedMs: 0,
    processingTime: 1,
    backendStatus: 200,
    completedAt: 'now',
  },
});

describe('tool results', () => {
  it('gives JSON as structuredContent and text, text answers as they came, bytes as image or resource content', () => {
    expect(toolResult(result({ a: 1 }))).toMatchObject({ content: [{ type: 'text', text: '{"a":1}' }], structuredContent: { a: 1 } });
    expect(toolResult(result('<pet><name>Rex</name></pet>')).content).toEqual([{ type: 'text', text: '<pet><name>Rex</name></pet>' }]);
    const png = toolResult(result({ mediaType: 'image/png', base64: 'iVBORw0=' }));
    expect(png.content).toEqual([{ type: 'image', data: 'iVBORw0=', mimeType: 'image/png' }]);
    expect(png.structuredContent).toBeUndefined();
    expect(toolResult(result({ mediaType: 'application/pdf', base64: 'JVBERi0=' })).content).toEqual([
      { type: 'resource', resource: { uri: 'mcp-gateway://requests/req-1/result', mimeType: 'application/pdf', blob: 'JVBERi0=' } },
    ]);
    // A JSON answer that merely has these keys among others stays JSON.
    expect(toolResult(result({ mediaType: 'image/png', base64: 'x', more: 1 })).content[0]).toMatchObject({ type: 'text' });
  });
});

describe('tools', () => {
  it('maps any operation name to a valid tool name, and carries the output schema', () => {
    for (const name of ['repos/get', 'Get User', 'a'.repeat(200)]) {
      const tool = toolName('github', name);
      expect(tool).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      expect(toolName('github', name)).toBe(tool);
    }
    expect(toolName('github', 'repos/get')).not.toBe(toolName('github', 'repos_get'));
    const op = OperationDefinitionSchema.parse({
      name: 'repos/get',
      method: 'GET',
      path: '/r',
      outputSchema: { type: 'object', properties: { id: { type: 'integer' } } },
    });
    expect(operationTool('github', op)).toMatchObject({
      title: 'github: repos/get',
      outputSchema: { type: 'object', properties: { id: { type: 'integer' } } },
      annotations: { readOnlyHint: true },
    });
  });
});
