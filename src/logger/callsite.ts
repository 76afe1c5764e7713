/**
 * Finds the source location that called the logger: it is the log line's
 * "origin" (--show-log-origin), its module (the `module` filter) and its
 * rate-limiting key.
 */
import * as fs from 'node:fs';
import { SourceMap, type SourceMapPayload, type SourceMapping } from 'node:module';
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

/** Set by scripts/bundle.mjs; absent from the tsc output. */
declare const __SPARKLER_BUNDLE__: boolean | undefined;
const BUNDLED = typeof __SPARKLER_BUNDLE__ !== 'undefined' && __SPARKLER_BUNDLE__ === true;

/**
 * Project root: this file is <root>/dist/src/logger/callsite.js once built,
 * or part of a bundle in <root>/dist/bundle/.
 */
const ROOT = fileURLToPath(new URL(BUNDLED ? '../../' : '../../../', import.meta.url));

const UNKNOWN: CallSite = { file: '?', line: 0, key: '?', module: '' };

function modulePath(rel: string): string {
  const noExt = rel.replace(/\.[cm]?[jt]s$/, '');
  const parts = noExt.split(path.sep);
  if (parts[0] === 'dist') parts.shift();
  if (parts[0] === 'src') parts.shift();
  return parts.join('::');
}

/**
 * A bundle's source map (dist/bundle/X.mjs.map), read on first need, or null.
 * scripts/bundle.mjs makes the maps point at the tsc output (dist/src/…js),
 * not at the TypeScript sources, so a bundled call site maps to exactly the
 * file and line the unbundled program reports.
 */
const sourceMaps = new Map<string, { map: SourceMap; dir: string; root: string } | null>();

function sourceMapOf(file: string): { map: SourceMap; dir: string; root: string } | null {
  let sm = sourceMaps.get(file);
  if (sm === undefined) {
    sm = null;
    try {
      const payload = JSON.parse(fs.readFileSync(`${file}.map`, 'utf8')) as SourceMapPayload;
      sm = { map: new SourceMap(payload), dir: path.dirname(file), root: payload.sourceRoot ?? '' };
    } catch {
      // no map: the bundle's own location is reported
    }
    sourceMaps.set(file, sm);
  }
  return sm;
}

/** [file, 1-based line] in the tsc output for a location in a bundle, when its map knows it. */
function unbundle(abs: string, line: number, column: number): [string, number] {
  const sm = sourceMapOf(abs);
  if (sm === null) return [abs, line];
  const e = sm.map.findEntry(line - 1, column - 1) as Partial<SourceMapping>;
  if (typeof e.originalSource !== 'string' || typeof e.originalLine !== 'number') return [abs, line];
  const src = e.originalSource.startsWith('file://') ? fileURLToPath(e.originalSource) : path.resolve(sm.dir, sm.root, e.originalSource);
  return [src, e.originalLine + 1];
}

/**
 * The call site as the stack reports it; file, line and module are worked
 * out from it on first use (in a bundle that reads a source map, which only
 * --show-log-origin and the module filter need, not the rate limiter).
 */
class StackCallSite implements CallSite {
  private where: { file: string; line: number; module: string } | undefined;

  constructor(readonly key: string, private readonly loc: string, private readonly rawLine: number, private readonly rawColumn: number) {}

  get file(): string {
    return this.resolve().file;
  }

  get line(): number {
    return this.resolve().line;
  }

  get module(): string {
    return this.resolve().module;
  }

  private resolve(): { file: string; line: number; module: string } {
    if (this.where) return this.where;
    let abs = this.loc;
    if (abs.startsWith('file://')) {
      try {
        abs = fileURLToPath(abs);
      } catch {
        // keep the URL text as is
      }
    }
    let line = this.rawLine;
    if (BUNDLED && abs.endsWith('.mjs') && path.dirname(abs) === BUNDLE_DIR) [abs, line] = unbundle(abs, line, this.rawColumn);
    const rel = path.relative(ROOT, abs);
    const inside = rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
    this.where = { file: inside ? rel : abs, line, module: inside ? modulePath(rel) : '' };
    return this.where;
  }
}

const BUNDLE_DIR = path.join(ROOT, 'dist', 'bundle');

/** One object per call expression; call sites are few, so this stays small. */
const sites = new Map<string, StackCallSite>();
const MAX_SITES = 4096;

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
  let site = sites.get(loc);
  if (site === undefined) {
    const m = /^(.*):(\d+):(\d+)$/.exec(loc);
    if (!m) return UNKNOWN;
    site = new StackCallSite(loc, m[1]!, Number(m[2]), Number(m[3]));
    if (sites.size >= MAX_SITES) sites.clear();
    sites.set(loc, site);
  }
  return site;
}
