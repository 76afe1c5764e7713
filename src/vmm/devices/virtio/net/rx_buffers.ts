/**
 * The receive buffers the device holds: descriptor chains popped from the
 * rx queue, not yet used, in ring order (Firecracker's RxBuffers). A frame
 * is read from the TAP with one readv straight into them: with
 * VIRTIO_NET_F_MRG_RXBUF across as many chains as it needs (the device
 * keeps at least MAX_BUFFER_SIZE bytes of them, so any frame fits), without
 * it into a single chain. The chains it filled are then taken off the front
 * and returned to the driver together, with num_buffers in the first
 * chain's header saying how many there are.
 *
 * One extra byte of host scratch memory follows the buffers in every readv:
 * a frame larger than the buffers spills into it (or, as the TUN driver
 * does, is reported with its full length), so a truncated frame is always
 * recognisable as `bytes > capacity` and dropped instead of delivered cut.
 *
 * This is the device's per-frame path, so it allocates nothing per chain or
 * per frame once warm: the held chains live in a ring of typed arrays, their
 * host iovecs are stored straight into one native iovec array (as 32-bit
 * words, with the guest → host translation of HostMap; consumed from the
 * front, compacted rarely), and a taken frame is described in a reused
 * RxFrame (heads and used lengths in typed arrays) that stays valid until
 * the next take() or clear(). A chain of a single buffer (what Linux posts
 * with MRG_RXBUF) can be held from its head, address and length alone
 * (holdBuffer), without a DescriptorChain.
 */
import { IOV_MAX } from '../../../../generated/libc.js';
import type { GuestMemory } from '../../../../memory/guest_memory.js';
import * as libc from '../../../../sys/libc.js';
import type { DescriptorChain } from '../../../../virtio/queue/index.js';
import { fsReadv, HostMap, hostScratch, IoVecArray } from '../iovec.js';

/** Offset of num_buffers (le16) in struct virtio_net_hdr_v1. */
export const VNET_HDR_OFF_NUM_BUFFERS = 10;

/**
 * Most chains held at once: every held chain has at least one iovec and a
 * read uses at most IOV_MAX - 1 of them (plus the overflow byte). A power
 * of two, so ring positions wrap with a mask.
 */
const MAX_HELD = IOV_MAX;
const HELD_MASK = MAX_HELD - 1;
const TWO_32 = 2 ** 32;

/**
 * A received frame: the chains it filled and the bytes in each (used
 * lengths). RxBuffers reuses one object: it is valid until the next take()
 * or clear().
 */
export interface RxFrame {
  /** Chains the frame filled (num_buffers). */
  count: number;
  /** Head descriptor of each chain, entries [0, count). */
  readonly heads: Uint16Array;
  /** Bytes written into each chain, entries [0, count). */
  readonly lens: Uint32Array;
  /** Total bytes, vnet header included. */
  bytes: number;
}

export type AddResult = 'ok' | 'iov-limit';

export class RxBuffers {
  // Held chains: a ring of MAX_HELD slots, `count` of them from `first`.
  /** The chain, when it was held as one (add); undefined for holdBuffer. */
  private readonly chains: Array<DescriptorChain | undefined> = new Array<DescriptorChain | undefined>(MAX_HELD).fill(undefined);
  private readonly heads = new Uint16Array(MAX_HELD);
  /** Bytes of each chain offered to readv. */
  private readonly lens = new Uint32Array(MAX_HELD);
  /** iovec entries (host memory) or views (heap memory) of each chain. */
  private readonly pieces = new Uint16Array(MAX_HELD);
  /** Guest address and length of each chain's first writable buffer (where its vnet header starts). */
  private readonly firstAddr = new Float64Array(MAX_HELD);
  private readonly firstLen = new Uint32Array(MAX_HELD);
  private first = 0;
  private count = 0;
  private _capacity = 0;
  /** Host mode: live entries are iov[iovStart, iovEnd); one more slot is kept free for the overflow byte. */
  private readonly iov: IoVecArray | undefined;
  /** The same entries as 32-bit words (base lo, base hi, len lo, len hi; x86-64 is little-endian). */
  private readonly iovWords: Uint32Array | undefined;
  /** Each region's guest start and end, and (host mode) host address, as HostMap translates them. */
  private readonly regionStart: number[] = [];
  private readonly regionEnd: number[] = [];
  private readonly regionHost: number[] = [];
  /** iov.from(i), made once per start position (a read starts wherever the previous frame ended). */
  private readonly iovFrom: Array<Uint8Array | undefined> = [];
  private iovStart = 0;
  private iovEnd = 0;
  /** Heap mode: views of the held chains, live from viewStart; and the overflow byte. */
  private readonly views: Uint8Array[] = [];
  private viewStart = 0;
  private readonly overflow = new Uint8Array(1);
  /** Bytes for writing num_buffers through a chain writer (a header split across descriptors). */
  private readonly numBuffers = new Uint8Array(2);
  private readonly frame: RxFrame = { count: 0, heads: new Uint16Array(MAX_HELD), lens: new Uint32Array(MAX_HELD), bytes: 0 };

  /** `hostMap`: HostMap.of(mem), undefined for heap memory (reads then go through node:fs on views). */
  constructor(private readonly mem: GuestMemory, private readonly hostMap: HostMap | undefined) {
    for (const r of mem.regions) {
      this.regionStart.push(r.guestAddr);
      this.regionEnd.push(r.guestAddr + r.size);
      this.regionHost.push(Number(r.hostAddr));
    }
    if (hostMap) {
      this.iov = new IoVecArray(4 * IOV_MAX);
      this.iovWords = new Uint32Array(this.iov.bytes.buffer, this.iov.bytes.byteOffset, this.iov.bytes.byteLength / 4);
    }
  }

  /** Bytes of all held chains. */
  get capacity(): number {
    return this._capacity;
  }

  /** Number of chains held. */
  get length(): number {
    return this.count;
  }

  /** iovecs a read would use (without the overflow byte). */
  get iovCount(): number {
    return this.hostMap ? this.iovEnd - this.iovStart : this.views.length - this.viewStart;
  }

  /**
   * Holds `chain` (a device-writable chain), offering its first `maxBytes`
   * writable bytes. 'iov-limit' (nothing held) when the reads would need
   * more than IOV_MAX - 1 iovecs with it.
   */
  add(chain: DescriptorChain, maxBytes: number): AddResult {
    const len = Math.min(maxBytes, chain.writableLength);
    const bufs = chain.writable();
    const d0 = bufs[0];
    let n: number;
    if (this.hostMap) {
      const start = this.prepareAppend();
      const limit = start + IOV_MAX - 1 - this.iovCount;
      let at = start;
      let left = len;
      for (let i = 0; i < bufs.length && left > 0 && at >= 0; i++) {
        const d = bufs[i]!;
        const take = d.len < left ? d.len : left;
        at = this.appendHost(d.addr, take, at, limit);
        left -= take;
      }
      if (at < 0) return 'iov-limit'; // iovEnd unchanged: the entries written past it are ignored
      n = at - start;
      this.iovEnd = at;
    } else {
      const views = chain.writer(this.mem).views(len);
      if (views.length > IOV_MAX - 1 - this.iovCount) return 'iov-limit';
      for (const v of views) this.views.push(v);
      n = views.length;
    }
    this.hold(chain, chain.head, d0 ? d0.addr : 0, d0 ? d0.len : 0, len, n);
    return 'ok';
  }

  /**
   * Holds the chain `head` made of the single device-writable buffer
   * [addr, addr+bufLen), offering its first `maxBytes` bytes, as add()
   * would hold such a chain: 1 when held; 0 (nothing held) when the buffer
   * does not lie within one guest memory region (the caller then leaves the
   * chain to the queue's validation); -1 (nothing held) when a read would
   * need more than IOV_MAX - 1 iovecs with it.
   */
  holdBuffer(head: number, addr: number, bufLen: number, maxBytes: number): number {
    const starts = this.regionStart;
    let r = 0;
    while (r < starts.length && !(addr >= starts[r]! && addr + bufLen <= this.regionEnd[r]!)) r++;
    if (r === starts.length) return 0;
    if (this.iovCount >= IOV_MAX - 1) return -1;
    const len = bufLen < maxBytes ? bufLen : maxBytes;
    if (this.hostMap) {
      // One entry; room after it for the overflow byte.
      if (this.iovEnd + 2 > this.iov!.capacity) this.compact();
      const host = this.regionHost[r]! + (addr - starts[r]!);
      const words = this.iovWords!;
      const w = this.iovEnd * 4;
      words[w] = host % TWO_32;
      words[w + 1] = host / TWO_32;
      words[w + 2] = len;
      words[w + 3] = 0;
      this.iovEnd++;
    } else {
      const off = addr - starts[r]!;
      this.views.push(this.mem.regions[r]!.bytes.subarray(off, off + len));
    }
    this.hold(undefined, head, addr, bufLen, len, 1);
    return 1;
  }

  private hold(chain: DescriptorChain | undefined, head: number, addr: number, bufLen: number, len: number, pieces: number): void {
    const slot = (this.first + this.count) & HELD_MASK;
    this.chains[slot] = chain;
    this.heads[slot] = head;
    this.lens[slot] = len;
    this.pieces[slot] = pieces;
    this.firstAddr[slot] = addr;
    this.firstLen[slot] = bufLen;
    this.count++;
    this._capacity += len;
  }

  /** Makes room after iovEnd for as many entries as a read may still take, plus the overflow byte; returns iovEnd. */
  private prepareAppend(): number {
    if (this.iovEnd + (IOV_MAX - 1 - this.iovCount) + 1 > this.iov!.capacity) this.compact();
    return this.iovEnd;
  }

  /**
   * HostMap.append for [addr, addr+len) (guest RAM, possibly across
   * adjacent regions): iovecs from entry `at`, one per region crossed. The
   * next free entry, or -1 when that would take entries from `limit` on (or
   * the range is not RAM, which the queue has already ruled out).
   */
  private appendHost(addr: number, len: number, at: number, limit: number): number {
    const words = this.iovWords!;
    const starts = this.regionStart;
    const ends = this.regionEnd;
    while (len > 0) {
      if (at >= limit) return -1;
      let r = 0;
      while (r < starts.length && !(addr >= starts[r]! && addr < ends[r]!)) r++;
      if (r === starts.length) return -1;
      const n = Math.min(len, ends[r]! - addr);
      const host = this.regionHost[r]! + (addr - starts[r]!);
      const w = at * 4;
      words[w] = host % TWO_32;
      words[w + 1] = host / TWO_32;
      words[w + 2] = n;
      words[w + 3] = 0;
      at++;
      addr += n;
      len -= n;
    }
    return at;
  }

  /** One readv from `fd` into every held chain, then the overflow byte: bytes read, or -errno. */
  read(fd: number): number {
    if (this.hostMap) {
      const iov = this.iov!;
      const words = this.iovWords!;
      const start = this.iovStart;
      const w = this.iovEnd * 4;
      const host = hostScratch().host;
      words[w] = host % TWO_32;
      words[w + 1] = host / TWO_32;
      words[w + 2] = 1;
      words[w + 3] = 0;
      const from = this.iovFrom[start] ?? (this.iovFrom[start] = iov.from(start));
      return libc.tryReadv(fd, from, this.iovEnd - start + 1);
    }
    const views = this.views.slice(this.viewStart);
    views.push(this.overflow);
    return fsReadv(fd, views);
  }

  /**
   * Takes off the front the chains that a frame of `bytes` (≤ capacity)
   * filled and writes their count into num_buffers of the first one's
   * header. The returned frame is reused: valid until the next take() or clear().
   */
  take(bytes: number): RxFrame {
    const f = this.frame;
    let left = bytes;
    let k = 0;
    let pieces = 0;
    let cap = 0;
    let slot = this.first;
    do {
      if (k === this.count) throw new RangeError(`rx: a frame of ${bytes} bytes does not fit the ${this._capacity} bytes held`);
      const len = this.lens[slot]!;
      const n = left < len ? left : len;
      f.heads[k] = this.heads[slot]!;
      f.lens[k] = n;
      left -= n;
      pieces += this.pieces[slot]!;
      cap += len;
      k++;
      slot = (slot + 1) & HELD_MASK;
    } while (left > 0);
    this.writeNumBuffers(this.first, k);
    for (let i = 0, s = this.first; i < k; i++, s = (s + 1) & HELD_MASK) this.chains[s] = undefined;
    this.first = slot;
    this.count -= k;
    this._capacity -= cap;
    if (this.hostMap) this.iovStart += pieces;
    else this.viewStart += pieces;
    if (this.count === 0) this.reindex();
    else if (this.viewStart > IOV_MAX) {
      this.views.splice(0, this.viewStart);
      this.viewStart = 0;
    }
    f.count = k;
    f.bytes = bytes;
    return f;
  }

  /** Drops every held chain (device reset: the queue is gone with them). */
  clear(): void {
    this.chains.fill(undefined);
    this.count = 0;
    this._capacity = 0;
    this.reindex();
    this.frame.count = 0;
    this.frame.bytes = 0;
  }

  /** Nothing held: start the ring and the iovecs over. */
  private reindex(): void {
    this.first = 0;
    this.iovStart = this.iovEnd = 0;
    this.views.length = 0;
    this.viewStart = 0;
  }

  /** Moves the live iovecs to the start of the array. */
  private compact(): void {
    const n = this.iovEnd - this.iovStart;
    this.iov!.move(0, this.iovStart, n);
    this.iovStart = 0;
    this.iovEnd = n;
  }

  /**
   * num_buffers (le16 at offset 10 of the chain's writable bytes), into the
   * chain held in `slot`: stored straight into guest RAM when its first
   * writable buffer holds it (the usual case), else through a chain writer
   * (a header split across descriptors).
   */
  private writeNumBuffers(slot: number, k: number): void {
    if (this.firstLen[slot]! >= VNET_HDR_OFF_NUM_BUFFERS + 2) {
      const addr = this.firstAddr[slot]! + VNET_HDR_OFF_NUM_BUFFERS;
      const starts = this.regionStart;
      for (let r = 0; r < starts.length; r++) {
        const off = addr - starts[r]!;
        if (off >= 0 && addr + 2 <= this.regionEnd[r]!) {
          const bytes = this.mem.regions[r]!.bytes;
          bytes[off] = k & 0xff;
          bytes[off + 1] = k >>> 8;
          return;
        }
      }
      // The two bytes straddle adjacent regions (the buffer is RAM throughout).
      this.mem.writeU8(addr, k & 0xff);
      this.mem.writeU8(addr + 1, k >>> 8);
      return;
    }
    this.numBuffers[0] = k & 0xff;
    this.numBuffers[1] = k >>> 8;
    this.chains[slot]!.writeBytes(this.mem, this.numBuffers, VNET_HDR_OFF_NUM_BUFFERS);
  }
}
