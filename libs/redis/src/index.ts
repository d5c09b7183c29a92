export * from './connections';
export * from './provision';
export * from './ports';
export * from './topologies';
export * from './pubsub';
