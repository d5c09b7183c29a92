export { BackendCaller, CallAbandon, classifyOutcome, parseRetryAfter, type BackendCall, type BackendCallerOptions, type BackendOutcome, type Classified } from './caller';
export { findOperation, loadServiceDefinition } from './definitions';
export { operationsFromOpenApi, type OpenApiConversion } from './openapi';
export { OAuth2Tokens, oauth2Keys } from './oauth2';
export { buildBackendRequest, pathParameterNames, pathValueProblem, type BackendRequest } from './request';
export { ParameterValidator, type ParameterIssue } from './validate';
