/** One jest run for every project; libs are imported from source through their package names. */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/libs', '<rootDir>/apps'],
  testMatch: ['**/test/**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json', diagnostics: false }],
    // The official Tasks-extension client ships ESM only: compiled to CommonJS for the tests.
    '^.+/@modelcontextprotocol/ext-tasks/.+\\.js$': ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs' }, diagnostics: false }],
  },
  transformIgnorePatterns: ['/node_modules/(?!@modelcontextprotocol/ext-tasks/)'],
  moduleNameMapper: {
    '^@modelcontextprotocol/ext-tasks/(client|core|core/v2)$': '<rootDir>/node_modules/@modelcontextprotocol/ext-tasks/dist/$1/index.js',
    '^@mcp-gateway/(api|worker|gateway)$': '<rootDir>/apps/$1/src/index.ts',
    '^@mcp-gateway/(.*)$': '<rootDir>/libs/$1/src/index.ts',
  },
  modulePathIgnorePatterns: ['<rootDir>/.*/dist/'],
  globalSetup: '<rootDir>/libs/testing/jest/global-setup.ts',
  globalTeardown: '<rootDir>/libs/testing/jest/global-teardown.ts',
  // Suites that start processes wait for each to be ready (up to 40 s on a loaded machine: see startNodeProcess).
  testTimeout: 60000,
  maxWorkers: 2,
};
