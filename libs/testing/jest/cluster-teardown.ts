export default async function clusterTeardown(): Promise<void> {
  await Promise.all([globalThis.__MCP_TEST_CLUSTER__?.stop(), globalThis.__MCP_TEST_SINGLE__?.stop()]);
}
