/**
 * Black-box helper for the API tests: starts `bin/sparkler --api-sock <tmp>/api.sock [args]`,
 * waits for the socket, sends requests (validated against Firecracker's
 * published API with ./openapi.ts), and stops the process (SIGTERM) at the end.
 *
 *   const vmm = await startApi({ args: ['--http-api-max-payload-size', '100'] });
 *   const r = await vmm.request('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 64 });
 *   assert.equal(r.status, 204);
 *   const end = await vmm.stop();           // SIGTERM; SIGKILL if it does not exit in time
 *
 * Every answer is checked against the spec; a request is too unless the test
 * says it is deliberately malformed (`{ malformed: true }`). Error answers
 * (status >= 400) must moreover be `{"fault_message": "<string>"}`: the
 * spec's Error schema, with the message actually present. A method+path that
 * the spec does not have (an unknown route) may only be answered that way.
 * Null-valued properties of answers count as absent (see withoutNullProperties).
 *
 * For requests node:http cannot send (a huge Content-Length with a partial
 * body, garbage, many requests on one socket) use `connectRaw`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { findOperation, validateDefinition, validateRequest, validateResponse } from './openapi.js';
import { projectRoot, sparklerBin } from './sparkler_run.js';

// ------------------------------------------------------------------ responses and validation

export interface ApiResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body as text ('' when none). */
  text: string;
  /** The body parsed as JSON; undefined when empty or not JSON. */
  json: unknown;
}

export interface RequestOptions {
  /** Extra or overriding request headers. */
  headers?: Record<string, string | number>;
  /** Deadline for the whole exchange, ms (default 5000). */
  timeoutMs?: number;
  /**
   * The request is deliberately malformed: skip the request-side validation
   * (the answer is still validated, as the spec's error response).
   */
  malformed?: boolean;
  /** Reuse this agent (keep-alive tests); default: a fresh connection per request. */
  agent?: http.Agent;
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The body of a request as the text sent (JSON values are serialised; Buffers decoded as UTF-8). */
export function bodyText(body: unknown): string | undefined {
  if (body === undefined) return undefined;
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  return JSON.stringify(body);
}

/** The fault_message of an error answer (throws with the body when there is none). */
export function faultOf(res: ApiResponse): string {
  const j = res.json as { fault_message?: unknown } | undefined;
  if (!j || typeof j !== 'object' || typeof j.fault_message !== 'string') {
    throw new Error(`expected a {"fault_message": "..."} body, got status ${res.status} with ${JSON.stringify(res.text)}`);
  }
  return j.fault_message;
}

/**
 * The value with every object property whose value is null removed (deeply).
 * Firecracker serialises an absent optional value as null (serde's
 * Option::None: GET /vm/config answers `"balloon": null`, `"initrd_path":
 * null`...), which Swagger 2.0 cannot express; answers are validated as if
 * such properties were absent. A *required* property that is null still
 * fails (it is then missing).
 */
export function withoutNullProperties(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNullProperties);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== null)
        .map(([k, x]) => [k, withoutNullProperties(x)]),
    );
  }
  return v;
}

/**
 * Checks an answer against the spec: the operation's response for that
 * status (or its `default`). An unknown route (no such method+path in the
 * spec) must be answered with an error: status >= 400 and the Error schema.
 * Every error answer must carry a string fault_message.
 */
export function validateAnswer(method: string, urlPath: string, res: ApiResponse): void {
  let known = true;
  try {
    findOperation(method, urlPath);
  } catch {
    known = false; // no such route in the spec (or an undecodable path)
  }
  if (known) {
    const v = parseJson(res.text);
    validateResponse(method, urlPath, res.status, v === undefined ? res.text : withoutNullProperties(v));
  } else {
    if (res.status < 400) throw new Error(`${method} ${urlPath} is not in the spec, yet it was answered ${res.status}: ${res.text}`);
    const v = parseJson(res.text);
    if (v === undefined) throw new Error(`${method} ${urlPath} → ${res.status}: the error body is not JSON: ${JSON.stringify(res.text)}`);
    validateDefinition('Error', v);
  }
  if (res.status >= 400) faultOf(res);
}

/** One request with node:http on a Unix socket; no validation. */
export function rawRequest(socketPath: string, method: string, urlPath: string, body?: unknown, opts: RequestOptions = {}): Promise<ApiResponse> {
  const text = bodyText(body);
  const payload = text === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(text, 'utf8');
  const headers: http.OutgoingHttpHeaders = { Accept: 'application/json' };
  if (payload !== undefined) {
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = payload.length;
  }
  Object.assign(headers, opts.headers ?? {});
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise<ApiResponse>((resolve, reject) => {
    const req = http.request({ socketPath, method, path: urlPath, headers, agent: opts.agent ?? false });
    const timer = setTimeout(() => {
      req.destroy(new Error(`${method} ${urlPath}: no answer within ${timeoutMs} ms on ${socketPath}`));
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      res.on('end', () => {
        clearTimeout(timer);
        const t = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: t, json: parseJson(t) });
      });
    });
    req.end(payload);
  });
}

/** rawRequest + validation of the request (unless malformed) and of the answer. */
export async function apiRequest(socketPath: string, method: string, urlPath: string, body?: unknown, opts: RequestOptions = {}): Promise<ApiResponse> {
  if (!opts.malformed) validateRequest(method, urlPath, bodyText(body));
  const res = await rawRequest(socketPath, method, urlPath, body, opts);
  try {
    validateAnswer(method, urlPath, res);
  } catch (e) {
    throw new Error(`${method} ${urlPath} ${bodyText(body) ?? ''} → ${res.status} ${res.text}\n${(e as Error).message}`);
  }
  return res;
}

// ------------------------------------------------------------------ raw connections

/** An HTTP/1.1 answer read off a raw socket. */
export interface RawAnswer extends ApiResponse {
  /** The status line and headers as received. */
  head: string;
}

/**
 * One raw connection to the API socket: write any bytes, read answers one
 * by one (Content-Length or chunked bodies; otherwise up to the close).
 */
export class RawConnection {
  private buf = Buffer.alloc(0);
  private closed = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', (e) => {
      this.error = e;
      this.notify();
    });
  }

  static connect(socketPath: string, timeoutMs = 5000): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect(socketPath);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`cannot connect to ${socketPath} within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(new RawConnection(s));
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(data, (e) => (e ? reject(e) : resolve()));
    });
  }

  /** Writes a complete request (Content-Length set from the body, Host given). */
  sendRequest(method: string, urlPath: string, body?: string | Buffer, headers: Record<string, string | number> = {}): Promise<void> {
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    const h: Record<string, string | number> = { Host: 'localhost', Accept: 'application/json' };
    if (payload !== undefined) {
      h['Content-Type'] = 'application/json';
      h['Content-Length'] = payload.length;
    }
    Object.assign(h, headers);
    const head = `${method} ${urlPath} HTTP/1.1\r\n${Object.entries(h)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}\r\n`;
    return this.write(payload ? Buffer.concat([Buffer.from(head, 'latin1'), payload]) : head);
  }

  /** Resolves when pred() holds; rejects on timeout (or when the connection closes and pred still fails). */
  private async until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (this.closed || this.error) throw new Error(`connection ${this.error ? `failed (${this.error.message})` : 'closed'} while waiting for ${what}; received: ${JSON.stringify(this.buf.toString('latin1').slice(0, 500))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; received so far: ${JSON.stringify(this.buf.toString('latin1').slice(0, 500))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Reads the next answer. */
  async readResponse(timeoutMs = 5000): Promise<RawAnswer> {
    const started = Date.now();
    await this.until(() => this.buf.indexOf('\r\n\r\n') >= 0, timeoutMs, 'response head');
    const end = this.buf.indexOf('\r\n\r\n');
    const head = this.buf.subarray(0, end).toString('latin1');
    let rest = this.buf.subarray(end + 4);
    const lines = head.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(head)}`);
    const headers: http.IncomingHttpHeaders = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const left = () => Math.max(1, timeoutMs - (Date.now() - started));
    let body: Buffer;
    const cl = headers['content-length'];
    if (typeof cl === 'string') {
      const n = Number(cl);
      this.buf = rest;
      await this.until(() => this.buf.length >= n, left(), `${n}-byte body`);
      body = this.buf.subarray(0, n);
      this.buf = this.buf.subarray(n);
    } else if (/chunked/i.test(String(headers['transfer-encoding'] ?? ''))) {
      this.buf = rest;
      const parts: Buffer[] = [];
      for (;;) {
        await this.until(() => this.buf.indexOf('\r\n') >= 0, left(), 'chunk size');
        const e = this.buf.indexOf('\r\n');
        const size = parseInt(this.buf.subarray(0, e).toString('latin1'), 16);
        await this.until(() => this.buf.length >= e + 2 + size + 2, left(), 'chunk');
        parts.push(this.buf.subarray(e + 2, e + 2 + size));
        this.buf = this.buf.subarray(e + 2 + size + 2);
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else {
      // No length: the body runs to the close (or there is none on a 204/304).
      const status = Number(m[1]);
      if (status === 204 || status === 304) {
        body = Buffer.alloc(0);
        this.buf = rest;
      } else {
        this.buf = rest;
        await this.until(() => this.closed, left(), 'end of a body without length').catch(() => undefined);
        body = this.buf;
        this.buf = Buffer.alloc(0);
      }
      rest = Buffer.alloc(0);
    }
    const text = body.toString('utf8');
    return { status: Number(m[1]), headers, text, json: parseJson(text), head };
  }

  /** Waits until the server closes the connection. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the server did not close the connection within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A raw connection to the API socket. */
export function connectRaw(socketPath: string, timeoutMs?: number): Promise<RawConnection> {
  return RawConnection.connect(socketPath, timeoutMs);
}

// ------------------------------------------------------------------ the process

export interface ApiProcessOptions {
  /** Arguments after `--api-sock <socket>`. */
  args?: string[];
  /** Socket path (default: <dir>/api.sock). */
  socketPath?: string;
  /** Working directory for the socket and files (default: a new temp dir, removed by stop()). */
  dir?: string;
  /** How long to wait for the socket to accept connections (default 10 s). */
  startTimeoutMs?: number;
  /** Wait for the socket before resolving (default true). */
  waitForSocket?: boolean;
}

export interface ExitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** How to execute bin/sparkler: with this node when it is a node script. */
function commandFor(args: string[]): { file: string; argv: string[] } {
  if (!fs.existsSync(sparklerBin)) throw new Error(`${sparklerBin} does not exist (run \`npx tsc -p .\` in ${projectRoot})`);
  const first = fs.readFileSync(sparklerBin, 'utf8').split('\n', 1)[0] ?? '';
  if (!first.startsWith('#!') || /\bnode\b/.test(first)) return { file: process.execPath, argv: [sparklerBin, ...args] };
  return { file: sparklerBin, argv: args };
}

/** Makes a temp directory for one test's sockets and files. */
export function makeTempDir(prefix = 'sparkler-api-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export class ApiProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly argv: string[];
  /** Settles when the process has exited and its output is drained. */
  readonly exited: Promise<ExitResult>;
  private out = '';
  private err = '';
  private done: ExitResult | undefined;
  private waiters: Array<() => void> = [];

  constructor(
    readonly socketPath: string,
    readonly dir: string,
    private readonly ownsDir: boolean,
    args: string[],
  ) {
    const { file, argv } = commandFor(['--api-sock', socketPath, ...args]);
    this.argv = [file, ...argv];
    // stdin stays an open pipe: the VMM sees neither a terminal nor EOF.
    this.child = spawn(file, argv, { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    if (this.child.pid === undefined) throw new Error(`cannot start ${this.argv.join(' ')}`);
    this.pid = this.child.pid;
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => {
      this.out += d;
      this.notify();
    });
    this.child.stderr!.on('data', (d: string) => {
      this.err += d;
      this.notify();
    });
    this.child.stdin!.on('error', () => {});
    this.exited = new Promise<ExitResult>((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code, signal) => {
        this.child.stdin!.destroy();
        this.done = { code, signal, stdout: this.out, stderr: this.err };
        this.notify();
        resolve(this.done);
      });
    });
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  stdout(): string {
    return this.out;
  }

  stderr(): string {
    return this.err;
  }

  /** Whether the process has exited. */
  get hasExited(): boolean {
    return this.done !== undefined;
  }

  /** Command, exit status and output so far, for assertion messages. */
  describe(): string {
    const how = this.done ? `exited code=${this.done.code} signal=${this.done.signal}` : 'still running';
    return [`command: ${this.argv.join(' ')}`, how, '--- stdout ---', this.out.trimEnd(), '--- stderr ---', this.err.trimEnd(), '---'].join('\n');
  }

  /** Resolves when the stream's text matches; rejects on exit or timeout. */
  waitFor(pattern: RegExp, stream: 'stdout' | 'stderr' = 'stdout', timeoutMs = 10_000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern} on ${stream}\n${this.describe()}`));
      }, timeoutMs);
      const check = (): void => {
        if (settled) return;
        if (pattern.test(stream === 'stdout' ? this.out : this.err)) {
          settled = true;
          clearTimeout(timer);
          resolve();
        } else if (this.done) {
          settled = true;
          clearTimeout(timer);
          reject(new Error(`sparkler exited before ${pattern} appeared on ${stream}\n${this.describe()}`));
        } else {
          this.waiters.push(check);
        }
      };
      check();
    });
  }

  /** Resolves once the API socket accepts connections; rejects if the process exits first. */
  async waitForSocket(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.done) throw new Error(`sparkler exited before its API socket ${this.socketPath} was ready\n${this.describe()}`);
      if (fs.existsSync(this.socketPath)) {
        const ok = await new Promise<boolean>((resolve) => {
          const c = net.connect(this.socketPath);
          c.once('connect', () => {
            c.destroy();
            resolve(true);
          });
          c.once('error', () => resolve(false));
        });
        if (ok) return;
      }
      if (Date.now() > deadline) throw new Error(`the API socket ${this.socketPath} was not ready within ${timeoutMs} ms\n${this.describe()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** A request, validated against the spec (see the module comment). */
  request(method: string, urlPath: string, body?: unknown, opts: RequestOptions = {}): Promise<ApiResponse> {
    return apiRequest(this.socketPath, method, urlPath, body, opts).catch((e: Error) => {
      throw new Error(`${e.message}\n${this.describe()}`);
    });
  }

  /** A request without any validation (for the test to judge). */
  rawRequest(method: string, urlPath: string, body?: unknown, opts: RequestOptions = {}): Promise<ApiResponse> {
    return rawRequest(this.socketPath, method, urlPath, body, opts);
  }

  /** A raw connection to this process's socket. */
  connectRaw(timeoutMs?: number): Promise<RawConnection> {
    return RawConnection.connect(this.socketPath, timeoutMs);
  }

  /** Waits for the process to exit by itself (rejects after timeoutMs, leaving it running). */
  async waitExit(timeoutMs = 10_000): Promise<ExitResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`sparkler did not exit within ${timeoutMs} ms\n${this.describe()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends `signal` (default SIGTERM) and waits for the exit; SIGKILL after
   * killAfterMs (the result then says signal SIGKILL). Removes the temp dir
   * when the helper made it. Safe to call again or after an exit.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 5000): Promise<ExitResult> {
    if (!this.done) {
      this.child.kill(signal);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), killAfterMs);
      try {
        await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    if (this.ownsDir) fs.rmSync(this.dir, { recursive: true, force: true });
    return this.done!;
  }
}

/** Starts `bin/sparkler --api-sock <socket> [args]` and (by default) waits for the socket. */
export async function startApi(opts: ApiProcessOptions = {}): Promise<ApiProcess> {
  const ownsDir = opts.dir === undefined;
  const dir = opts.dir ?? makeTempDir();
  const socketPath = opts.socketPath ?? path.join(dir, 'api.sock');
  const p = new ApiProcess(socketPath, dir, ownsDir, opts.args ?? []);
  if (opts.waitForSocket ?? true) {
    try {
      await p.waitForSocket(opts.startTimeoutMs ?? 10_000);
    } catch (e) {
      await p.stop('SIGKILL');
      throw e;
    }
  }
  return p;
}

/** Runs `bin/sparkler ARGS` to completion (no --api-sock added); SIGKILL after timeoutMs. */
export function runSparklerArgs(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<ExitResult & { timedOut: boolean }> {
  const { file, argv } = commandFor(args);
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { cwd: opts.cwd ?? projectRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdin!.on('error', () => {});
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 20_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      child.stdin!.destroy();
      resolve({ code, signal, stdout: out, stderr: err, timedOut });
    });
  });
}
