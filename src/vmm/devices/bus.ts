/**
 * A device bus: maps address ranges (I/O ports or guest-physical MMIO) to
 * devices. Ranges may not overlap; a lookup finds the device and the offset
 * inside its range.
 */

export interface BusDevice {
  /** Fills `data` (1, 2, 4 or 8 bytes) with the value at `offset`. */
  read(offset: number, data: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
}

interface BusRange { base: number; len: number; end: number; name: string; device: BusDevice }

export class BusError extends Error {
  override name = 'BusError';
}

export class Bus {
  private ranges: BusRange[] = [];
  /**
   * The range of the last hit. Exits come in runs on one device (a driver's
   * interrupt handler reads, then acks, the same window), and each thread has
   * its own Bus, so this is usually the answer without a search.
   */
  private last: BusRange | undefined;

  constructor(readonly kind: 'pio' | 'mmio') {}

  insert(device: BusDevice, base: number, len: number, name: string): void {
    if (len <= 0) throw new BusError(`${this.kind} range of ${name} is empty`);
    const end = base + len;
    for (const r of this.ranges) {
      if (base < r.base + r.len && r.base < end) {
        throw new BusError(
          `${this.kind} range 0x${base.toString(16)}+0x${len.toString(16)} of ${name} overlaps ${r.name} at 0x${r.base.toString(16)}+0x${r.len.toString(16)}`,
        );
      }
    }
    this.ranges.push({ base, len, end, name, device });
    this.ranges.sort((a, b) => a.base - b.base);
  }

  private find(addr: number): BusRange | undefined {
    const last = this.last;
    if (last !== undefined && addr >= last.base && addr < last.end) return last;
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.ranges[mid]!;
      if (addr < r.base) hi = mid - 1;
      else if (addr >= r.end) lo = mid + 1;
      else return (this.last = r);
    }
    return undefined;
  }

  /** Returns false when no device claims `addr` (the caller decides what an unclaimed access reads as). */
  read(addr: number, data: Uint8Array): boolean {
    const r = this.find(addr);
    if (!r) return false;
    r.device.read(addr - r.base, data);
    return true;
  }

  write(addr: number, data: Uint8Array): boolean {
    const r = this.find(addr);
    if (!r) return false;
    r.device.write(addr - r.base, data);
    return true;
  }

  get devices(): ReadonlyArray<{ base: number; len: number; name: string }> {
    return this.ranges.map(({ base, len, name }) => ({ base, len, name }));
  }
}
