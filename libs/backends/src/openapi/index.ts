import type { OperationDefinition, ServiceDefinition } from '@mcp-gateway/protocol';
import { filterOperations, type OperationFilter } from './filter';
import { loadOpenApiDocument, type DocumentSource } from './load';
import { importOperations } from './operations';

export { filterOperations, type OperationFilter } from './filter';
export { loadOpenApiDocument, type DocumentSource, type LoadedDocument } from './load';
export { importOperations, type ImportedOperations } from './operations';
export { isFormMedia, isJsonMedia, isMultipartMedia, isTextMedia } from './media';

export interface OpenApiImport {
  operations: OperationDefinition[];
  document: NonNullable<ServiceDefinition['document']>;
}

/**
 * A service's operations from its OpenAPI document: read, bundled, upgraded, imported, filtered;
 * `check` also reports where the document breaks its spec.
 */
export async function importOpenApi(source: DocumentSource, filter: OperationFilter = {}, check = false): Promise<OpenApiImport> {
  const loaded = await loadOpenApiDocument(source, check);
  const imported = importOperations(loaded.doc);
  const operations = filterOperations(imported.operations, filter, (name) => imported.tags.get(name) ?? []);
  const kept = new Set(operations.map((o) => o.name));
  const info = loaded.doc.info as { title?: unknown } | undefined;
  return {
    operations,
    document: {
      format: loaded.format,
      ...(typeof info?.title === 'string' ? { title: info.title } : {}),
      operationsInDocument: imported.total,
      filteredOut: imported.operations.length - operations.length,
      ...(loaded.warnings ? { warnings: loaded.warnings } : {}),
      notes: imported.notes.filter((n) => n.operation === undefined || kept.has(n.operation)),
    },
  };
}
