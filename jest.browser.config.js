/** Browser tests (npm run test:browser): the operators' console in headless chromium (apt-get install chromium). */
const base = require('./jest.config.js');
/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['**/test/**/*.browser.ts'],
  testTimeout: 60000,
};
