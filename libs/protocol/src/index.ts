export * from './errors';
export * from './request';
export * from './response';
export * from './operation';
export * from './agent';
export * from './glob';
export * from './answers';
export * from './time';
