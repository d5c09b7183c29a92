export * from './keys';
export * from './job';
export * from './records';
export * from './broker';
export * from './waiter';
export * from './presence';
export * from './submission';
