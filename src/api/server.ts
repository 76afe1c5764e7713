/**
 * The API server: HTTP/1.1 on a Unix socket, Firecracker's endpoints and
 * errors. It runs on the main thread's event loop, which the vCPUs never
 * block (they run on threads of their own), so guest work cannot stall it;
 * slow or half-sent requests only hold their own connection.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { VmmActionError, type VmmController } from '../vmm/rpc_interface.js';
import { ROUTES, type ApiInfo, type Route, type RouteResult } from './routes.js';

export interface ApiServerOptions {
  socketPath: string;
  /** Largest accepted body, bytes (--http-api-max-payload-size). */
  maxPayload: number;
  controller: VmmController;
  info: ApiInfo;
  /** Called for every request with its route key (e.g. "PUT /actions") and whether it failed (metrics, logs). */
  onRequest?: (key: string, failed: boolean) => void;
}

export class ApiServerError extends Error {
  override name = 'ApiServerError';
}

interface CompiledRoute { route: Route; re: RegExp; names: string[] }

function compile(routes: Route[]): CompiledRoute[] {
  return routes.map((route) => {
    const names: string[] = [];
    const pattern = route.path.replace(/\{(\w+)\}/g, (_, n: string) => {
      names.push(n);
      return '([^/]+)';
    });
    return { route, re: new RegExp(`^${pattern}$`), names };
  });
}

const COMPILED = compile(ROUTES);

function fault(status: number, message: string): RouteResult {
  return { status, body: { fault_message: message } };
}

function send(res: http.ServerResponse, r: RouteResult, close = false): void {
  const payload = r.body === undefined ? '' : JSON.stringify(r.body);
  res.writeHead(r.status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(payload),
    ...(close ? { Connection: 'close' } : {}),
  });
  res.end(payload);
}

/** Refuses a path another live process serves; removes a stale socket file left by a dead one. */
async function claimSocketPath(path: string): Promise<void> {
  if (!fs.existsSync(path)) return;
  const inUse = await new Promise<boolean>((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
  if (inUse) throw new ApiServerError(`Failed to open the API socket at ${path}: it is in use by another process`);
  // Only a socket left by a dead process is ours to replace; never delete anything else.
  if (!fs.lstatSync(path).isSocket()) throw new ApiServerError(`Failed to open the API socket at ${path}: the path exists and is not a socket`);
  try {
    fs.unlinkSync(path);
  } catch (e) {
    throw new ApiServerError(`Failed to remove the stale API socket ${path}: ${(e as Error).message}`);
  }
}

export class ApiServer {
  private readonly server: http.Server;
  private readonly oversized = new WeakSet<http.IncomingMessage>();

  constructor(private readonly opts: ApiServerOptions) {
    // Firecracker's API accepts HTTP/1.1 without a Host header (curl --unix-socket sends one, other clients may not).
    this.server = http.createServer({ keepAlive: true, requireHostHeader: false }, (req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) send(res, fault(500, `Internal error: ${e instanceof Error ? e.message : String(e)}`), true);
      });
    });
    // A request that is not HTTP at all still gets a JSON error, then the connection is closed.
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return socket.destroy();
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const body = JSON.stringify({ fault_message: `Invalid HTTP request: ${err.message}` });
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    });
    // Generous per-request limits: one slow client must not hold its connection forever.
    this.server.headersTimeout = 30_000;
    this.server.requestTimeout = 60_000;
  }

  async listen(): Promise<void> {
    await claimSocketPath(this.opts.socketPath);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (e) => reject(new ApiServerError(`Failed to open the API socket at ${this.opts.socketPath}: ${e.message}`)));
      this.server.listen(this.opts.socketPath, () => resolve());
    });
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
    try {
      fs.unlinkSync(this.opts.socketPath);
    } catch {
      // already gone
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? '';
    const path = (req.url ?? '/').split('?')[0]!;
    const key = `${method} ${path}`;
    const result = await this.dispatch(req, method, path);
    this.opts.onRequest?.(key, result.status >= 400);
    const close = this.oversized.has(req);
    send(res, result, close);
    // An oversized body was not read: drop the connection rather than drain it.
    if (close) res.once('finish', () => req.socket.destroy());
  }

  private async dispatch(req: http.IncomingMessage, method: string, path: string): Promise<RouteResult> {
    let match: ReturnType<ApiServer['match']>;
    try {
      match = this.match(method, path);
    } catch (e) {
      req.resume();
      if (e instanceof VmmActionError) return fault(e.status, e.message);
      throw e;
    }
    if (!match) {
      req.resume();
      return fault(400, `Invalid request method and/or path: ${method} ${path}.`);
    }
    const { route, params } = match;
    let body: unknown;
    try {
      body = await this.readBody(req, method);
    } catch (e) {
      if (e instanceof VmmActionError) return fault(e.status, e.message);
      throw e;
    }
    if (route.needsBody && body === undefined) return fault(400, `Empty ${method} request.`);
    try {
      return await route.handle({ body, params, controller: this.opts.controller, info: this.opts.info });
    } catch (e) {
      if (e instanceof VmmActionError) return fault(e.status, e.message);
      return fault(500, `Internal error: ${(e as Error).message}`);
    }
  }

  private match(method: string, path: string): { route: Route; params: Record<string, string> } | undefined {
    for (const c of COMPILED) {
      if (c.route.method !== method) continue;
      const m = c.re.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      for (const [i, n] of c.names.entries()) {
        try {
          params[n] = decodeURIComponent(m[i + 1]!);
        } catch {
          throw new VmmActionError(400, `Invalid percent-encoding in the path parameter ${n}: ${m[i + 1]}`);
        }
      }
      return { route: c.route, params };
    }
    return undefined;
  }

  /** Reads and parses the JSON body; refuses an oversized one without reading it all. */
  private readBody(req: http.IncomingMessage, method: string): Promise<unknown> {
    const limit = this.opts.maxPayload;
    const declared = Number(req.headers['content-length'] ?? NaN);
    const tooBig = (n: number): VmmActionError => new VmmActionError(400, `Request payload with size ${n} is larger than the limit of ${limit} allowed by server.`);
    if (Number.isFinite(declared) && declared > limit) {
      this.oversized.add(req);
      req.pause();
      return Promise.reject(tooBig(declared));
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > limit) {
          this.oversized.add(req);
          req.pause();
          req.removeAllListeners('data');
          reject(tooBig(size));
          return;
        }
        chunks.push(c);
      });
      req.on('error', reject);
      req.on('end', () => {
        if (size === 0) return resolve(undefined);
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve(JSON.parse(text) as unknown);
        } catch (e) {
          reject(new VmmActionError(400, `${method} request body is not valid JSON: ${(e as Error).message}`));
        }
      });
    });
  }
}
