/**
 * Kernel command line builder.
 *
 * The command line is copied byte for byte into guest memory at
 * CMDLINE_START and read by the kernel as a NUL-terminated string, so we
 * accept only printable ASCII (0x20–0x7e): a NUL would silently cut the line
 * short, and control characters or non-ASCII bytes are never meaningful to
 * the kernel's parser. The capacity counts the terminating NUL, matching the
 * buffer the VMM reserves (CMDLINE_MAX_SIZE = 2048, i.e. the kernel's
 * cmdline_size of 2047 characters plus the NUL).
 */

import { CMDLINE_MAX_SIZE } from '../vmm/arch/x86_64/layout.js';

export class CmdlineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CmdlineError';
  }
}

function checkPrintable(s: string, what: string): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) throw new CmdlineError(`${what} contains a NUL byte at index ${i}`);
    if (c < 0x20 || c > 0x7e) {
      throw new CmdlineError(`${what} contains a non-printable or non-ASCII character (code ${c}) at index ${i}`);
    }
  }
}

export class Cmdline {
  private line = '';

  /** @param capacity buffer size in bytes, including the terminating NUL */
  constructor(readonly capacity: number = CMDLINE_MAX_SIZE) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new CmdlineError(`command line capacity must be a positive integer (bytes including the NUL), got ${capacity}`);
    }
  }

  /** A builder pre-filled with `args` (e.g. a user's boot_args). */
  static from(args: string, capacity: number = CMDLINE_MAX_SIZE): Cmdline {
    return new Cmdline(capacity).append(args);
  }

  /**
   * Appends one or more space-separated arguments, as written (quotes are the
   * kernel's business). Leading and trailing spaces are dropped; an empty or
   * all-space string is a no-op.
   */
  append(args: string): this {
    checkPrintable(args, 'command line argument');
    const trimmed = args.replace(/^ +| +$/g, '');
    if (trimmed !== '') this.push(trimmed);
    return this;
  }

  /** Appends `key=value`. Neither part may contain spaces; the key may not contain '='. */
  insert(key: string, value: string): this {
    checkPrintable(key, `command line key "${key}"`);
    checkPrintable(value, `value of command line key "${key}"`);
    if (key === '') throw new CmdlineError('command line key is empty');
    if (key.includes(' ')) throw new CmdlineError(`command line key "${key}" contains a space`);
    if (key.includes('=')) throw new CmdlineError(`command line key "${key}" contains '='`);
    if (value.includes(' ')) {
      throw new CmdlineError(`value of command line key "${key}" contains a space; use append('${key}="…"') to quote it`);
    }
    this.push(`${key}=${value}`);
    return this;
  }

  private push(piece: string): void {
    const next = this.line === '' ? piece : `${this.line} ${piece}`;
    if (next.length + 1 > this.capacity) {
      throw new CmdlineError(
        `command line would be ${next.length + 1} bytes including the NUL, over its capacity of ${this.capacity} (adding "${piece.length > 40 ? piece.slice(0, 40) + '…' : piece}")`,
      );
    }
    this.line = next;
  }

  /** Length in bytes, excluding the NUL. */
  get length(): number {
    return this.line.length;
  }

  toString(): string {
    return this.line;
  }

  /** The line as ASCII bytes followed by one NUL; length + 1 ≤ capacity. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.line.length + 1);
    for (let i = 0; i < this.line.length; i++) out[i] = this.line.charCodeAt(i);
    return out;
  }
}
