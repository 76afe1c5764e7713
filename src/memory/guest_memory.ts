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

  private regionFor(addr: number, len: number): GuestRegion {
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len < 0) {
      throw new GuestMemoryError(addr, len);
    }
    for (const r of this.regions) {
      if (addr >= r.guestAddr && addr + len <= r.guestAddr + r.size) return r;
    }
    throw new GuestMemoryError(addr, len);
  }

  /** True when [addr, addr+len) lies inside one region. */
  isValidRange(addr: number, len: number): boolean {
    try {
      this.regionFor(addr, len);
      return true;
    } catch {
      return false;
    }
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

  private dv(addr: number, len: number): DataView {
    const s = this.slice(addr, len);
    return new DataView(s.buffer, s.byteOffset, len);
  }

  readU8(addr: number): number { return this.slice(addr, 1)[0]!; }
  readU16(addr: number): number { return this.dv(addr, 2).getUint16(0, true); }
  readU32(addr: number): number { return this.dv(addr, 4).getUint32(0, true); }
  readU64(addr: number): bigint { return this.dv(addr, 8).getBigUint64(0, true); }
  writeU8(addr: number, v: number): void { this.slice(addr, 1)[0] = v; }
  writeU16(addr: number, v: number): void { this.dv(addr, 2).setUint16(0, v, true); }
  writeU32(addr: number, v: number): void { this.dv(addr, 4).setUint32(0, v >>> 0, true); }
  writeU64(addr: number, v: bigint | number): void { this.dv(addr, 8).setBigUint64(0, BigInt(v), true); }
}
