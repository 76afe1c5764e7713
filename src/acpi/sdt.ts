/**
 * The System Description Table header every ACPI table except the RSDP
 * starts with (ACPI 6.5 §5.2.6), the 8-bit checksum rule, and the small
 * little-endian byte helpers the table builders share.
 */

import {
  CREATOR_ID_LENGTH,
  OEM_ID_LENGTH,
  OEM_TABLE_ID_LENGTH,
  SDT,
  SDT_HEADER_LENGTH,
} from '../generated/acpi.js';

/** Who made a table: the OEM fields of §5.2.6, shared by all of our tables. */
export interface OemInfo {
  /** 6 printable ASCII characters (shorter is space padded). */
  readonly oemId: string;
  /** 8 printable ASCII characters; §5.2.9 wants the FADT's to match the XSDT's, so use one for all. */
  readonly oemTableId: string;
  readonly oemRevision: number;
  /** 4 characters naming the tool that built the table (for a DSDT, the "ASL compiler"). */
  readonly creatorId: string;
  readonly creatorRevision: number;
}

export const SPARKLER_OEM: OemInfo = {
  oemId: 'SPRKLR',
  oemTableId: 'SPARKLER',
  oemRevision: 1,
  creatorId: 'SPRK',
  creatorRevision: 1,
};

// ---------------------------------------------------------------------------
// Byte helpers
// ---------------------------------------------------------------------------

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

function checkUint(v: number, bits: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) {
    throw new RangeError(`${what} ${v} does not fit in ${bits} unsigned bits`);
  }
}

export function u8(v: number, what = 'value'): Uint8Array {
  checkUint(v, 8, what);
  return Uint8Array.of(v);
}

export function le16(v: number, what = 'value'): Uint8Array {
  checkUint(v, 16, what);
  return Uint8Array.of(v & 0xff, v >>> 8);
}

export function le32(v: number, what = 'value'): Uint8Array {
  checkUint(v, 32, what);
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

export function le64(v: number | bigint, what = 'value'): Uint8Array {
  const big = BigInt(v);
  if (big < 0n || big >= 1n << 64n) throw new RangeError(`${what} ${v} does not fit in 64 unsigned bits`);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, big, true);
  return b;
}

/**
 * A fixed-width ASCII field: printable characters only, padded with spaces
 * (the convention for OEM IDs) unless a pad byte is given.
 */
export function asciiField(s: string, width: number, what: string, pad = 0x20): Uint8Array {
  if (s.length > width) throw new RangeError(`${what} "${s}" is longer than ${width} characters`);
  const out = new Uint8Array(width).fill(pad);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) throw new RangeError(`${what} "${s}" has a non-printable character`);
    out[i] = c;
  }
  return out;
}

/** Writes little-endian integers into an existing buffer (for fixed-layout tables). */
export function putLe(buf: Uint8Array, offset: number, bytes: Uint8Array): void {
  if (offset + bytes.byteLength > buf.byteLength) throw new RangeError('field past the end of the table');
  buf.set(bytes, offset);
}

// ---------------------------------------------------------------------------
// Checksums
// ---------------------------------------------------------------------------

/** Sum of the bytes modulo 256; a valid ACPI structure sums to 0. */
export function sum8(bytes: Uint8Array): number {
  let s = 0;
  for (const b of bytes) s = (s + b) & 0xff;
  return s;
}

/** The byte that, added to `bytes`, makes the total sum to 0 modulo 256. */
export function checksum8(bytes: Uint8Array): number {
  return (0x100 - sum8(bytes)) & 0xff;
}

/** Sets `table[at]` so that `table[0..end)` sums to zero; the byte at `at` must be inside that range. */
export function fixChecksum(table: Uint8Array, at: number, end = table.byteLength): void {
  table[at] = 0;
  table[at] = checksum8(table.subarray(0, end));
}

// ---------------------------------------------------------------------------
// SDT header
// ---------------------------------------------------------------------------

/**
 * A complete table: the §5.2.6 header (length and checksum filled in) followed
 * by `body`, which is everything after byte 36.
 */
export function buildSdt(signature: string, revision: number, body: Uint8Array, oem: OemInfo = SPARKLER_OEM): Uint8Array {
  if (signature.length !== 4) throw new RangeError(`table signature "${signature}" must be 4 characters`);
  const length = SDT_HEADER_LENGTH + body.byteLength;
  const table = new Uint8Array(length);
  putLe(table, SDT.SIGNATURE, asciiField(signature, 4, 'table signature'));
  putLe(table, SDT.LENGTH, le32(length, 'table length'));
  putLe(table, SDT.REVISION, u8(revision, 'table revision'));
  putLe(table, SDT.OEM_ID, asciiField(oem.oemId, OEM_ID_LENGTH, 'OEM ID'));
  putLe(table, SDT.OEM_TABLE_ID, asciiField(oem.oemTableId, OEM_TABLE_ID_LENGTH, 'OEM table ID'));
  putLe(table, SDT.OEM_REVISION, le32(oem.oemRevision, 'OEM revision'));
  putLe(table, SDT.CREATOR_ID, asciiField(oem.creatorId, CREATOR_ID_LENGTH, 'creator ID'));
  putLe(table, SDT.CREATOR_REVISION, le32(oem.creatorRevision, 'creator revision'));
  table.set(body, SDT_HEADER_LENGTH);
  fixChecksum(table, SDT.CHECKSUM);
  return table;
}

/** The fields of a table's header, for tests and diagnostics. */
export interface SdtHeaderView {
  signature: string;
  length: number;
  revision: number;
  checksum: number;
  oemId: string;
  oemTableId: string;
}

export function readSdtHeader(table: Uint8Array): SdtHeaderView {
  if (table.byteLength < SDT_HEADER_LENGTH) throw new RangeError('too short for an SDT header');
  const dv = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const text = (off: number, len: number): string => String.fromCharCode(...table.subarray(off, off + len));
  return {
    signature: text(SDT.SIGNATURE, 4),
    length: dv.getUint32(SDT.LENGTH, true),
    revision: table[SDT.REVISION]!,
    checksum: table[SDT.CHECKSUM]!,
    oemId: text(SDT.OEM_ID, OEM_ID_LENGTH),
    oemTableId: text(SDT.OEM_TABLE_ID, OEM_TABLE_ID_LENGTH),
  };
}
