/** sparkler's public API (package entry point). */
export { Client, ApiError } from './client/index.js';
// Everything else of the client: the other error classes, the endpoint and
// field tables, and the types of every definition of the Firecracker API.
export * from './client/index.js';
