/**
 * Small helpers over GuestMemory for the virtqueue code.
 *
 * GuestMemory hands out zero-copy views of one region at a time. A guest
 * physical range can legitimately span two *adjacent* regions (the VMM splits
 * large RAM into several ≤ 2 GiB views, e.g. at guest address 2 GiB, which is
 * ordinary RAM to the guest), so a buffer is "in RAM" when every byte of it is
 * backed by some region, and it is accessed as one view per region crossed.
 */
import type { GuestMemory } from '../../memory/guest_memory.js';

/** Largest guest address we ever accept (addresses above 2^53 are not representable anyway). */
const MAX_ADDR = Number.MAX_SAFE_INTEGER;

/** True when every byte of [addr, addr+len) is guest RAM (across adjacent regions if need be). len 0 is "in RAM" when addr is a valid number. */
export function rangeInRam(mem: GuestMemory, addr: number, len: number): boolean {
  if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len < 0 || addr + len > MAX_ADDR) return false;
  if (len === 0) return true;
  if (mem.isValidRange(addr, len)) return true;
  // Slow path: walk contiguous regions (regions are sorted and non-overlapping).
  let cur = addr;
  const end = addr + len;
  for (const r of mem.regions) {
    const rEnd = r.guestAddr + r.size;
    if (cur < r.guestAddr) return false; // hole before this region
    if (cur >= rEnd) continue;
    if (end <= rEnd) return true;
    cur = rEnd;
  }
  return false;
}

/**
 * Zero-copy views of [addr, addr+len), one per region crossed (normally one).
 * The caller has checked the range with rangeInRam; a range outside RAM throws GuestMemoryError.
 */
export function guestSegments(mem: GuestMemory, addr: number, len: number): Uint8Array[] {
  if (len === 0) return [];
  if (mem.isValidRange(addr, len)) return [mem.slice(addr, len)];
  const out: Uint8Array[] = [];
  let cur = addr;
  let left = len;
  for (const r of mem.regions) {
    const rEnd = r.guestAddr + r.size;
    if (cur < r.guestAddr || cur >= rEnd) continue;
    const n = Math.min(left, rEnd - cur);
    out.push(mem.slice(cur, n));
    cur += n;
    left -= n;
    if (left === 0) return out;
  }
  // Not wholly in RAM: let GuestMemory report it.
  mem.slice(cur, left);
  return out;
}

/**
 * Little-endian field access to a guest structure at [base, base+len): one
 * DataView when the structure sits in a single region (the fast, usual case),
 * otherwise field-by-field through GuestMemory (byte-wise where a field
 * straddles a region boundary). Offsets are trusted: callers keep them < len.
 */
export class GuestView {
  /** The view of the region holding the whole structure, if one does. */
  private readonly dv: DataView | undefined;
  /** Offset of `base` in that view. */
  private readonly at: number;

  constructor(private readonly mem: GuestMemory, readonly base: number, readonly len: number) {
    const i = mem.regionIndex(base, len);
    this.dv = i < 0 ? undefined : mem.regionView(i);
    this.at = i < 0 ? 0 : base - mem.regions[i]!.guestAddr;
  }

  u16(off: number): number {
    if (this.dv) return this.dv.getUint16(this.at + off, true);
    return this.slowRead(off, 2);
  }

  u32(off: number): number {
    if (this.dv) return this.dv.getUint32(this.at + off, true);
    return this.slowRead(off, 4);
  }

  setU16(off: number, v: number): void {
    if (this.dv) this.dv.setUint16(this.at + off, v, true);
    else this.slowWrite(off, 2, v);
  }

  setU32(off: number, v: number): void {
    if (this.dv) this.dv.setUint32(this.at + off, v >>> 0, true);
    else this.slowWrite(off, 4, v >>> 0);
  }

  private slowRead(off: number, n: number): number {
    const a = this.base + off;
    if (this.mem.isValidRange(a, n)) return n === 2 ? this.mem.readU16(a) : this.mem.readU32(a);
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.mem.readU8(a + i);
    return v;
  }

  private slowWrite(off: number, n: number, v: number): void {
    const a = this.base + off;
    if (this.mem.isValidRange(a, n)) {
      if (n === 2) this.mem.writeU16(a, v);
      else this.mem.writeU32(a, v);
      return;
    }
    for (let i = 0; i < n; i++) {
      this.mem.writeU8(a + i, v & 0xff);
      v = Math.floor(v / 256);
    }
  }
}
