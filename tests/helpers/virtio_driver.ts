/**
 * A guest-side virtio split-queue driver for tests: it plays the part of the
 * guest kernel's virtio_ring against a GuestMemory.forTest memory, so device
 * code can be exercised without a VM.
 *
 * It lays out the descriptor table, available ring and used ring, hands out
 * descriptors from a free list, builds direct and indirect chains (copying
 * any `data` into freshly allocated buffers), publishes avail.idx, decides
 * whether it would kick (honouring VIRTQ_USED_F_NO_NOTIFY / avail_event), and
 * reads the used ring back, recycling descriptors as a real driver does.
 *
 * For hostile-input tests everything is also reachable raw: write any
 * descriptor, any avail entry, any avail.idx.
 *
 *   const mem = createTestMemory();
 *   const drv = new VirtioDriver(mem, { size: 16 });
 *   const q = drv.createQueue();            // a device-side Queue wired to these rings
 *   const head = drv.addChain([{ data: hdr }, { len: 512, write: true }]);
 *   ... device: q.popAvail(mem) ... q.addUsed(mem, head, n) ...
 *   const used = drv.popUsed();             // { id: head, len: n, chain: [...] }
 */
import { GuestMemory } from '../../src/memory/guest_memory.js';
import {
  VIRTQ_AVAIL_OFF_FLAGS,
  VIRTQ_AVAIL_OFF_IDX,
  VIRTQ_AVAIL_OFF_RING,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_ELEM_SIZE,
  VIRTQ_USED_F_NO_NOTIFY,
  VIRTQ_USED_OFF_FLAGS,
  VIRTQ_USED_OFF_IDX,
  VIRTQ_USED_OFF_RING,
  virtqAvailRingSize,
  virtqDescTableSize,
  virtqUsedRingSize,
} from '../../src/generated/virtio.js';
import { Queue, guestSegments, vringNeedEvent } from '../../src/virtio/queue/index.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** Default test machine: 1 MiB of low RAM, nothing (an "MMIO gap") up to 4 GiB, then 1 MiB of high RAM. */
export const TEST_LOW_RAM_SIZE = 1 * MiB;
export const TEST_HIGH_RAM_BASE = 4 * GiB;
export const TEST_HIGH_RAM_SIZE = 1 * MiB;

export function createTestMemory(
  layout: Array<{ guestAddr: number; size: number }> = [
    { guestAddr: 0, size: TEST_LOW_RAM_SIZE },
    { guestAddr: TEST_HIGH_RAM_BASE, size: TEST_HIGH_RAM_SIZE },
  ],
): GuestMemory {
  return GuestMemory.forTest(layout);
}

/** One buffer of a chain to build. */
export interface BufferSpec {
  /** Device-writable (otherwise device-readable). */
  write?: boolean;
  /** Length; defaults to data.length. */
  len?: number;
  /** Guest address; allocated from the data area when omitted. */
  addr?: number;
  /** Initial contents (copied into the buffer). */
  data?: Uint8Array;
}

/** A descriptor as raw fields. */
export interface RawDescriptor {
  addr: number;
  len: number;
  flags: number;
  next: number;
}

/** A used ring entry, plus the buffers of the chain it returned (when the harness built that chain). */
export interface UsedElem {
  id: number;
  len: number;
  buffers: Array<{ addr: number; len: number; write: boolean }>;
}

export interface VirtioDriverOptions {
  /** Queue size (power of two). Default 256. */
  size?: number;
  /** Where the descriptor table starts (16-aligned); avail and used rings follow. Default 0x10000. */
  ringBase?: number;
  /** Data area for buffers and indirect tables the harness allocates. Default [0x40000, +0x80000). */
  dataBase?: number;
  dataSize?: number;
  /** Driver negotiated VIRTIO_F_RING_EVENT_IDX. Default false. */
  eventIdx?: boolean;
  /** Driver negotiated VIRTIO_F_RING_INDIRECT_DESC. Default true. */
  indirect?: boolean;
}

interface InFlight {
  descs: number[];
  buffers: Array<{ addr: number; len: number; write: boolean }>;
}

const align = (v: number, a: number): number => Math.ceil(v / a) * a;

export class VirtioDriver {
  readonly size: number;
  readonly descTable: number;
  readonly availRing: number;
  readonly usedRing: number;
  readonly eventIdx: boolean;
  readonly indirect: boolean;
  /** Number of times publish() decided to notify the device. */
  kicks = 0;

  private readonly dataBase: number;
  private readonly dataEnd: number;
  private dataNext: number;
  private freeDescs: number[];
  /** avail.idx including entries pushed but not yet published. */
  private availShadow = 0;
  /** avail.idx as last published. */
  private availPublished = 0;
  /** Next used ring entry the driver will read. */
  private lastUsed = 0;
  private readonly inFlight = new Map<number, InFlight>();

  constructor(readonly mem: GuestMemory, opts: VirtioDriverOptions = {}) {
    this.size = opts.size ?? 256;
    if (this.size <= 0 || (this.size & (this.size - 1)) !== 0) throw new Error(`queue size ${this.size} is not a power of two`);
    this.eventIdx = opts.eventIdx ?? false;
    this.indirect = opts.indirect ?? true;
    this.descTable = opts.ringBase ?? 0x10000;
    this.availRing = this.descTable + virtqDescTableSize(this.size);
    this.usedRing = align(this.availRing + virtqAvailRingSize(this.size), 4);
    this.dataBase = opts.dataBase ?? 0x40000;
    this.dataEnd = this.dataBase + (opts.dataSize ?? 0x80000);
    this.dataNext = this.dataBase;
    this.freeDescs = Array.from({ length: this.size }, (_, i) => i);
    // Fresh rings: everything zero (the driver MUST initialize used.flags to 0, §2.7.10.1).
    this.write(this.descTable, new Uint8Array(this.ringBytes));
  }

  /** Bytes from descTable to the end of the used ring. */
  get ringBytes(): number {
    return this.usedRing + virtqUsedRingSize(this.size) - this.descTable;
  }

  /** Points a device-side queue at these rings and marks it ready (what the driver does through the transport). */
  configure(queue: Queue): Queue {
    queue.size = this.size;
    queue.descTable = this.descTable;
    queue.availRing = this.availRing;
    queue.usedRing = this.usedRing;
    queue.eventIdxEnabled = this.eventIdx;
    queue.indirectEnabled = this.indirect;
    queue.ready = true;
    return queue;
  }

  /** A new device-side Queue (max size = `maxSize`, default this.size) configured for these rings. */
  createQueue(maxSize = this.size): Queue {
    return this.configure(new Queue(maxSize));
  }

  // ---- data area ---------------------------------------------------------

  /** Allocates len bytes in the data area (wrapping to its start when full: fine for tests with bounded in-flight data). */
  alloc(len: number, alignment = 16): number {
    let a = align(this.dataNext, alignment);
    if (a + len > this.dataEnd) a = align(this.dataBase, alignment);
    if (a + len > this.dataEnd) throw new Error(`test data area too small for ${len} bytes`);
    this.dataNext = a + len;
    return a;
  }

  /** Copies guest bytes out (the range may span adjacent regions). */
  read(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let at = 0;
    for (const seg of guestSegments(this.mem, addr, len)) {
      out.set(seg, at);
      at += seg.length;
    }
    return out;
  }

  /** Copies bytes into guest memory (the range may span adjacent regions). */
  write(addr: number, data: Uint8Array): void {
    let at = 0;
    for (const seg of guestSegments(this.mem, addr, data.length)) {
      seg.set(data.subarray(at, at + seg.length));
      at += seg.length;
    }
  }

  // Little-endian scalar access that, like a real CPU, does not care about region boundaries.
  private r16(addr: number): number { return new DataView(this.read(addr, 2).buffer).getUint16(0, true); }
  private r32(addr: number): number { return new DataView(this.read(addr, 4).buffer).getUint32(0, true); }
  private r64(addr: number): bigint { return new DataView(this.read(addr, 8).buffer).getBigUint64(0, true); }
  private w16(addr: number, v: number): void { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, v, true); this.write(addr, b); }
  private w32(addr: number, v: number): void { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v >>> 0, true); this.write(addr, b); }
  private w64(addr: number, v: bigint): void { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, v, true); this.write(addr, b); }

  // ---- raw descriptor / ring access ----------------------------------------

  writeDescriptor(index: number, d: RawDescriptor, table = this.descTable): void {
    const a = table + index * VIRTQ_DESC_SIZE;
    this.w64(a, BigInt(d.addr));
    this.w32(a + 8, d.len);
    this.w16(a + 12, d.flags);
    this.w16(a + 14, d.next);
  }

  readDescriptor(index: number, table = this.descTable): RawDescriptor {
    const a = table + index * VIRTQ_DESC_SIZE;
    return {
      addr: Number(this.r64(a)),
      len: this.r32(a + 8),
      flags: this.r16(a + 12),
      next: this.r16(a + 14),
    };
  }

  /** Writes raw descriptors into a table (an indirect table when `table` is given) chained 0→1→…: a convenience for hostile tests. */
  writeTable(descs: RawDescriptor[], table = this.descTable): void {
    descs.forEach((d, i) => this.writeDescriptor(i, d, table));
  }

  /** Places `head` in the next avail ring slot (not yet visible to the device: see publish()). */
  pushAvail(head: number): void {
    this.w16(this.availRing + VIRTQ_AVAIL_OFF_RING + 2 * (this.availShadow % this.size), head);
    this.availShadow = (this.availShadow + 1) & 0xffff;
  }

  /**
   * Makes every pushed entry visible by storing avail.idx, then decides, as a
   * driver must (§2.7.13.4), whether to notify: with EVENT_IDX when the new
   * idx stepped over avail_event, else unless used.flags has NO_NOTIFY.
   * Returns that decision (and counts it in `kicks`).
   */
  publish(): boolean {
    const old = this.availPublished;
    const now = this.availShadow;
    this.w16(this.availRing + VIRTQ_AVAIL_OFF_IDX, now);
    this.availPublished = now;
    const kick = this.eventIdx
      ? vringNeedEvent(this.availEvent(), now, old)
      : (this.r16(this.usedRing + VIRTQ_USED_OFF_FLAGS) & VIRTQ_USED_F_NO_NOTIFY) === 0;
    if (kick) this.kicks++;
    return kick;
  }

  /** Stores an arbitrary avail.idx (hostile tests). */
  setAvailIdx(idx: number): void {
    this.w16(this.availRing + VIRTQ_AVAIL_OFF_IDX, idx & 0xffff);
    this.availShadow = this.availPublished = idx & 0xffff;
  }

  get availIdx(): number {
    return this.availPublished;
  }

  // ---- building chains ------------------------------------------------------

  private takeDescs(n: number): number[] {
    if (n > this.freeDescs.length) throw new Error(`driver: need ${n} descriptors, ${this.freeDescs.length} free`);
    return this.freeDescs.splice(0, n);
  }

  private materialize(b: BufferSpec): { addr: number; len: number; write: boolean } {
    const len = b.len ?? b.data?.length ?? 0;
    const addr = b.addr ?? this.alloc(Math.max(len, 1));
    if (b.data) this.write(addr, b.data.subarray(0, len));
    return { addr, len, write: !!b.write };
  }

  /**
   * Builds a direct chain (readable buffers must come first, but the harness
   * does not enforce it), pushes its head and, unless publish is false,
   * publishes. Returns the head descriptor index.
   */
  addChain(bufs: BufferSpec[], opts: { publish?: boolean } = {}): number {
    if (bufs.length === 0) throw new Error('driver: empty chain');
    const descs = this.takeDescs(bufs.length);
    const buffers = bufs.map((b) => this.materialize(b));
    buffers.forEach((b, i) => {
      const last = i === buffers.length - 1;
      this.writeDescriptor(descs[i]!, {
        addr: b.addr,
        len: b.len,
        flags: (b.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT),
        next: last ? 0 : descs[i + 1]!,
      });
    });
    const head = descs[0]!;
    this.inFlight.set(head, { descs, buffers });
    this.pushAvail(head);
    if (opts.publish ?? true) this.publish();
    return head;
  }

  /**
   * Builds a chain whose buffers live in an indirect table (one queue
   * descriptor with INDIRECT), optionally preceded by direct descriptors
   * (`prefix`), which the device MUST also handle (§2.7.5.3.2).
   */
  addIndirectChain(bufs: BufferSpec[], opts: { publish?: boolean; prefix?: BufferSpec[] } = {}): number {
    if (bufs.length === 0) throw new Error('driver: empty indirect table');
    const prefix = opts.prefix ?? [];
    const descs = this.takeDescs(prefix.length + 1);
    const pre = prefix.map((b) => this.materialize(b));
    const table = this.alloc(bufs.length * VIRTQ_DESC_SIZE, 16);
    const inner = bufs.map((b) => this.materialize(b));
    inner.forEach((b, i) => {
      const last = i === inner.length - 1;
      this.writeDescriptor(i, {
        addr: b.addr,
        len: b.len,
        flags: (b.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT),
        next: last ? 0 : i + 1,
      }, table);
    });
    pre.forEach((b, i) => {
      this.writeDescriptor(descs[i]!, {
        addr: b.addr,
        len: b.len,
        flags: (b.write ? VIRTQ_DESC_F_WRITE : 0) | VIRTQ_DESC_F_NEXT,
        next: descs[i + 1]!,
      });
    });
    this.writeDescriptor(descs[pre.length]!, { addr: table, len: bufs.length * VIRTQ_DESC_SIZE, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    const head = descs[0]!;
    this.inFlight.set(head, { descs, buffers: [...pre, ...inner] });
    this.pushAvail(head);
    if (opts.publish ?? true) this.publish();
    return head;
  }

  /** Pushes (and publishes) a head whose descriptors the test wrote by hand; `descs` are recycled when it is used. */
  addRawChain(head: number, descs: number[] = [head], opts: { publish?: boolean } = {}): void {
    for (const d of descs) {
      const i = this.freeDescs.indexOf(d);
      if (i >= 0) this.freeDescs.splice(i, 1);
    }
    this.inFlight.set(head, { descs, buffers: [] });
    this.pushAvail(head);
    if (opts.publish ?? true) this.publish();
  }

  get freeDescriptors(): number {
    return this.freeDescs.length;
  }

  // ---- used ring ---------------------------------------------------------------

  /** used.idx as the device published it. */
  usedIdx(): number {
    return this.r16(this.usedRing + VIRTQ_USED_OFF_IDX);
  }

  /** Reads the next used entry, if any, and recycles its descriptors. */
  popUsed(): UsedElem | undefined {
    if (this.usedIdx() === this.lastUsed) return undefined;
    const a = this.usedRing + VIRTQ_USED_OFF_RING + VIRTQ_USED_ELEM_SIZE * (this.lastUsed % this.size);
    const id = this.r32(a);
    const len = this.r32(a + 4);
    this.lastUsed = (this.lastUsed + 1) & 0xffff;
    const f = this.inFlight.get(id);
    if (f) {
      this.inFlight.delete(id);
      this.freeDescs.push(...f.descs);
    }
    return { id, len, buffers: f?.buffers ?? [] };
  }

  /** Every used entry not read yet. */
  drainUsed(): UsedElem[] {
    const out: UsedElem[] = [];
    for (let u = this.popUsed(); u; u = this.popUsed()) out.push(u);
    return out;
  }

  // ---- notification suppression fields ---------------------------------------

  /** Driver side of used-buffer suppression with EVENT_IDX: "interrupt me when used.idx passes `idx`". */
  setUsedEvent(idx: number): void {
    this.w16(this.availRing + VIRTQ_AVAIL_OFF_RING + 2 * this.size, idx & 0xffff);
  }

  /** Driver side of used-buffer suppression without EVENT_IDX. */
  setNoInterrupt(on: boolean): void {
    this.w16(this.availRing + VIRTQ_AVAIL_OFF_FLAGS, on ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0);
  }

  /** used.flags as written by the device. */
  usedFlags(): number {
    return this.r16(this.usedRing + VIRTQ_USED_OFF_FLAGS);
  }

  /** avail_event (the word after the used ring) as written by the device. */
  availEvent(): number {
    return this.r16(this.usedRing + VIRTQ_USED_OFF_RING + VIRTQ_USED_ELEM_SIZE * this.size);
  }
}
