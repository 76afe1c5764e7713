/**
 * Where the metrics lines go: a file or named pipe, opened the way
 * Firecracker's init_metrics opens it (open_file_nonblock: created if
 * missing, read-write, O_NONBLOCK; we add O_APPEND so an existing file keeps
 * its content). Read-write matters for a FIFO: Linux lets the open succeed
 * at once with no reader (a write-only non-blocking open fails with ENXIO,
 * a blocking one hangs), and since we hold a read end ourselves writes never
 * raise EPIPE/SIGPIPE; with nobody reading they fill the pipe and then fail
 * with EAGAIN, which drops the line instead of stalling the VMM.
 *
 * Counters are reported as deltas, and a line's deltas are committed only
 * once the line is on its way: a line the target refused entirely (EAGAIN on
 * a full pipe, ENOSPC) leaves its counts to the next line. A line cut short
 * keeps its unwritten tail, written before anything else next time, as
 * Firecracker's LineWriter keeps it in its buffer, so readers never see a
 * torn line followed by another.
 */
import * as fs from 'node:fs';

import { openLogTarget } from '../../logger/logger.js';
import { MetricsConfigError, MetricsError, ioErrorText } from './errors.js';

/** Firecracker's WRITE_METRICS_PERIOD_MS. */
export const WRITE_METRICS_PERIOD_MS = 60_000;

/** One serialized line and how to mark its counter deltas as reported. */
export interface MetricsSnapshot {
  /** The JSON object, without the newline. */
  readonly line: string;
  commit(): void;
}

export interface MetricsWriterHooks {
  /** Builds the next line (without committing it). */
  snapshot(): MetricsSnapshot;
  /** A flush() failed (write() threw): count and report it. `context` prefixes the log line. */
  onFlushFailure?(err: MetricsError, context: string): void;
}

/** What flush() logs a failure with, as Firecracker's callers of METRICS.write() do. */
export const FLUSH_CONTEXT = {
  /** PeriodicMetrics (the 60 s timer and the first line at start). */
  periodic: 'Failed to write metrics',
  /** Vmm teardown and exit_with_code. */
  stopping: 'Failed to write metrics while stopping',
  /** The panic hook. */
  panicking: 'Failed to write metrics while panicking',
} as const;

class WriteZeroError extends Error {
  constructor() {
    // Rust's io::ErrorKind::WriteZero from write_all.
    super('failed to write whole buffer');
  }
}

export class MetricsWriter {
  private fd: number | null = null;
  /** Once configured, always: Firecracker's OnceLock refuses a second init. */
  private initialized = false;
  /** The unwritten end of a line cut short. */
  private pending: Buffer | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly hooks: MetricsWriterHooks) {}

  /** Whether a target has been configured (flush() writes somewhere). */
  get configured(): boolean {
    return this.fd !== null;
  }

  /** Whether a periodic flush is armed. */
  get periodic(): boolean {
    return this.timer !== null;
  }

  /**
   * Opens `path` (file or FIFO) as the metrics target; only once. Like
   * Firecracker's init_metrics, the path is opened (and so created) before
   * the once-only check. Throws MetricsConfigError:
   * "Cannot initialize the metrics system due to bad user input: <why>".
   */
  configure(path: string): void {
    let fd: number;
    try {
      fd = openLogTarget(path);
    } catch (err) {
      throw new MetricsConfigError(ioErrorText(err), { cause: err });
    }
    if (this.initialized) {
      closeQuietly(fd);
      throw new MetricsConfigError(MetricsError.alreadyInitialized().message);
    }
    this.fd = fd;
    this.initialized = true;
  }

  /**
   * Firecracker's Metrics::write: writes one line. Returns false if no target
   * is configured, true once the line is written; throws MetricsError
   * ("Failed to write metrics: <io error>") if it could not be.
   */
  write(): boolean {
    const fd = this.fd;
    if (fd === null) return false;
    const rest = this.pending;
    if (rest !== null) {
      try {
        writeAll(fd, rest);
        this.pending = null;
      } catch (err) {
        const p = err as PartialWriteError;
        this.pending = rest.subarray(p.written);
        throw MetricsError.write(p.cause);
      }
    }
    let snap: MetricsSnapshot;
    try {
      snap = this.hooks.snapshot();
    } catch (err) {
      throw MetricsError.serde(err);
    }
    const buf = Buffer.from(`${snap.line}\n`);
    try {
      writeAll(fd, buf);
    } catch (err) {
      const p = err as PartialWriteError;
      if (p.written > 0) {
        // The line has begun: it will be finished, so its deltas are reported.
        this.pending = buf.subarray(p.written);
        snap.commit();
      }
      throw MetricsError.write(p.cause);
    }
    snap.commit();
    return true;
  }

  /**
   * write() for callers that cannot act on an error (timer, exit paths):
   * a failure is passed to onFlushFailure with `context` (see FLUSH_CONTEXT)
   * and reported as false, as is having no target.
   */
  flush(context: string = FLUSH_CONTEXT.periodic): boolean {
    try {
      return this.write();
    } catch (err) {
      const e = err instanceof MetricsError ? err : MetricsError.write(err);
      this.hooks.onFlushFailure?.(e, context);
      return false;
    }
  }

  /**
   * Firecracker's PeriodicMetrics::start: writes a line now, then every
   * `intervalMs`. The timer is unref'd: it never keeps the process alive.
   * Restarts the period if already running.
   */
  startPeriodic(intervalMs: number = WRITE_METRICS_PERIOD_MS): void {
    if (!(intervalMs > 0)) throw new RangeError(`metrics period must be positive, got ${intervalMs}`);
    this.stop();
    this.timer = setInterval(() => this.flush(FLUSH_CONTEXT.periodic), intervalMs);
    this.timer.unref();
    this.flush(FLUSH_CONTEXT.periodic);
  }

  /** Stops the periodic flush (the target stays open). */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Stops and closes the target. It cannot be configured again (as in Firecracker). */
  close(): void {
    this.stop();
    if (this.fd !== null) closeQuietly(this.fd);
    this.fd = null;
    this.pending = null;
  }
}

/** writeAll's failure: how much was written before `cause`. */
class PartialWriteError extends Error {
  constructor(readonly written: number, override readonly cause: unknown) {
    super('partial write', { cause });
  }
}

/** Writes all of `buf`, or throws PartialWriteError. */
function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  try {
    while (off < buf.length) {
      const n = fs.writeSync(fd, buf, off, buf.length - off);
      if (n <= 0) throw new WriteZeroError();
      off += n;
    }
  } catch (cause) {
    throw new PartialWriteError(off, cause);
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // The descriptor is gone either way.
  }
}
