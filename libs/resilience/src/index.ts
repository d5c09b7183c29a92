export * from './retry-schedule';
export * from './policy';
export * from './keys';
export * from './store';
