// Container health check: the API's (or gateway's) liveness, or a worker's metrics /health.
const url = process.env.MCP_HEALTH_URL || `http://127.0.0.1:${process.env.PORT || 8080}/mcp/health/live`;
fetch(url, { signal: AbortSignal.timeout(2500) })
  .then((res) => process.exit(res.ok ? 0 : 1))
  .catch(() => process.exit(1));
