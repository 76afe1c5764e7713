/**
 * A writer for "newc" cpio archives (magic 070701), the format the Linux
 * kernel unpacks as an initramfs.
 *
 * Layout of each entry: a 110-byte ASCII header (magic + 13 fields of 8 hex
 * digits), the NUL-terminated name, zero padding so the data starts on a
 * 4-byte boundary, the data, zero padding to the next 4-byte boundary.
 * Symlink targets are stored as the entry's data (without a NUL). The archive
 * ends with an entry named "TRAILER!!!".
 *
 * Timestamps default to 0 and owners to root so the same inputs always give
 * the same bytes (the guest-asset cache relies on content, not on time).
 */

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Uint8Array | string; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; major: number; minor: number; mode?: number };

// File-type bits of st_mode.
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const TRAILER = 'TRAILER!!!';
const encoder = new TextEncoder();

export interface CpioOptions {
  /** Modification time of every entry, seconds since the epoch (default 0). */
  mtime?: number;
}

export class CpioWriter {
  private readonly chunks: Uint8Array[] = [];
  private offset = 0;
  private nextIno = 1;
  private readonly seen = new Set<string>();
  private finished = false;
  private readonly mtime: number;

  constructor(opts: CpioOptions = {}) {
    this.mtime = opts.mtime ?? 0;
    checkU32(this.mtime, 'mtime');
  }

  addDirectory(path: string, mode = 0o755): this {
    // nlink 2: "." plus the parent's entry, as a fresh empty directory has.
    return this.add(path, S_IFDIR | perm(mode), 2, new Uint8Array(0), 0, 0);
  }

  addFile(path: string, data: Uint8Array | string, mode = 0o644): this {
    const bytes = typeof data === 'string' ? encoder.encode(data) : data;
    return this.add(path, S_IFREG | perm(mode), 1, bytes, 0, 0);
  }

  addSymlink(path: string, target: string): this {
    if (target.length === 0) throw new Error(`cpio: empty symlink target for ${path}`);
    return this.add(path, S_IFLNK | 0o777, 1, encoder.encode(target), 0, 0);
  }

  addCharDevice(path: string, major: number, minor: number, mode = 0o600): this {
    return this.add(path, S_IFCHR | perm(mode), 1, new Uint8Array(0), major, minor);
  }

  addEntry(e: CpioEntry): this {
    switch (e.type) {
      case 'dir': return this.addDirectory(e.path, e.mode);
      case 'file': return this.addFile(e.path, e.data, e.mode);
      case 'symlink': return this.addSymlink(e.path, e.target);
      case 'chardev': return this.addCharDevice(e.path, e.major, e.minor, e.mode);
    }
  }

  /** Appends the trailer and returns the whole archive. The writer is spent afterwards. */
  finish(): Uint8Array {
    if (this.finished) throw new Error('cpio: archive already finished');
    // The trailer has ino 0 and nlink 1, as GNU cpio and the kernel's gen_init_cpio write it.
    this.writeEntry(TRAILER, 0, 0, 1, new Uint8Array(0), 0, 0);
    this.finished = true;
    const out = new Uint8Array(this.offset);
    let at = 0;
    for (const c of this.chunks) { out.set(c, at); at += c.length; }
    return out;
  }

  private add(path: string, mode: number, nlink: number, data: Uint8Array, rmaj: number, rmin: number): this {
    if (this.finished) throw new Error('cpio: archive already finished');
    const name = normalize(path);
    if (this.seen.has(name)) throw new Error(`cpio: duplicate entry ${name}`);
    this.seen.add(name);
    this.writeEntry(name, this.nextIno++, mode, nlink, data, rmaj, rmin);
    return this;
  }

  private writeEntry(name: string, ino: number, mode: number, nlink: number, data: Uint8Array, rmaj: number, rmin: number): void {
    checkU32(data.length, 'file size');
    checkU32(rmaj, 'device major');
    checkU32(rmin, 'device minor');
    const nameBytes = encoder.encode(name);
    const fields = [ino, mode, 0, 0, nlink, this.mtime, data.length, 0, 0, rmaj, rmin, nameBytes.length + 1, 0];
    const header = encoder.encode('070701' + fields.map(hex8).join(''));
    this.push(header);
    this.push(nameBytes);
    this.push(new Uint8Array(1)); // the name's NUL
    this.pad();
    this.push(data);
    this.pad();
  }

  private push(b: Uint8Array): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.offset += b.length;
  }

  /** Zero bytes up to the next multiple of 4 of the archive offset. */
  private pad(): void {
    const n = (4 - (this.offset % 4)) % 4;
    this.push(new Uint8Array(n));
  }
}

/** One-shot helper: an archive of `entries` in the given order. */
export function buildCpio(entries: Iterable<CpioEntry>, opts?: CpioOptions): Uint8Array {
  const w = new CpioWriter(opts);
  for (const e of entries) w.addEntry(e);
  return w.finish();
}

/** Archive names are relative ("bin/sh"): the kernel and `cpio -i` both expect that. */
function normalize(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0) throw new Error(`cpio: empty path ${JSON.stringify(path)}`);
  if (parts.includes('..')) throw new Error(`cpio: path with "..": ${path}`);
  const name = parts.join('/');
  if (name.includes('\0')) throw new Error('cpio: NUL in path');
  if (name === TRAILER) throw new Error(`cpio: ${TRAILER} is reserved`);
  return name;
}

function perm(mode: number): number {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new Error(`cpio: mode must be permission bits 0..0o7777, got 0o${mode.toString(8)}`);
  }
  return mode;
}

function checkU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`cpio: ${what} out of range: ${v}`);
}

function hex8(v: number): string {
  return v.toString(16).toUpperCase().padStart(8, '0');
}
