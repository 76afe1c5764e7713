/**
 * The process logger, in Firecracker's line format:
 *
 *   2024-05-06T12:34:56.123456789 [instance-id:thread:LEVEL:file:line] message
 *
 * where `:LEVEL` appears with --show-level / show_level and `:file:line`
 * with --show-log-origin / show_log_origin. Lines go to stderr until a log
 * path is configured (a file, opened for append, or a named pipe).
 *
 * error/warn/info are rate limited per call site (see rate_limit.ts), as
 * Firecracker's error!/warn!/info! macros are, because guest activity can
 * reach them; debug/trace are not (they are off unless asked for), and the
 * *Unrestricted variants are for host-only paths such as startup and exit.
 */
import * as fs from 'node:fs';
import { isMainThread, threadId } from 'node:worker_threads';

import { captureCallSite, type CallSite } from './callsite.js';
import { DEFAULT_LEVEL, LEVEL_LABEL, LEVEL_RANK, type LevelFilter, type LogLevel } from './levels.js';
import { CallSiteRateLimiter, DEFAULT_BURST, DEFAULT_REFILL_MS } from './rate_limit.js';
import { formatLocalTimestamp, wallClockMs } from './timestamp.js';

export type { LevelFilter, LogLevel } from './levels.js';

/** Firecracker's DEFAULT_INSTANCE_ID. */
export const DEFAULT_INSTANCE_ID = 'anonymous-instance';

/** What configure() can change; omitted fields keep their current value. */
export interface LoggerOptions {
  level?: LevelFilter;
  /** File or FIFO to log to, instead of stderr. */
  path?: string;
  showLevel?: boolean;
  showOrigin?: boolean;
  instanceId?: string;
  /** Only log call sites whose module path starts with this (see callsite.ts). */
  module?: string;
  /** The thread name in each line; each worker thread has its own logger. */
  threadName?: string;
}

/** Counters mirroring Firecracker's `logger` metrics. */
export interface LoggerStats {
  /** Lines that could not be written (e.g. a full FIFO nobody reads). */
  missedLogCount: number;
  /** Lines dropped by rate limiting. */
  rateLimitedLogCount: number;
}

/** Clocks and limits, replaceable so tests are deterministic. */
export interface LoggerDeps {
  /** Monotonic milliseconds, for rate limiting. */
  monotonicMs?: () => number;
  /** Wall-clock milliseconds since the epoch, for timestamps. */
  wallClockMs?: () => number;
  burst?: number;
  refillMs?: number;
}

/** configure() could not open the log path. Message as Firecracker's LoggerUpdateError. */
export class LoggerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoggerConfigError';
  }
}

const STDERR_FD = 2;

/**
 * Opens a log (or metrics) target the way Firecracker's open_file_nonblock
 * does: created if missing, O_NONBLOCK, and read-write so that opening a FIFO
 * succeeds at once even before anyone reads it (a write-only open would block
 * or fail with ENXIO). O_APPEND keeps an existing file's content.
 */
export function openLogTarget(path: string): number {
  const c = fs.constants;
  return fs.openSync(path, c.O_RDWR | c.O_CREAT | c.O_APPEND | c.O_NONBLOCK, 0o644);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message.replace(/\s+/g, ' ') : String(err);
}

export class Logger {
  private level: LevelFilter = DEFAULT_LEVEL;
  private fd = STDERR_FD;
  private ownsFd = false;
  private showLevel = false;
  private showOrigin = false;
  private instanceId = DEFAULT_INSTANCE_ID;
  private moduleFilter: string | null = null;
  private threadName = isMainThread ? 'main' : `worker-${threadId}`;
  private readonly limiter: CallSiteRateLimiter;
  private readonly monotonicMs: () => number;
  private readonly wallMs: () => number;
  readonly stats: LoggerStats = { missedLogCount: 0, rateLimitedLogCount: 0 };

  constructor(deps: LoggerDeps = {}) {
    this.monotonicMs = deps.monotonicMs ?? (() => performance.now());
    this.wallMs = deps.wallClockMs ?? wallClockMs;
    this.limiter = new CallSiteRateLimiter(deps.burst ?? DEFAULT_BURST, deps.refillMs ?? DEFAULT_REFILL_MS);
  }

  // Arrow properties so `const { info } = logger` works and so each method
  // can name itself as the frame to skip when finding its caller.
  readonly error = (msg: string): void => this.emit('Error', msg, true, this.error);
  readonly warn = (msg: string): void => this.emit('Warning', msg, true, this.warn);
  readonly info = (msg: string): void => this.emit('Info', msg, true, this.info);
  readonly debug = (msg: string): void => this.emit('Debug', msg, false, this.debug);
  readonly trace = (msg: string): void => this.emit('Trace', msg, false, this.trace);
  /** Not rate limited: only for paths a guest cannot trigger. */
  readonly errorUnrestricted = (msg: string): void => this.emit('Error', msg, false, this.errorUnrestricted);
  readonly warnUnrestricted = (msg: string): void => this.emit('Warning', msg, false, this.warnUnrestricted);
  readonly infoUnrestricted = (msg: string): void => this.emit('Info', msg, false, this.infoUnrestricted);

  /** Whether a message at `level` would be printed (to skip building costly messages). */
  isEnabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] <= LEVEL_RANK[this.level];
  }

  get currentLevel(): LevelFilter {
    return this.level;
  }

  /**
   * Applies the given options; omitted ones are unchanged. The new path is
   * opened before anything changes, so a failure leaves the logger as it was.
   * (Firecracker's PUT /logger resets an omitted level to Info: callers that
   * need that pass it explicitly, as toLoggerOptions does.)
   */
  configure(opts: LoggerOptions): void {
    if (opts.path !== undefined) {
      let fd: number;
      try {
        fd = openLogTarget(opts.path);
      } catch (err) {
        throw new LoggerConfigError(`Failed to open target file: ${errorText(err)}`);
      }
      this.closeTarget();
      this.fd = fd;
      this.ownsFd = true;
    }
    if (opts.level !== undefined) this.level = opts.level;
    if (opts.showLevel !== undefined) this.showLevel = opts.showLevel;
    if (opts.showOrigin !== undefined) this.showOrigin = opts.showOrigin;
    if (opts.instanceId !== undefined) this.instanceId = opts.instanceId;
    if (opts.module !== undefined) this.moduleFilter = opts.module === '' ? null : opts.module;
    if (opts.threadName !== undefined) this.threadName = opts.threadName;
  }

  /** Closes a configured log file and goes back to stderr. */
  close(): void {
    this.closeTarget();
  }

  private closeTarget(): void {
    if (this.ownsFd) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // Nothing useful to do: the descriptor is gone either way.
      }
    }
    this.fd = STDERR_FD;
    this.ownsFd = false;
  }

  private emit(level: LogLevel, msg: string, limited: boolean, caller: Function): void {
    if (!this.isEnabled(level)) return;
    // The stack is only walked when something needs the call site.
    const site = limited || this.showOrigin || this.moduleFilter !== null ? captureCallSite(caller) : undefined;
    if (this.moduleFilter !== null && !(site?.module ?? '').startsWith(this.moduleFilter)) return;
    if (limited && site !== undefined) {
      const d = this.limiter.check(site.key, this.monotonicMs());
      if (!d.allowed) {
        this.stats.rateLimitedLogCount++;
        return;
      }
      if (d.suppressedBefore > 0 && this.isEnabled('Warning')) {
        this.writeLine('Warning', `${d.suppressedBefore} messages were suppressed due to rate limiting`, site);
      }
    }
    this.writeLine(level, msg, site);
  }

  /** Builds one line exactly as Firecracker's Logger::log does. */
  formatLine(level: LogLevel, msg: string, site?: CallSite): string {
    const lvl = this.showLevel ? `:${LEVEL_LABEL[level]}` : '';
    const origin = this.showOrigin ? `:${site?.file ?? '?'}:${site?.line ?? '?'}` : '';
    return `${formatLocalTimestamp(this.wallMs())} [${this.instanceId}:${this.threadName}${lvl}${origin}] ${msg}\n`;
  }

  private writeLine(level: LogLevel, msg: string, site?: CallSite): void {
    const buf = Buffer.from(this.formatLine(level, msg, site));
    // One write per line keeps lines whole (a pipe write <= PIPE_BUF is
    // atomic). A non-blocking target that is full (EAGAIN) drops the line
    // and counts it, rather than stalling the VMM.
    try {
      let off = 0;
      while (off < buf.length) off += fs.writeSync(this.fd, buf, off);
    } catch {
      this.stats.missedLogCount++;
    }
  }
}

/** The process-wide logger. */
export const logger = new Logger();
