/** Resilience keys of a service share its hash tag, so each script touches one cluster slot. */
export function resilienceKeys(prefix: string, service: string) {
  const base = `${prefix}:{${service}}`;
  return { breaker: `${base}:breaker`, trials: `${base}:trials`, bucket: `${base}:bucket` };
}

/** Channel on which every breaker transition is published (one per gateway key prefix). */
export function resilienceEventsChannel(prefix: string): string {
  return `${prefix}:events`;
}
