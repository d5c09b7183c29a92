export { createApp, serverOptionsFor } from './app';
export { ApiServer, type ApiServerOptions } from './server';
export type { ApiDeps } from './deps';
