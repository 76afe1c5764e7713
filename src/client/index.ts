/** The typed Firecracker API client: `new Client({ socketPath })`. */
export { Client, DEFAULT_TIMEOUT_MS } from './client.js';
export type { ApiResponse, ByIdCallOptions, CallOptions, ClientOptions } from './client.js';
export { ApiConnectionError, ApiError, ApiResponseError, ApiTimeoutError, ClientError } from './errors.js';
export { CLIENT_METHOD_BY_ROUTE, ENDPOINTS, fillPath } from './endpoints.js';
export type { Endpoint, EndpointName } from './endpoints.js';
export { DEFINITION_ENUMS, DEFINITION_FIELDS, FREE_FORM_DEFINITIONS } from './fields.js';
export type { FieldPresence, FieldTable, ObjectDefinitions } from './fields.js';
export type { HttpMethod } from './transport.js';
export * from './types.js';
