/** The fault suite (npm run test:chaos): real processes, real Redis with AOF, faults injected. */
const base = require('./jest.config.js');
/** @type {import('jest').Config} */
module.exports = {
  ...base,
  roots: ['<rootDir>/chaos'],
  testMatch: ['**/*.chaos.test.ts'],
  testTimeout: 120000,
  maxWorkers: 1,
  globalSetup: '<rootDir>/chaos/global-setup.ts',
  globalTeardown: '<rootDir>/chaos/global-teardown.ts',
};
