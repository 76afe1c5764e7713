/**
 * Guest physical memory: a set of non-overlapping regions, each backed by a
 * host mapping and exposed as a zero-copy Uint8Array view.
 *
 * Addresses are plain numbers (guest physical addresses stay well below
 * 2^53). Every accessor is bounds-checked: an access that is not wholly inside
 * one region throws GuestMemoryError and touches nothing, which is what keeps
 * guest-controlled addresses (virtqueue descriptors, boot pointers) from ever
 * reaching host memory outside the guest.
 */

export class GuestMemoryError extends Error {
  constructor(readonly addr: number, readonly len: number, what = 'guest memory access') {
    super(`${what} out of bounds: [0x${addr.toString(16)}, +0x${len.toString(16)})`);
    this.name = 'GuestMemoryError';
  }
}

export interface GuestRegion {
  /** Guest physical address of the first byte. */
  readonly guestAddr: number;
  /** Length in bytes. */
  readonly size: number;
  /** Host virtual address of the mapping (for KVM_SET_USER_MEMORY_REGION); 0n for test memory. */
  readonly hostAddr: bigint;
  /** Zero-copy view of the whole region. */
  readonly bytes: Uint8Array;
}

export class GuestMemory {
  readonly regions: readonly GuestRegion[];
  /** One DataView per region. */
  private readonly views: readonly DataView[];

  constructor(regions: GuestRegion[]) {
    const sorted = [...regions].sort((a, b) => a.guestAddr - b.guestAddr);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      if (prev.guestAddr + prev.size > sorted[i]!.guestAddr) {
        throw new Error(`guest memory regions overlap at 0x${sorted[i]!.guestAddr.toString(16)}`);
      }
    }
    for (const r of sorted) {
      if (r.bytes.byteLength !== r.size) throw new Error('guest region view size does not match its size');
    }
    this.regions = sorted;
    this.views = sorted.map((r) => new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength));
  }

  /** Plain heap-backed memory for unit tests and device harnesses (no KVM). */
  static forTest(layout: Array<{ guestAddr: number; size: number }>): GuestMemory {
    return new GuestMemory(layout.map((r) => ({ ...r, hostAddr: 0n, bytes: new Uint8Array(r.size) })));
  }

  /** Total bytes of guest RAM. */
  get totalSize(): number {
    return this.regions.reduce((n, r) => n + r.size, 0);
  }

  /** One past the last guest physical address backed by RAM. */
  get endAddr(): number {
    const last = this.regions[this.regions.length - 1];
    return last ? last.guestAddr + last.size : 0;
  }

  /**
   * Index of the region holding all of [addr, addr+len), or -1. Allocation-
   * free and non-throwing: it runs several times per virtqueue request.
   */
  regionIndex(addr: number, len: number): number {
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len < 0) return -1;
    const rs = this.regions;
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i]!;
      if (addr >= r.guestAddr && addr + len <= r.guestAddr + r.size) return i;
    }
    return -1;
  }

  private regionFor(addr: number, len: number): GuestRegion {
    return this.regions[this.fieldRegion(addr, len)]!;
  }

  /** True when [addr, addr+len) lies inside one region. */
  isValidRange(addr: number, len: number): boolean {
    return this.regionIndex(addr, len) >= 0;
  }

  /** The DataView of region `i` (offsets relative to its guestAddr): field accesses need no view of their own. */
  regionView(i: number): DataView {
    return this.views[i]!;
  }

  /** A zero-copy view of [addr, addr+len); writes through it reach the guest. */
  slice(addr: number, len: number): Uint8Array {
    const r = this.regionFor(addr, len);
    const off = addr - r.guestAddr;
    return r.bytes.subarray(off, off + len);
  }

  /** Host virtual address of a guest range (for syscalls that read/write guest RAM directly). */
  hostAddress(addr: number, len: number): bigint {
    const r = this.regionFor(addr, len);
    return r.hostAddr + BigInt(addr - r.guestAddr);
  }

  write(addr: number, data: Uint8Array): void {
    this.slice(addr, data.byteLength).set(data);
  }

  read(addr: number, len: number): Uint8Array {
    return this.slice(addr, len).slice();
  }

  fill(addr: number, len: number, value = 0): void {
    this.slice(addr, len).fill(value);
  }

  /** Index of the region holding all of [addr, addr+len); throws GuestMemoryError when none does. */
  private fieldRegion(addr: number, len: number): number {
    const i = this.regionIndex(addr, len);
    if (i < 0) throw new GuestMemoryError(addr, len);
    return i;
  }

  // Field accessors: bounds-checked, and no view allocated per access (they run per virtqueue request).
  readU8(addr: number): number { const i = this.fieldRegion(addr, 1); return this.views[i]!.getUint8(addr - this.regions[i]!.guestAddr); }
  readU16(addr: number): number { const i = this.fieldRegion(addr, 2); return this.views[i]!.getUint16(addr - this.regions[i]!.guestAddr, true); }
  readU32(addr: number): number { const i = this.fieldRegion(addr, 4); return this.views[i]!.getUint32(addr - this.regions[i]!.guestAddr, true); }
  readU64(addr: number): bigint { const i = this.fieldRegion(addr, 8); return this.views[i]!.getBigUint64(addr - this.regions[i]!.guestAddr, true); }
  writeU8(addr: number, v: number): void { const i = this.fieldRegion(addr, 1); this.views[i]!.setUint8(addr - this.regions[i]!.guestAddr, v); }
  writeU16(addr: number, v: number): void { const i = this.fieldRegion(addr, 2); this.views[i]!.setUint16(addr - this.regions[i]!.guestAddr, v, true); }
  writeU32(addr: number, v: number): void { const i = this.fieldRegion(addr, 4); this.views[i]!.setUint32(addr - this.regions[i]!.guestAddr, v >>> 0, true); }
  writeU64(addr: number, v: bigint | number): void { const i = this.fieldRegion(addr, 8); this.views[i]!.setBigUint64(addr - this.regions[i]!.guestAddr, BigInt(v), true); }
}
