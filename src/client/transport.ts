/**
 * One HTTP/1.1 exchange over the API's Unix socket (node:http with
 * `socketPath`). Never throws on an HTTP status: the caller decides; throws
 * ApiTimeoutError / ApiConnectionError for transport failures.
 */
import * as http from 'node:http';
import { ApiConnectionError, ApiTimeoutError } from './errors.js';

export type HttpMethod = 'GET' | 'PUT' | 'PATCH';

export interface RawRequest {
  socketPath: string;
  method: string;
  path: string;
  /** A JSON value (serialised here) or a string sent as is; undefined sends no body. */
  body?: unknown;
  timeoutMs: number;
  agent?: http.Agent | false;
  signal?: AbortSignal;
}

export interface RawResponse {
  statusCode: number;
  headers: http.IncomingHttpHeaders;
  /** The body as text ('' when none). */
  body: string;
}

export function exchange(req: RawRequest): Promise<RawResponse> {
  const payload = req.body === undefined ? undefined : typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
  const headers: http.OutgoingHttpHeaders = { Accept: 'application/json' };
  if (payload !== undefined) {
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = Buffer.byteLength(payload);
  }

  return new Promise<RawResponse>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, res?: RawResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(res!);
    };

    const request = http.request({
      socketPath: req.socketPath,
      host: 'localhost',
      method: req.method,
      path: req.path,
      headers,
      agent: req.agent ?? false,
      signal: req.signal,
    });

    // One deadline for the whole exchange (connect, send, wait, read).
    const timer = setTimeout(() => {
      finish(new ApiTimeoutError(req.method, req.path, req.socketPath, req.timeoutMs));
      request.destroy();
    }, req.timeoutMs);

    request.on('error', (e: NodeJS.ErrnoException) => {
      finish(e.name === 'AbortError' ? e : new ApiConnectionError(req.method, req.path, req.socketPath, e));
    });
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e: NodeJS.ErrnoException) => finish(new ApiConnectionError(req.method, req.path, req.socketPath, e)));
      res.on('end', () =>
        finish(undefined, {
          statusCode: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    request.end(payload);
  });
}
