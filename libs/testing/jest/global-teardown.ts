export default async function globalTeardown(): Promise<void> {
  await globalThis.__MCP_TEST_REDIS__?.stop();
}
