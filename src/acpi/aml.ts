/**
 * A small encoder for the subset of ACPI Machine Language (ACPI 6.5 §20) a
 * microVM's DSDT needs: names and paths, integers, strings, buffers,
 * packages, Name/Scope/Device/Method/Return, EISA IDs, and resource templates
 * (§6.4) with IO, IRQNoFlags, Memory32Fixed and Extended Interrupt
 * descriptors.
 *
 * Every builder returns an `Aml` value whose bytes are computed once; they
 * compose by nesting, e.g.
 *   device('COM1', [name('_HID', eisaId('PNP0501')), name('_CRS', resourceTemplate([...]))])
 */

import {
  AML,
  EXT_IRQ,
  IO_DECODE_16,
  IRQ_DESCRIPTOR_MAX_IRQ,
  MEMORY32_FIXED_LENGTH,
  MEMORY32_FIXED_READ_WRITE,
  METHOD_FLAG_SERIALIZED,
  METHOD_MAX_ARGS,
  PACKAGE_MAX_ELEMENTS,
  PKG_LENGTH_MAX,
  RES_LARGE,
  RES_SMALL,
} from '../generated/acpi.js';
import { checksum8, concatBytes, le16, le32, u8 } from './sdt.js';

/** Anything that encodes to AML bytes. */
export interface Aml {
  toAml(): Uint8Array;
}

class AmlBytes implements Aml {
  constructor(private readonly bytes: Uint8Array) {}
  toAml(): Uint8Array {
    return this.bytes;
  }
}

export function raw(bytes: Uint8Array): Aml {
  return new AmlBytes(bytes);
}

function join(parts: ReadonlyArray<Aml | Uint8Array>): Uint8Array {
  return concatBytes(parts.map((p) => (p instanceof Uint8Array ? p : p.toAml())));
}

// ---------------------------------------------------------------------------
// §20.2.4 Package length
// ---------------------------------------------------------------------------

/**
 * The PkgLength that precedes `contentLength` bytes. Its value counts its own
 * bytes too, so the encoding size is the smallest n (1..4) with
 * contentLength + n <= the n-byte maximum. One byte holds 6 bits; longer forms
 * put the byte count in bits 7:6 of the lead byte, the low nibble in bits 3:0
 * and 8 more bits per following byte.
 */
export function pkgLength(contentLength: number): Uint8Array {
  if (!Number.isInteger(contentLength) || contentLength < 0) throw new RangeError(`bad AML content length ${contentLength}`);
  for (let n = 1; n <= 4; n++) {
    const total = contentLength + n;
    if (total > PKG_LENGTH_MAX[n - 1]!) continue;
    if (n === 1) return Uint8Array.of(total);
    const out = new Uint8Array(n);
    out[0] = ((n - 1) << 6) | (total & 0x0f);
    for (let i = 1; i < n; i++) out[i] = (total >>> (4 + 8 * (i - 1))) & 0xff;
    return out;
  }
  throw new RangeError(`AML package of ${contentLength} bytes exceeds the 28-bit PkgLength limit`);
}

/** PkgLength followed by its content. */
function withPkgLength(content: Uint8Array): Uint8Array {
  return concatBytes([pkgLength(content.byteLength), content]);
}

// ---------------------------------------------------------------------------
// §20.2.2 Names
// ---------------------------------------------------------------------------

const LEAD_NAME_CHAR = /^[A-Z_]$/;
const NAME_CHAR = /^[A-Z0-9_]$/;

/** A 4-character NameSeg; shorter names are padded with '_' as ASL does. */
export function nameSeg(seg: string): Uint8Array {
  if (seg.length < 1 || seg.length > 4) throw new RangeError(`AML NameSeg "${seg}" must be 1..4 characters`);
  const padded = seg.padEnd(4, '_');
  for (let i = 0; i < 4; i++) {
    const ok = i === 0 ? LEAD_NAME_CHAR : NAME_CHAR;
    if (!ok.test(padded[i]!)) throw new RangeError(`AML NameSeg "${seg}" has an invalid character at ${i}`);
  }
  return Uint8Array.from(padded, (c) => c.charCodeAt(0));
}

/**
 * A NameString: "\" for the root, leading "^" for parents, then dot-separated
 * NameSegs, e.g. "\\_SB_.COM1", "^PCI0", "_HID". Encodes to NullName,
 * one NameSeg, DualNamePath or MultiNamePath as the segment count requires.
 */
export function nameString(path: string): Uint8Array {
  const prefix: number[] = [];
  let rest = path;
  if (rest.startsWith('\\')) {
    prefix.push(AML.ROOT_CHAR);
    rest = rest.slice(1);
  } else {
    while (rest.startsWith('^')) {
      prefix.push(AML.PARENT_PREFIX_CHAR);
      rest = rest.slice(1);
    }
  }
  if (rest === '' && prefix.length === 0) throw new RangeError('AML name path is empty (use "\\" for the root)');
  const segs = rest === '' ? [] : rest.split('.');
  if (segs.length > 255) throw new RangeError(`AML name path "${path}" has too many segments`);
  const encoded = segs.map(nameSeg);
  let body: Uint8Array;
  if (segs.length === 0) body = Uint8Array.of(AML.NULL_NAME);
  else if (segs.length === 1) body = encoded[0]!;
  else if (segs.length === 2) body = concatBytes([Uint8Array.of(AML.DUAL_NAME_PREFIX), ...encoded]);
  else body = concatBytes([Uint8Array.of(AML.MULTI_NAME_PREFIX, segs.length), ...encoded]);
  return concatBytes([Uint8Array.from(prefix), body]);
}

// ---------------------------------------------------------------------------
// §20.2.3 Data objects
// ---------------------------------------------------------------------------

const U64_MAX = (1n << 64n) - 1n;

/**
 * An integer in its smallest encoding: ZeroOp, OneOp, or Byte/Word/DWord/
 * QWord constants. All-ones is written as a QWordConst rather than OnesOp,
 * whose width depends on the table revision.
 */
export function integer(value: number | bigint): Aml {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new RangeError(`AML integer ${value} is not a safe integer`);
  const v = BigInt(value);
  if (v < 0n || v > U64_MAX) throw new RangeError(`AML integer ${value} is outside 0..2^64-1`);
  if (v === 0n) return raw(Uint8Array.of(AML.ZERO_OP));
  if (v === 1n) return raw(Uint8Array.of(AML.ONE_OP));
  const widths: Array<[number, number]> = [
    [1, AML.BYTE_PREFIX],
    [2, AML.WORD_PREFIX],
    [4, AML.DWORD_PREFIX],
    [8, AML.QWORD_PREFIX],
  ];
  for (const [bytes, prefix] of widths) {
    if (v < 1n << BigInt(8 * bytes)) {
      const out = new Uint8Array(1 + bytes);
      out[0] = prefix;
      for (let i = 0; i < bytes; i++) out[1 + i] = Number((v >> BigInt(8 * i)) & 0xffn);
      return raw(out);
    }
  }
  throw new Error('unreachable');
}

/** A String: ASCII 0x01..0x7f, NUL terminated. */
export function string(s: string): Aml {
  const out = new Uint8Array(s.length + 2);
  out[0] = AML.STRING_PREFIX;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x01 || c > 0x7f) throw new RangeError(`AML string "${s}" has a non-ASCII or NUL character`);
    out[1 + i] = c;
  }
  return raw(out); // last byte stays 0: the terminator
}

/** Buffer(n) { bytes }: BufferOp PkgLength BufferSize ByteList. */
export function buffer(bytes: Uint8Array): Aml {
  return raw(concatBytes([Uint8Array.of(AML.BUFFER_OP), withPkgLength(join([integer(bytes.byteLength), bytes]))]));
}

/** Package() { elements }: PackageOp PkgLength NumElements PackageElementList. */
export function pkg(elements: readonly Aml[]): Aml {
  if (elements.length > PACKAGE_MAX_ELEMENTS) throw new RangeError(`AML Package of ${elements.length} elements needs VarPackage`);
  return raw(concatBytes([Uint8Array.of(AML.PACKAGE_OP), withPkgLength(join([Uint8Array.of(elements.length), ...elements]))]));
}

/**
 * EISAID("PNP0501"): three upper-case letters packed 5 bits each (A=1) and
 * four hex digits, stored so the little-endian dword reads as the bytes
 * [c1<<2|c2>>3, (c2&7)<<5|c3, hex0hex1, hex2hex3] (§6.1.5 _HID).
 */
export function eisaIdValue(id: string): number {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new RangeError(`EISA ID "${id}" must be 3 upper-case letters and 4 hex digits`);
  const c = [0, 1, 2].map((i) => id.charCodeAt(i) - 0x40);
  const hex = parseInt(id.slice(3), 16);
  const b0 = (c[0]! << 2) | (c[1]! >> 3);
  const b1 = ((c[1]! & 0x7) << 5) | c[2]!;
  const b2 = hex >> 8;
  const b3 = hex & 0xff;
  return (b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)) >>> 0;
}

export function eisaId(id: string): Aml {
  return integer(eisaIdValue(id));
}

// ---------------------------------------------------------------------------
// §20.2.5 Named objects and statements
// ---------------------------------------------------------------------------

/** Name(path, value). */
export function name(path: string, value: Aml): Aml {
  return raw(join([Uint8Array.of(AML.NAME_OP), nameString(path), value]));
}

/** Scope(path) { children }. */
export function scope(path: string, children: readonly Aml[]): Aml {
  return raw(concatBytes([Uint8Array.of(AML.SCOPE_OP), withPkgLength(join([nameString(path), ...children]))]));
}

/** Device(path) { children }. */
export function device(path: string, children: readonly Aml[]): Aml {
  return raw(
    concatBytes([Uint8Array.of(AML.EXT_OP_PREFIX, AML.DEVICE_OP), withPkgLength(join([nameString(path), ...children]))]),
  );
}

/** Method(path, argCount, Serialized|NotSerialized) { body }, sync level 0. */
export function method(path: string, argCount: number, serialized: boolean, body: readonly Aml[]): Aml {
  if (!Number.isInteger(argCount) || argCount < 0 || argCount > METHOD_MAX_ARGS) throw new RangeError(`AML Method arg count ${argCount} not in 0..7`);
  const flags = argCount | (serialized ? METHOD_FLAG_SERIALIZED : 0);
  return raw(concatBytes([Uint8Array.of(AML.METHOD_OP), withPkgLength(join([nameString(path), Uint8Array.of(flags), ...body]))]));
}

/** Return(value). */
export function ret(value: Aml): Aml {
  return raw(join([Uint8Array.of(AML.RETURN_OP), value]));
}

// ---------------------------------------------------------------------------
// §6.4 Resource descriptors and ResourceTemplate
// ---------------------------------------------------------------------------

/** A resource descriptor (the bytes inside a ResourceTemplate buffer). */
export interface ResourceDescriptor {
  readonly bytes: Uint8Array;
}

/** IO(Decode16, min, max, alignment, length) — §6.4.2.5. */
export function ioPort(min: number, max: number, alignment: number, length: number): ResourceDescriptor {
  if (max < min) throw new RangeError(`IO descriptor max 0x${max.toString(16)} below min 0x${min.toString(16)}`);
  return {
    bytes: concatBytes([
      Uint8Array.of(RES_SMALL.IO, IO_DECODE_16),
      le16(min, 'IO min'),
      le16(max, 'IO max'),
      u8(alignment, 'IO alignment'),
      u8(length, 'IO length'),
    ]),
  };
}

/** IRQNoFlags() { irqs } — §6.4.2.1: ISA IRQs 0..15, edge-triggered, active high, exclusive. */
export function irqNoFlags(irqs: readonly number[]): ResourceDescriptor {
  let mask = 0;
  for (const irq of irqs) {
    if (!Number.isInteger(irq) || irq < 0 || irq > IRQ_DESCRIPTOR_MAX_IRQ) throw new RangeError(`IRQ descriptor cannot carry IRQ ${irq}`);
    mask |= 1 << irq;
  }
  return { bytes: concatBytes([Uint8Array.of(RES_SMALL.IRQ_NO_FLAGS), le16(mask)]) };
}

/** Memory32Fixed(ReadWrite|ReadOnly, base, length) — §6.4.3.4. */
export function memory32Fixed(readWrite: boolean, base: number, length: number): ResourceDescriptor {
  if (base + length > 2 ** 32) throw new RangeError(`Memory32Fixed range 0x${base.toString(16)}+0x${length.toString(16)} crosses 4 GiB`);
  return {
    bytes: concatBytes([
      Uint8Array.of(RES_LARGE.MEMORY32_FIXED),
      le16(MEMORY32_FIXED_LENGTH),
      u8(readWrite ? MEMORY32_FIXED_READ_WRITE : 0),
      le32(base, 'Memory32Fixed base'),
      le32(length, 'Memory32Fixed length'),
    ]),
  };
}

export interface InterruptFlags {
  /** true = ResourceConsumer (the device uses the interrupt). */
  readonly consumer: boolean;
  /** true = edge-triggered, false = level. */
  readonly edge: boolean;
  readonly activeLow: boolean;
  readonly shared: boolean;
  readonly wakeCapable?: boolean;
}

/** Interrupt(consumer, Edge|Level, ActiveHigh|ActiveLow, Exclusive|Shared) { gsis } — §6.4.3.6. */
export function extendedInterrupt(flags: InterruptFlags, gsis: readonly number[]): ResourceDescriptor {
  if (gsis.length < 1 || gsis.length > 255) throw new RangeError('Extended Interrupt descriptor needs 1..255 interrupts');
  const f =
    (flags.consumer ? EXT_IRQ.CONSUMER : 0) |
    (flags.edge ? EXT_IRQ.EDGE : 0) |
    (flags.activeLow ? EXT_IRQ.ACTIVE_LOW : 0) |
    (flags.shared ? EXT_IRQ.SHARED : 0) |
    (flags.wakeCapable ? EXT_IRQ.WAKE_CAPABLE : 0);
  const body = concatBytes([Uint8Array.of(f, gsis.length), ...gsis.map((g) => le32(g, 'interrupt number'))]);
  return { bytes: concatBytes([Uint8Array.of(RES_LARGE.EXTENDED_INTERRUPT), le16(body.byteLength), body]) };
}

/**
 * ResourceTemplate() { descriptors }: a Buffer holding the descriptors and
 * an End Tag (§6.4.2.9) whose checksum byte makes the whole resource data,
 * end tag included, sum to zero.
 */
export function resourceTemplate(descriptors: readonly ResourceDescriptor[]): Aml {
  const data = concatBytes([...descriptors.map((d) => d.bytes), Uint8Array.of(RES_SMALL.END_TAG, 0)]);
  data[data.byteLength - 1] = checksum8(data);
  return buffer(data);
}
