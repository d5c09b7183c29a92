/**
 * `npm run test:cluster`: the request, MCP, resilience and broker tests again, on a local Redis
 * Cluster (3 masters + 3 replicas) the global setup starts from redis-server.
 */
const base = require('./jest.config');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: [
    '<rootDir>/apps/api/test/request.test.ts',
    '<rootDir>/apps/api/test/mcp.test.ts',
    '<rootDir>/apps/api/test/mcp-modern.test.ts',
    '<rootDir>/apps/api/test/overdue.test.ts',
    '<rootDir>/apps/api/test/dead-letters.test.ts',
    '<rootDir>/apps/api/test/quotas.test.ts',
    '<rootDir>/apps/worker/test/pipeline.test.ts',
    '<rootDir>/libs/broker/test/broker.test.ts',
    '<rootDir>/libs/broker/test/dead-letters.test.ts',
    '<rootDir>/libs/resilience/test/store.test.ts',
    '<rootDir>/libs/resilience/test/agents.test.ts',
    '<rootDir>/libs/resilience/test/lease.test.ts',
    '<rootDir>/apps/api/test/cluster.cluster.ts',
    '<rootDir>/apps/api/test/sentinel.cluster.ts',
  ],
  // One file at a time: cluster.cluster.ts freezes nodes of the shared cluster (SIGSTOP). Once in CI,
  // with two files at a time, quotas.test.ts had every request answered 503 while it ran; alone,
  // and in four runs since, it passes. A freeze meant for one file is the likely cause (not proven).
  maxWorkers: 1,
  globalSetup: '<rootDir>/libs/testing/jest/cluster-setup.ts',
  globalTeardown: '<rootDir>/libs/testing/jest/cluster-teardown.ts',
};
