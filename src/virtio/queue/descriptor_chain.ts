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

/**
 * A byte range of one part of a chain: bytes [skip, skip + len) of its
 * device-writable part (`writable`) or of its device-readable part. The
 * caller keeps skip + len within that part's length.
 */
export interface ChainSpan {
  readonly chain: DescriptorChain;
  readonly writable: boolean;
  readonly skip: number;
  readonly len: number;
}

/** Initial entries of a chain's storage; it doubles when a longer chain arrives. */
const INITIAL_CAPACITY = 16;

/**
 * A parsed chain. Its descriptors are kept in typed arrays, so parsing one
 * allocates nothing per descriptor, and a device may hand the same
 * DescriptorChain to every pop (`Queue.popAvail(mem, into)`) to parse
 * without allocating at all: then the chain is only valid until the next
 * pop into it. The object views (`descriptors`, `readable()`, `writable()`)
 * are built on first use.
 */
export class DescriptorChain implements Iterable<Descriptor> {
  /** Index of the head descriptor: what goes back in the used ring (`Queue.addUsed(mem, chain.head, len)`). */
  head = 0;
  /** Number of data descriptors (an INDIRECT descriptor is replaced by its table's descriptors). */
  count = 0;
  /** Position of the first device-writable descriptor (`count` when there is none). */
  firstWritable = 0;
  /** Total bytes of the device-readable buffers. */
  readableLength = 0;
  /** Total bytes of the device-writable buffers. */
  writableLength = 0;
  /** Set when the chain went through an indirect table. */
  indirectTable: IndirectTableInfo | undefined = undefined;
  /** Position of the first descriptor that came from the indirect table (`count` when none did). */
  private indirectFrom = 0;

  private addrs = new Float64Array(INITIAL_CAPACITY);
  private lens = new Float64Array(INITIAL_CAPACITY);
  private indices = new Uint16Array(INITIAL_CAPACITY);
  private flagWords = new Uint16Array(INITIAL_CAPACITY);
  private nexts = new Uint16Array(INITIAL_CAPACITY);

  private objects: { descriptors: Descriptor[]; readable: Descriptor[]; writable: Descriptor[] } | undefined;

  /** Guest address of descriptor `i` (0 ≤ i < count). */
  addr(i: number): number {
    return this.addrs[i]!;
  }

  /** Length of descriptor `i` (may be 0). */
  len(i: number): number {
    return this.lens[i]!;
  }

  /** Starts over for a new chain (parseDescriptorChain). */
  reset(head: number): void {
    this.head = head;
    this.count = 0;
    this.firstWritable = 0;
    this.readableLength = 0;
    this.writableLength = 0;
    this.indirectTable = undefined;
    this.indirectFrom = 0;
    this.objects = undefined;
  }

  /** Appends a validated descriptor (parseDescriptorChain). */
  push(index: number, addr: number, len: number, flags: number, next: number): void {
    const n = this.count;
    if (n === this.addrs.length) this.grow();
    this.addrs[n] = addr;
    this.lens[n] = len;
    this.indices[n] = index;
    this.flagWords[n] = flags;
    this.nexts[n] = next;
    this.count = n + 1;
    if (flags & VIRTQ_DESC_F_WRITE) this.writableLength += len;
    else {
      this.readableLength += len;
      this.firstWritable = n + 1;
    }
  }

  /** The descriptors pushed from now on come from `info`'s table (parseDescriptorChain). */
  enterIndirect(info: IndirectTableInfo): void {
    this.indirectTable = info;
    this.indirectFrom = this.count;
  }

  private grow(): void {
    const cap = this.addrs.length * 2;
    const f64 = (a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => { const b = new Float64Array(cap); b.set(a); return b; };
    const u16 = (a: Uint16Array<ArrayBuffer>): Uint16Array<ArrayBuffer> => { const b = new Uint16Array(cap); b.set(a); return b; };
    this.addrs = f64(this.addrs);
    this.lens = f64(this.lens);
    this.indices = u16(this.indices);
    this.flagWords = u16(this.flagWords);
    this.nexts = u16(this.nexts);
  }

  private built(): NonNullable<DescriptorChain['objects']> {
    if (this.objects) return this.objects;
    const o = { descriptors: [] as Descriptor[], readable: [] as Descriptor[], writable: [] as Descriptor[] };
    for (let i = 0; i < this.count; i++) {
      const d: Descriptor = {
        index: this.indices[i]!, addr: this.addrs[i]!, len: this.lens[i]!, flags: this.flagWords[i]!, next: this.nexts[i]!,
        indirect: this.indirectTable !== undefined && i >= this.indirectFrom,
      };
      o.descriptors.push(d);
      if (d.len > 0) (i < this.firstWritable ? o.readable : o.writable).push(d);
    }
    this.objects = o;
    return o;
  }

  /** The data descriptors in chain order (an INDIRECT descriptor is replaced by its table's descriptors). */
  get descriptors(): readonly Descriptor[] {
    return this.built().descriptors;
  }

  [Symbol.iterator](): Iterator<Descriptor> {
    return this.descriptors[Symbol.iterator]();
  }

  /** Device-readable buffers in order (zero-length descriptors omitted). */
  readable(): readonly GuestBuffer[] {
    return this.built().readable;
  }

  /** Device-writable buffers in order (zero-length descriptors omitted). */
  writable(): readonly GuestBuffer[] {
    return this.built().writable;
  }

  /** A cursor over the device-readable bytes. */
  reader(mem: GuestMemory): ChainReader {
    return new ChainReader(mem, this.readable(), this.readableLength);
  }

  /** A cursor over the device-writable bytes. */
  writer(mem: GuestMemory): ChainWriter {
    return new ChainWriter(mem, this.writable(), this.writableLength);
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

/**
 * Walks the pieces of a span (one per descriptor it touches) without
 * allocating: start(), then each next() sets `addr` and `len` of the next
 * piece until it returns false. Reusable.
 */
export class SpanWalker {
  addr = 0;
  len = 0;
  private chain: DescriptorChain | undefined;
  private i = 0;
  private end = 0;
  private skip = 0;
  private left = 0;

  start(span: ChainSpan): this {
    const c = span.chain;
    this.chain = c;
    this.i = span.writable ? c.firstWritable : 0;
    this.end = span.writable ? c.count : c.firstWritable;
    this.skip = span.skip;
    this.left = span.len;
    return this;
  }

  next(): boolean {
    const c = this.chain!;
    while (this.i < this.end && this.left > 0) {
      const l = c.len(this.i);
      const a = c.addr(this.i);
      this.i++;
      if (this.skip >= l) {
        this.skip -= l;
        continue;
      }
      const take = Math.min(l - this.skip, this.left);
      this.addr = a + this.skip;
      this.len = take;
      this.left -= take;
      this.skip = 0;
      return true;
    }
    return false;
  }
}

/** The part of a chain a span covers, as buffer objects (the paths that are not hot; HostMap.appendSpan walks it in place). */
export function spanBuffers(span: ChainSpan): GuestBuffer[] {
  const out: GuestBuffer[] = [];
  const w = new SpanWalker().start(span);
  while (w.next()) out.push({ addr: w.addr, len: w.len });
  return out;
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

/** Names descriptor `i` in messages. A plain function, not a closure: a closure would move the parser's loop variables into a heap context. */
function where(chain: DescriptorChain, inIndirect: boolean, i: number): string {
  return inIndirect ? `indirect descriptor ${i} (table of descriptor ${chain.indirectTable!.descIndex})` : `descriptor ${i}`;
}

function badIndirect(chain: DescriptorChain, inIndirect: boolean, index: number, what: string): QueueError {
  return new QueueError('indirect', `${where(chain, inIndirect, index)}: ${what} [chain head ${chain.head}]`, index, chain.head);
}

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
  into: DescriptorChain = new DescriptorChain(),
): DescriptorChain {
  if (head >= queueSize) {
    throw new QueueError('head-out-of-range', `avail ring names head descriptor ${head}, outside the descriptor table (queue size ${queueSize})`, head, head);
  }
  const chain = into;
  chain.reset(head);
  let seenWritable = false;

  let view = table;
  let tableSize = queueSize;
  let inIndirect = false;
  let index = head;
  let count = 0;
  // [okStart, okEnd): a region known to be RAM (empty until the first buffer is checked).
  let okStart = 0;
  let okEnd = -1;

  for (;;) {
    if (++count > tableSize) {
      throw new QueueError(
        'loop',
        inIndirect
          ? `${where(chain, inIndirect, index)}: chain visits more than the table's ${tableSize} entries (descriptor loop) [chain head ${head}]`
          : `descriptor ${index}: chain visits more than queue size ${queueSize} descriptors (descriptor loop) [chain head ${head}]`,
        index,
        head,
      );
    }
    const off = index * VIRTQ_DESC_SIZE;
    const lo = view.u32(off);
    const hi = view.u32(off + 4);
    const len = view.u32(off + 8);
    const flagsNext = view.u32(off + 12); // le16 flags, then le16 next
    const flags = flagsNext & 0xffff;
    const next = flagsNext >>> 16;
    const addr = hi * TWO_32 + lo;

    if (flags & VIRTQ_DESC_F_INDIRECT) {
      if (inIndirect) throw badIndirect(chain, inIndirect, index, 'nested INDIRECT descriptor inside an indirect table');
      if (!allowIndirect) throw badIndirect(chain, inIndirect, index, 'INDIRECT descriptor but VIRTIO_F_RING_INDIRECT_DESC was not negotiated');
      if (flags & VIRTQ_DESC_F_NEXT) throw badIndirect(chain, inIndirect, index, 'INDIRECT descriptor also has NEXT set');
      if (len === 0 || len % VIRTQ_DESC_SIZE !== 0) throw badIndirect(chain, inIndirect, index, `indirect table length ${len} is not a non-zero multiple of ${VIRTQ_DESC_SIZE}`);
      const entries = len / VIRTQ_DESC_SIZE;
      if (entries > MAX_INDIRECT_ENTRIES) throw badIndirect(chain, inIndirect, index, `indirect table has ${entries} entries (more than ${MAX_INDIRECT_ENTRIES})`);
      if (hi >= ADDR_HI_LIMIT || !rangeInRam(mem, addr, len)) {
        throw badIndirect(chain, inIndirect, index, `indirect table [0x${addr.toString(16)}, +0x${len.toString(16)}) is not in guest RAM`);
      }
      // The WRITE flag of the descriptor pointing at the table is ignored (§2.7.5.3.2).
      chain.enterIndirect({ descIndex: index, addr, entries });
      view = new GuestView(mem, addr, len);
      tableSize = entries;
      inIndirect = true;
      index = 0;
      count = 0;
      continue;
    }

    // Buffers are checked against the region of the last one first (nearly always theirs), then
    // against the one region holding them, then across adjacent regions.
    if (len > 0 && !(addr >= okStart && addr + len <= okEnd)) {
      const r = mem.regionIndex(addr, len);
      if (r >= 0) {
        okStart = mem.regions[r]!.guestAddr;
        okEnd = okStart + mem.regions[r]!.size;
      } else if (hi >= ADDR_HI_LIMIT || !rangeInRam(mem, addr, len)) {
        throw new QueueError(
          'buffer-out-of-range',
          `${where(chain, inIndirect, index)}: buffer [0x${addr.toString(16)}, +0x${len.toString(16)}) is not in guest RAM [chain head ${head}]`,
          index,
          head,
        );
      }
    }
    if (flags & VIRTQ_DESC_F_WRITE) {
      seenWritable = true;
    } else if (seenWritable) {
      throw new QueueError('order', `${where(chain, inIndirect, index)}: device-readable descriptor after a device-writable one [chain head ${head}]`, index, head);
    }
    chain.push(index, addr, len, flags, next);
    if (chain.readableLength + chain.writableLength > MAX_CHAIN_BYTES) {
      throw new QueueError('too-long', `${where(chain, inIndirect, index)}: chain is longer than 2^32 bytes in total [chain head ${head}]`, index, head);
    }

    if (!(flags & VIRTQ_DESC_F_NEXT)) break;
    if (next >= tableSize) {
      throw new QueueError(
        'next-out-of-range',
        inIndirect
          ? `${where(chain, inIndirect, index)}: next index ${next} out of range (table has ${tableSize} entries) [chain head ${head}]`
          : `descriptor ${index}: next index ${next} out of range (queue size ${queueSize}) [chain head ${head}]`,
        index,
        head,
      );
    }
    index = next;
  }

  if (chain.readableLength + chain.writableLength === 0) {
    throw new QueueError('zero-length', `descriptor ${head}: chain carries no bytes (all ${chain.count} descriptor(s) have length 0) [chain head ${head}]`, head, head);
  }
  return chain;
}
