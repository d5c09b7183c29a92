export {
  BackendCaller,
  CallAbandon,
  classifyOutcome,
  parseRetryAfter,
  type BackendCall,
  type BackendCallerOptions,
  type BackendOutcome,
  type Classified,
} from './caller';
export { findOperation, loadServiceDefinition } from './definitions';
export {
  filterOperations,
  importOpenApi,
  importOperations,
  loadOpenApiDocument,
  type OpenApiImport,
  type OperationFilter,
} from './openapi';
export { OAuth2Tokens, oauth2Keys } from './oauth2';
export { buildBackendRequest, pathParameterNames, pathValueProblem, type BackendRequest, type RequestOptions } from './request';
export { ParameterValidator, type ParameterIssue } from './validate';
