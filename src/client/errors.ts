/**
 * The client's errors. Every one names the request (`METHOD /path`); each
 * kind has its own class so callers can tell them apart with `instanceof`:
 *
 * - ApiError: the server answered with a non-2xx status.
 * - ApiTimeoutError: no complete answer within the timeout.
 * - ApiConnectionError: the socket could not be reached, or the connection broke.
 * - ApiResponseError: a 2xx answer whose body is not the JSON expected.
 */
import { STATUS_CODES } from 'node:http';

/** Base class of the client's errors: what request failed, on which socket. */
export class ClientError extends Error {
  constructor(
    message: string,
    readonly method: string,
    readonly path: string,
    readonly socketPath: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A non-2xx answer. `faultMessage` is the body's `fault_message` (or the raw body if it is not JSON). */
export class ApiError extends ClientError {
  readonly statusCode: number;
  readonly faultMessage: string | undefined;
  /** The response body as received. */
  readonly body: string;

  constructor(init: { method: string; path: string; socketPath: string; statusCode: number; body: string }) {
    const fault = faultOf(init.body);
    const status = `${init.statusCode} ${STATUS_CODES[init.statusCode] ?? ''}`.trim();
    super(`${init.method} ${init.path} failed: ${status}${fault ? `: ${fault}` : ''}`, init.method, init.path, init.socketPath);
    this.statusCode = init.statusCode;
    this.faultMessage = fault;
    this.body = init.body;
  }
}

export class ApiTimeoutError extends ClientError {
  constructor(method: string, path: string, socketPath: string, readonly timeoutMs: number) {
    super(`${method} ${path} timed out after ${timeoutMs} ms (API socket ${socketPath})`, method, path, socketPath);
  }
}

export class ApiConnectionError extends ClientError {
  /** The system error code: ENOENT, ECONNREFUSED, ECONNRESET, EACCES... */
  readonly code: string | undefined;

  constructor(method: string, path: string, socketPath: string, cause: NodeJS.ErrnoException) {
    const code = cause.code;
    const why =
      code === 'ENOENT'
        ? 'no such socket'
        : code === 'ECONNREFUSED'
          ? 'connection refused (nothing listening)'
          : code === 'ECONNRESET' || code === 'EPIPE'
            ? 'connection closed by the server'
            : cause.message;
    super(`${method} ${path}: cannot talk to the API socket ${socketPath}: ${why}${code ? ` (${code})` : ''}`, method, path, socketPath, {
      cause,
    });
    this.code = code;
  }
}

export class ApiResponseError extends ClientError {
  constructor(method: string, path: string, socketPath: string, statusCode: number, detail: string, readonly body: string) {
    super(`${method} ${path}: bad ${statusCode} response: ${detail}`, method, path, socketPath);
  }
}

function faultOf(body: string): string | undefined {
  if (body.trim() === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === 'object' && 'fault_message' in parsed) {
      const f = (parsed as { fault_message: unknown }).fault_message;
      return typeof f === 'string' ? f : JSON.stringify(f);
    }
  } catch {
    /* not JSON: fall through */
  }
  return body.trim();
}
