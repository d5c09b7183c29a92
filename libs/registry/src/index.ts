export * from './registry';
export * from './registrations';
export * from './health';
