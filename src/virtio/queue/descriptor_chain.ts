/**
 * Descriptor chains of a split virtqueue (Virtio 1.2 §2.7.5), parsed and
 * validated in one pass when the device pops them off the available ring.
 *
 * Everything here is guest-controlled and the guest keeps running while we
 * look at it, so each descriptor is read from guest memory exactly once and
 * the copy is what gets validated and used (no time-of-check/time-of-use
 * window on addr/len/flags/next). The buffers the descriptors point at are
 * not copied: readers and writers work on zero-copy views of guest RAM, and
 * every buffer has been checked to lie wholly in RAM before the chain is
 * handed out.
 *
 * Rules enforced (each violation throws QueueError naming the descriptor):
 *  - `next` must index the table it lives in (queue table, or indirect table);
 *  - no loops: a walk longer than the table it walks (queue size for the
 *    descriptor table, entry count for an indirect table) is a loop;
 *  - every descriptor's [addr, addr+len) is guest RAM (len 0 is accepted and
 *    carries no bytes);
 *  - device-readable descriptors come before device-writable ones (§2.7.4.2);
 *  - INDIRECT (§2.7.5.3): only when negotiated, never together with NEXT,
 *    never inside an indirect table, len a non-zero multiple of 16, table in
 *    RAM; its own WRITE flag is ignored, as the device MUST do. It may follow
 *    zero or more direct descriptors (the device MUST handle that), and since
 *    it cannot have NEXT it ends the direct part of the chain;
 *  - the chain's total length is neither 0 nor above 2^32 bytes (§2.7.5.2).
 */
import type { GuestMemory } from '../../memory/guest_memory.js';
import {
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
} from '../../generated/virtio.js';
import { QueueError } from './errors.js';
import { GuestView, guestSegments, rangeInRam } from './guest_view.js';

/** A guest buffer: [addr, addr+len) of guest physical memory. */
export interface GuestBuffer {
  readonly addr: number;
  readonly len: number;
}

/** One descriptor, as read (once) from guest memory. */
export interface Descriptor extends GuestBuffer {
  /** Index in the table it came from: the queue's descriptor table, or an indirect table. */
  readonly index: number;
  readonly flags: number;
  readonly next: number;
  /** True when the descriptor came from an indirect table. */
  readonly indirect: boolean;
}

/** Most entries an indirect table may have: `next` is 16 bits, so entries past 65536 are unreachable. */
export const MAX_INDIRECT_ENTRIES = 65536;
/** §2.7.5.2: a chain is at most 2^32 bytes long. */
export const MAX_CHAIN_BYTES = 2 ** 32;

/** Where an indirect table came from, for diagnostics. */
export interface IndirectTableInfo {
  /** Index (in the queue's table) of the descriptor that pointed at the table. */
  readonly descIndex: number;
  readonly addr: number;
  readonly entries: number;
}

export class DescriptorChain implements Iterable<Descriptor> {
  constructor(
    /** Index of the head descriptor: what goes back in the used ring (`Queue.addUsed(mem, chain.head, len)`). */
    readonly head: number,
    /** The data descriptors in chain order (an INDIRECT descriptor is replaced by its table's descriptors). */
    readonly descriptors: readonly Descriptor[],
    private readonly readableBufs: readonly Descriptor[],
    private readonly writableBufs: readonly Descriptor[],
    /** Total bytes of the device-readable buffers. */
    readonly readableLength: number,
    /** Total bytes of the device-writable buffers. */
    readonly writableLength: number,
    /** Set when the chain went through an indirect table. */
    readonly indirectTable: IndirectTableInfo | undefined,
  ) {}

  [Symbol.iterator](): Iterator<Descriptor> {
    return this.descriptors[Symbol.iterator]();
  }

  /** Device-readable buffers in order (zero-length descriptors omitted). */
  readable(): readonly GuestBuffer[] {
    return this.readableBufs;
  }

  /** Device-writable buffers in order (zero-length descriptors omitted). */
  writable(): readonly GuestBuffer[] {
    return this.writableBufs;
  }

  /** A cursor over the device-readable bytes. */
  reader(mem: GuestMemory): ChainReader {
    return new ChainReader(mem, this.readableBufs, this.readableLength);
  }

  /** A cursor over the device-writable bytes. */
  writer(mem: GuestMemory): ChainWriter {
    return new ChainWriter(mem, this.writableBufs, this.writableLength);
  }

  /**
   * A copy of the first min(len, readableLength) device-readable bytes (after
   * skipping `offset`). Copying is deliberate: a header the device parses
   * must not change under it while the guest runs.
   */
  readBytes(mem: GuestMemory, len: number, offset = 0): Uint8Array {
    const r = this.reader(mem);
    r.skip(offset);
    return r.read(len);
  }

  /** Writes `data` into the device-writable buffers from `offset`; returns bytes written (short when they are too small). */
  writeBytes(mem: GuestMemory, data: Uint8Array, offset = 0): number {
    const w = this.writer(mem);
    if (w.skip(offset) < offset) return 0;
    return w.write(data);
  }
}

/** Shared cursor logic over a list of guest buffers. */
abstract class BufferCursor {
  private bufIndex = 0;
  private bufOffset = 0;
  private pos = 0;

  constructor(
    protected readonly mem: GuestMemory,
    private readonly bufs: readonly GuestBuffer[],
    /** Total bytes covered by the buffers. */
    readonly length: number,
  ) {}

  /** Bytes before the cursor. */
  get position(): number {
    return this.pos;
  }

  /** Bytes after the cursor. */
  get remaining(): number {
    return this.length - this.pos;
  }

  /** Moves the cursor forward by up to n bytes; returns how far it moved. */
  skip(n: number): number {
    let moved = 0;
    this.consume(n, () => { /* nothing */ }, (len) => { moved += len; });
    return moved;
  }

  /**
   * Zero-copy views of the next min(n, remaining) bytes, advancing the
   * cursor: hand them to readv/writev-style calls (fs.readvSync/writevSync).
   */
  views(n: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    this.consume(n, (v) => out.push(v));
    return out;
  }

  /** Walks up to n bytes from the cursor, calling `each` on every view, and advances. */
  protected consume(n: number, each: (view: Uint8Array) => void, moved?: (len: number) => void): void {
    let left = Math.max(0, Math.min(n, this.remaining));
    while (left > 0) {
      const b = this.bufs[this.bufIndex]!;
      const take = Math.min(left, b.len - this.bufOffset);
      for (const seg of guestSegments(this.mem, b.addr + this.bufOffset, take)) each(seg);
      moved?.(take);
      left -= take;
      this.pos += take;
      this.bufOffset += take;
      if (this.bufOffset === b.len) {
        this.bufIndex++;
        this.bufOffset = 0;
      }
    }
  }
}

/** Reads the device-readable part of a chain. */
export class ChainReader extends BufferCursor {
  /** A copy of the next min(len, remaining) bytes. */
  read(len: number): Uint8Array {
    const out = new Uint8Array(Math.max(0, Math.min(len, this.remaining)));
    this.readInto(out);
    return out;
  }

  /** Copies the next bytes into `dst`; returns how many (short at the end of the readable part). */
  readInto(dst: Uint8Array): number {
    let at = 0;
    this.consume(dst.byteLength, (v) => {
      dst.set(v, at);
      at += v.byteLength;
    });
    return at;
  }
}

/** Writes the device-writable part of a chain. */
export class ChainWriter extends BufferCursor {
  /** Bytes written so far (== position): what a device usually reports as the used length. */
  get written(): number {
    return this.position;
  }

  /** Copies `data` straight into guest memory at the cursor; returns bytes written (short when space runs out). */
  write(data: Uint8Array): number {
    let at = 0;
    this.consume(data.byteLength, (v) => {
      v.set(data.subarray(at, at + v.byteLength));
      at += v.byteLength;
    });
    return at;
  }

  /** Writes n bytes of `value`; returns bytes written. */
  fill(n: number, value = 0): number {
    let done = 0;
    this.consume(n, (v) => {
      v.fill(value);
      done += v.byteLength;
    });
    return done;
  }
}

const TWO_32 = 2 ** 32;
/** High 32-bit halves at or above this make an address beyond 2^53: never RAM. */
const ADDR_HI_LIMIT = 2 ** 21;

/**
 * Reads and validates the chain starting at `head` in the descriptor table
 * `table` (a view of `queueSize` descriptors). Throws QueueError on any
 * violation; never throws anything else for guest-controlled input.
 */
export function parseDescriptorChain(
  mem: GuestMemory,
  table: GuestView,
  queueSize: number,
  head: number,
  allowIndirect: boolean,
): DescriptorChain {
  if (head >= queueSize) {
    throw new QueueError('head-out-of-range', `avail ring names head descriptor ${head}, outside the descriptor table (queue size ${queueSize})`, head, head);
  }
  const descriptors: Descriptor[] = [];
  const readable: Descriptor[] = [];
  const writable: Descriptor[] = [];
  let readLen = 0;
  let writeLen = 0;
  let indirectInfo: IndirectTableInfo | undefined;
  let seenWritable = false;

  let view = table;
  let tableSize = queueSize;
  let inIndirect = false;
  let index = head;
  let count = 0;
  const where = (i: number): string => (inIndirect ? `indirect descriptor ${i} (table of descriptor ${indirectInfo!.descIndex})` : `descriptor ${i}`);

  for (;;) {
    if (++count > tableSize) {
      throw new QueueError(
        'loop',
        inIndirect
          ? `${where(index)}: chain visits more than the table's ${tableSize} entries (descriptor loop) [chain head ${head}]`
          : `descriptor ${index}: chain visits more than queue size ${queueSize} descriptors (descriptor loop) [chain head ${head}]`,
        index,
        head,
      );
    }
    const off = index * VIRTQ_DESC_SIZE;
    const lo = view.u32(off);
    const hi = view.u32(off + 4);
    const len = view.u32(off + 8);
    const flags = view.u16(off + 12);
    const next = view.u16(off + 14);
    const addr = hi * TWO_32 + lo;

    if (flags & VIRTQ_DESC_F_INDIRECT) {
      const bad = (what: string): QueueError =>
        new QueueError('indirect', `${where(index)}: ${what} [chain head ${head}]`, index, head);
      if (inIndirect) throw bad('nested INDIRECT descriptor inside an indirect table');
      if (!allowIndirect) throw bad('INDIRECT descriptor but VIRTIO_F_RING_INDIRECT_DESC was not negotiated');
      if (flags & VIRTQ_DESC_F_NEXT) throw bad('INDIRECT descriptor also has NEXT set');
      if (len === 0 || len % VIRTQ_DESC_SIZE !== 0) throw bad(`indirect table length ${len} is not a non-zero multiple of ${VIRTQ_DESC_SIZE}`);
      const entries = len / VIRTQ_DESC_SIZE;
      if (entries > MAX_INDIRECT_ENTRIES) throw bad(`indirect table has ${entries} entries (more than ${MAX_INDIRECT_ENTRIES})`);
      if (hi >= ADDR_HI_LIMIT || !rangeInRam(mem, addr, len)) {
        throw bad(`indirect table [0x${addr.toString(16)}, +0x${len.toString(16)}) is not in guest RAM`);
      }
      // The WRITE flag of the descriptor pointing at the table is ignored (§2.7.5.3.2).
      indirectInfo = { descIndex: index, addr, entries };
      view = new GuestView(mem, addr, len);
      tableSize = entries;
      inIndirect = true;
      index = 0;
      count = 0;
      continue;
    }

    if (len > 0 && (hi >= ADDR_HI_LIMIT || !rangeInRam(mem, addr, len))) {
      throw new QueueError(
        'buffer-out-of-range',
        `${where(index)}: buffer [0x${addr.toString(16)}, +0x${len.toString(16)}) is not in guest RAM [chain head ${head}]`,
        index,
        head,
      );
    }
    const d: Descriptor = { index, addr, len, flags, next, indirect: inIndirect };
    descriptors.push(d);
    if (flags & VIRTQ_DESC_F_WRITE) {
      seenWritable = true;
      writeLen += len;
      if (len > 0) writable.push(d);
    } else {
      if (seenWritable) {
        throw new QueueError('order', `${where(index)}: device-readable descriptor after a device-writable one [chain head ${head}]`, index, head);
      }
      readLen += len;
      if (len > 0) readable.push(d);
    }
    if (readLen + writeLen > MAX_CHAIN_BYTES) {
      throw new QueueError('too-long', `${where(index)}: chain is longer than 2^32 bytes in total [chain head ${head}]`, index, head);
    }

    if (!(flags & VIRTQ_DESC_F_NEXT)) break;
    if (next >= tableSize) {
      throw new QueueError(
        'next-out-of-range',
        inIndirect
          ? `${where(index)}: next index ${next} out of range (table has ${tableSize} entries) [chain head ${head}]`
          : `descriptor ${index}: next index ${next} out of range (queue size ${queueSize}) [chain head ${head}]`,
        index,
        head,
      );
    }
    index = next;
  }

  if (readLen + writeLen === 0) {
    throw new QueueError('zero-length', `descriptor ${head}: chain carries no bytes (all ${descriptors.length} descriptor(s) have length 0) [chain head ${head}]`, head, head);
  }
  return new DescriptorChain(head, descriptors, readable, writable, readLen, writeLen, indirectInfo);
}
