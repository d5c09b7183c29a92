import path from 'node:path';

/** The built entry points the process tests run (npm test builds first); this module runs from libs/testing/dist. */
export const ROOT = path.resolve(__dirname, '../../..');
export const API = path.join(ROOT, 'apps/api/dist/main.js');
export const WORKER = path.join(ROOT, 'apps/worker/dist/main.js');
export const GATEWAY = path.join(ROOT, 'apps/gateway/dist/main.js');
export const DEV = path.join(ROOT, 'apps/gateway/dist/dev.js');
