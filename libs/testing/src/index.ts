export * from './ports';
export * from './redis';
export * from './backend';
export * from './process';
export * from './prefix';
