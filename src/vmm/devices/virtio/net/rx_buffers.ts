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
 */
import { IOV_MAX } from '../../../../generated/libc.js';
import type { GuestMemory } from '../../../../memory/guest_memory.js';
import * as libc from '../../../../sys/libc.js';
import type { DescriptorChain } from '../../../../virtio/queue/index.js';
import { fsReadv, HostMap, hostScratch, IoVecArray } from '../iovec.js';

/** Offset of num_buffers (le16) in struct virtio_net_hdr_v1. */
export const VNET_HDR_OFF_NUM_BUFFERS = 10;

/** A chain held for receiving. */
interface HeldChain {
  readonly chain: DescriptorChain;
  /** Bytes of it offered to readv. */
  readonly len: number;
  /** Its host iovec entries (host-mapped memory). */
  readonly nIov: number;
  /** Its views (heap memory). */
  readonly views: Uint8Array[] | undefined;
}

/** A received frame: the chains it filled and the bytes in each (used lengths). */
export interface RxFrame {
  readonly heads: number[];
  readonly lens: number[];
  /** Total bytes, vnet header included. */
  readonly bytes: number;
}

export type AddResult = 'ok' | 'iov-limit';

export class RxBuffers {
  private readonly chains: HeldChain[] = [];
  private _capacity = 0;
  /** Host mode: live entries are iov[iovStart, iovEnd); one more slot is kept free for the overflow byte. */
  private readonly iov: IoVecArray | undefined;
  private readonly tmp: IoVecArray | undefined;
  private iovStart = 0;
  private iovEnd = 0;
  /** Heap mode: number of views held, and the overflow byte. */
  private viewCount = 0;
  private readonly overflow = new Uint8Array(1);

  constructor(private readonly mem: GuestMemory, private readonly hostMap: HostMap | undefined) {
    if (hostMap) {
      this.iov = new IoVecArray(4 * IOV_MAX);
      this.tmp = new IoVecArray(IOV_MAX);
    }
  }

  /** Bytes of all held chains. */
  get capacity(): number {
    return this._capacity;
  }

  /** Number of chains held. */
  get length(): number {
    return this.chains.length;
  }

  /** iovecs a read would use (without the overflow byte). */
  get iovCount(): number {
    return this.hostMap ? this.iovEnd - this.iovStart : this.viewCount;
  }

  /**
   * Holds `chain` (a device-writable chain), offering its first `maxBytes`
   * writable bytes. 'iov-limit' (nothing held) when the reads would need
   * more than IOV_MAX - 1 iovecs with it.
   */
  add(chain: DescriptorChain, maxBytes: number): AddResult {
    const len = Math.min(maxBytes, chain.writableLength);
    const room = IOV_MAX - 1 - this.iovCount;
    if (this.hostMap) {
      const tmp = this.tmp!;
      let n = 0;
      let left = len;
      for (const d of chain.writable()) {
        if (left === 0) break;
        const take = Math.min(d.len, left);
        n = this.hostMap.append(tmp, n, d.addr, take, room);
        if (n < 0) return 'iov-limit';
        left -= take;
      }
      const iov = this.iov!;
      if (this.iovEnd + n + 1 > iov.capacity) {
        iov.move(0, this.iovStart, this.iovEnd - this.iovStart);
        this.iovEnd -= this.iovStart;
        this.iovStart = 0;
      }
      iov.bytes.set(tmp.bytes.subarray(0, n * 16), this.iovEnd * 16);
      this.iovEnd += n;
      this.chains.push({ chain, len, nIov: n, views: undefined });
    } else {
      const views = chain.writer(this.mem).views(len);
      if (views.length > room) return 'iov-limit';
      this.viewCount += views.length;
      this.chains.push({ chain, len, nIov: 0, views });
    }
    this._capacity += len;
    return 'ok';
  }

  /** One readv from `fd` into every held chain, then the overflow byte: bytes read, or -errno. */
  read(fd: number): number {
    if (this.hostMap) {
      const iov = this.iov!;
      iov.set(this.iovEnd, hostScratch().host, 1);
      return libc.tryReadv(fd, iov.from(this.iovStart), this.iovEnd - this.iovStart + 1);
    }
    const views: Uint8Array[] = [];
    for (const c of this.chains) for (const v of c.views!) views.push(v);
    views.push(this.overflow);
    return fsReadv(fd, views);
  }

  /**
   * Takes off the front the chains that a frame of `bytes` (≤ capacity)
   * filled and writes their count into num_buffers of the first one's header.
   */
  take(bytes: number): RxFrame {
    const heads: number[] = [];
    const lens: number[] = [];
    let left = bytes;
    let k = 0;
    let iovs = 0;
    let views = 0;
    let cap = 0;
    do {
      const c = this.chains[k++];
      if (!c) throw new RangeError(`rx: a frame of ${bytes} bytes does not fit the ${this._capacity} bytes held`);
      const n = Math.min(left, c.len);
      heads.push(c.chain.head);
      lens.push(n);
      left -= n;
      iovs += c.nIov;
      views += c.views?.length ?? 0;
      cap += c.len;
    } while (left > 0);
    const numBuffers = new Uint8Array(2);
    new DataView(numBuffers.buffer).setUint16(0, k, true);
    this.chains[0]!.chain.writeBytes(this.mem, numBuffers, VNET_HDR_OFF_NUM_BUFFERS);
    this.chains.splice(0, k);
    this._capacity -= cap;
    this.iovStart += iovs;
    this.viewCount -= views;
    if (this.chains.length === 0) this.iovStart = this.iovEnd = 0;
    return { heads, lens, bytes };
  }

  /** Drops every held chain (device reset: the queue is gone with them). */
  clear(): void {
    this.chains.length = 0;
    this._capacity = 0;
    this.iovStart = this.iovEnd = 0;
    this.viewCount = 0;
  }
}
