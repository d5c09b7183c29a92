import path from 'node:path';
import { Router, type Request, type Response } from 'express';
import type { GatewayConfig } from '@mcp-gateway/config';
import { openApiDocument } from './openapi';

/** The Swagger UI files this page loads, from the npm package (served here: no CDN). */
const ASSETS = ['swagger-ui.css', 'swagger-ui-bundle.js'];

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MCP Gateway API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="reference"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

// No validator badge (it would call validator.swagger.io); "Try it out" calls this gateway.
const INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#reference', validatorUrl: null, deepLinking: true });\n`;

/**
 * The gateway's own API: `GET /openapi.json` (OpenAPI 3.1, built once) and a reference page of it at
 * `/docs`. Both open, as `/mcp/health` is: the description holds no secret.
 */
export function apiReference(config: Pick<GatewayConfig, 'gatewayUrl'>): Router {
  const router = Router();
  const version = (require('../package.json') as { version: string }).version;
  const document = JSON.stringify(openApiDocument(config, version));
  router.get('/openapi.json', (_req: Request, res: Response) => {
    res.status(200).type('application/json').send(document);
  });
  router.get('/docs', (_req: Request, res: Response) => {
    res.status(200).type('html').send(PAGE);
  });
  router.get('/docs/init.js', (_req: Request, res: Response) => {
    res.status(200).type('application/javascript').send(INIT);
  });
  const dir = (require('swagger-ui-dist') as { getAbsoluteFSPath(): string }).getAbsoluteFSPath();
  for (const file of ASSETS) {
    router.get(`/docs/assets/${file}`, (_req: Request, res: Response) => res.sendFile(path.join(dir, file), { maxAge: '1d' }));
  }
  return router;
}
