/** One problem with the configuration, named by where it came from (an env variable, a file key, a config path). */
export interface ConfigIssue {
  /** `MCP_SERVICE_USERS_TIMEOUT`, `gateway.yaml: services.users.timeout`, or `services.users.timeout`. */
  source: string;
  message: string;
}

/** A configuration that must not start: the message lists every problem, each naming its variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly issues: ConfigIssue[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i.source}: ${i.message}`).join('\n')}`);
  }
}
