/** Resilience keys of a service share its hash tag, so each script touches one cluster slot. */
export function resilienceKeys(prefix: string, service: string) {
  const base = `${prefix}:{${service}}`;
  return { breaker: `${base}:breaker`, trials: `${base}:trials`, bucket: `${base}:bucket` };
}

/** Channel on which every breaker transition is published (one per gateway key prefix). */
export function resilienceEventsChannel(prefix: string): string {
  return `${prefix}:events`;
}

/** The service a message of the events channel is about (undefined for one that names none). */
export function serviceOfEvent(message: string): string | undefined {
  try {
    const service = (JSON.parse(message) as { service?: unknown }).service;
    return typeof service === 'string' ? service : undefined;
  } catch {
    return undefined;
  }
}

/** An agent's own quota keys: their own hash tag, so a Redis Cluster spreads agents over slots. */
export function agentKeys(prefix: string, agentId: string) {
  const base = `${prefix}:agent:{a:${agentId}}`;
  return { bucket: `${base}:bucket`, held: `${base}:held` };
}

/** An agent's keys for one service, in the service's slot: its quota's bucket, and its requests held there (queued or running). */
export function agentServiceKeys(prefix: string, service: string, agentId: string) {
  const base = `${prefix}:{${service}}:agent:${agentId}`;
  return { bucket: `${base}:bucket`, held: `${base}:held` };
}
