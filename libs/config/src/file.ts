import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from './errors';

/**
 * A YAML or JSON config file (YAML is a superset of JSON, so one parser reads both). Relative
 * `definitionFile` paths are resolved against the file's own directory.
 */
export function loadFileConfig(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([
      { source: 'MCP_GATEWAY_CONFIG', message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` },
    ]);
  }
  let data: unknown;
  try {
    // Loaded here, on use: most deployments configure by environment, and the parser stays resident.
    data = (require('yaml') as typeof import('yaml')).parse(text, { prettyErrors: true });
  } catch (err) {
    throw new ConfigError([{ source: file, message: `is not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}` }]);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ConfigError([{ source: file, message: 'must hold an object (the GatewayConfig shape)' }]);
  }
  const config = data as Record<string, unknown>;
  const services = config.services;
  if (typeof services === 'object' && services !== null) {
    for (const svc of Object.values(services as Record<string, unknown>)) {
      if (typeof svc !== 'object' || svc === null) continue;
      const s = svc as Record<string, unknown>;
      if (typeof s.definitionFile === 'string' && !path.isAbsolute(s.definitionFile)) {
        s.definitionFile = path.resolve(path.dirname(file), s.definitionFile);
      }
    }
  }
  return config;
}
