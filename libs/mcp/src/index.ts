export * from './tools';
export * from './results';
