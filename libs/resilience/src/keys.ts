/** Resilience keys of a service share its hash tag, so each script touches one cluster slot. */
export function resilienceKeys(prefix: string, service: string) {
  const base = `${prefix}:{${service}}`;
  return { breaker: `${base}:breaker`, trials: `${base}:trials`, bucket: `${base}:bucket` };
}
