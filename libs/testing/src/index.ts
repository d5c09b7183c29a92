export { acquireRedis, startRedisServer, redisAnswers, freePort, HOW_TO_GET_REDIS, type LocalRedis as TestRedis } from '@mcp-gateway/redis';
export * from './backend';
export * from './process';
export * from './prefix';
export * from './config';
export * from './prism';
export * from './timers';
export * from './stalled';
export * from './entry-points';
