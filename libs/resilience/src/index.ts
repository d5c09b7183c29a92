export * from './retry-schedule';
export * from './policy';
export * from './keys';
export * from './store';
export { AdmitVerdict, TOKENS_NOT_READ, decodeAdmit, decodeRecord, type AdmitReply, type QueueKeys } from './scripts';
export { AdmissionLeases, LEASE_MAX_LIFE_MS, type LeaseOptions, type LeaseTicket } from './lease';
export { AgentQuotas, type AgentHoldOutcome, type AgentHoldRequest, type AgentQuotaLimits, type AgentQuotaState } from './agents';
