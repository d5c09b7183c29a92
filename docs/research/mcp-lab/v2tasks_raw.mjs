import('./v2tasks.mjs');
