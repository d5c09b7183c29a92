export * from './connections';
export * from './provision';
export * from './ports';
