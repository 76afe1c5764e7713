/**
 * Finds the source location that called the logger: it is the log line's
 * "origin" (--show-log-origin), its module (the `module` filter) and its
 * rate-limiting key.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CallSite {
  /** Path relative to the project root when inside it, else absolute. */
  file: string;
  line: number;
  /** Unique per call expression: the rate limiter's key. */
  key: string;
  /**
   * Rust-style module path derived from the file, standing in for
   * Firecracker's module_path!(): dist/src/vmm/devices/serial.js →
   * `vmm::devices::serial`.
   */
  module: string;
}

/** Project root: this file is <root>/dist/src/logger/callsite.js once built. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const UNKNOWN: CallSite = { file: '?', line: 0, key: '?', module: '' };

function modulePath(rel: string): string {
  const noExt = rel.replace(/\.[cm]?[jt]s$/, '');
  const parts = noExt.split(path.sep);
  if (parts[0] === 'dist') parts.shift();
  if (parts[0] === 'src') parts.shift();
  return parts.join('::');
}

/**
 * The call site of the frame just above `below` (a function on the stack,
 * typically the public logging method). Stack capture is limited to one
 * frame to keep it cheap.
 */
export function captureCallSite(below: Function): CallSite {
  const holder: { stack?: string } = {};
  const prevLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 1;
  try {
    Error.captureStackTrace(holder, below);
  } finally {
    Error.stackTraceLimit = prevLimit;
  }
  const frame = holder.stack?.split('\n')[1]?.trim();
  if (frame === undefined) return UNKNOWN;
  const loc = frame.endsWith(')') ? frame.slice(frame.lastIndexOf('(') + 1, -1) : frame.replace(/^at\s+/, '');
  const m = /^(.*):(\d+):(\d+)$/.exec(loc);
  if (!m) return UNKNOWN;
  let abs = m[1]!;
  if (abs.startsWith('file://')) {
    try {
      abs = fileURLToPath(abs);
    } catch {
      // keep the URL text as is
    }
  }
  const rel = path.relative(ROOT, abs);
  const inside = rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
  const file = inside ? rel : abs;
  return { file, line: Number(m[2]), key: loc, module: inside ? modulePath(rel) : '' };
}
