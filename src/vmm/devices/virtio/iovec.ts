/**
 * Scatter/gather between host fds (the TAP, disk images) and guest RAM
 * without copying.
 *
 * Guest memory mapped from the host (the VMM's, every region with a host
 * address) is described to readv(2)/writev(2) as struct iovec arrays built
 * here from host addresses: one native call per frame, no JS views, no
 * exceptions on EAGAIN. Heap-backed test memory (GuestMemory.forTest, host
 * address 0) has no stable native address; there the same syscalls run
 * through node:fs on Uint8Array views of the guest buffers (also zero-copy).
 *
 * Host addresses are kept as JS numbers: x86-64 user-space addresses are
 * below 2^47, well inside the exact integer range.
 */
import fs from 'node:fs';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, SIZEOF_IOVEC } from '../../../generated/libc.js';
import type { GuestMemory } from '../../../memory/guest_memory.js';
import * as libc from '../../../sys/libc.js';
import { SpanWalker, type ChainSpan } from '../../../virtio/queue/index.js';

const TWO_32 = 2 ** 32;

/** The host mapping of every guest region, for turning guest ranges into host iovecs. */
export class HostMap {
  /** Index of the region the last lookup found. */
  private last = 0;

  private constructor(
    private readonly starts: readonly number[],
    private readonly ends: readonly number[],
    private readonly hosts: readonly number[],
  ) {}

  private static readonly cache = new WeakMap<GuestMemory, HostMap | null>();

  /** undefined when some region has no host address (heap test memory): use the node:fs path. */
  static of(mem: GuestMemory): HostMap | undefined {
    if (mem.regions.length === 0 || mem.regions.some((r) => r.hostAddr === 0n)) return undefined;
    const hosts = mem.regions.map((r) => Number(r.hostAddr));
    if (!hosts.every((h, i) => Number.isSafeInteger(h + mem.regions[i]!.size))) return undefined;
    return new HostMap(mem.regions.map((r) => r.guestAddr), mem.regions.map((r) => r.guestAddr + r.size), hosts);
  }

  /** HostMap.of, remembered per GuestMemory (its regions never change). */
  static cached(mem: GuestMemory): HostMap | undefined {
    let m = HostMap.cache.get(mem);
    if (m === undefined) {
      m = HostMap.of(mem) ?? null;
      HostMap.cache.set(mem, m);
    }
    return m ?? undefined;
  }

  /**
   * Appends [addr, addr+len) (which must be guest RAM, possibly spanning
   * adjacent regions) to `iov` from entry `at`, one entry per region crossed.
   * Returns the next free entry, or -1 when more than `limit` entries would
   * be needed or the range is not RAM.
   */
  append(iov: IoVecArray, at: number, addr: number, len: number, limit: number): number {
    const { starts, ends, hosts } = this;
    // A request's buffers are nearly always in the region of the previous one: try it first.
    let i = this.last;
    while (len > 0) {
      if (!(addr >= starts[i]! && addr < ends[i]!)) {
        i = 0;
        while (i < starts.length && !(addr >= starts[i]! && addr < ends[i]!)) i++;
        if (i === starts.length) return -1;
        this.last = i;
      }
      if (at >= limit) return -1;
      const n = Math.min(len, ends[i]! - addr);
      iov.set(at++, hosts[i]! + (addr - starts[i]!), n);
      addr += n;
      len -= n;
    }
    return at;
  }

  /**
   * The bytes a span of a chain covers, from entry 0, as append: the entry
   * count, or -1. Walks the chain's descriptors in place (no buffer
   * objects): this runs once per request, on up to SEG_MAX descriptors.
   */
  appendSpan(iov: IoVecArray, span: ChainSpan, limit: number): number {
    const w = walker.start(span);
    let n = 0;
    while (w.next()) {
      n = this.append(iov, n, w.addr, w.len, limit);
      if (n < 0) return -1;
    }
    return n;
  }
}

/** appendSpan's walker, reused (one call at a time per thread). */
const walker = new SpanWalker();

/**
 * A native struct iovec[] (16 bytes an entry: le64 base, le64 len) in a JS
 * buffer, or over given memory (native memory when the array must outlive
 * the call that uses it, as for io_uring requests).
 */
export class IoVecArray {
  readonly bytes: Uint8Array;
  /** The entries as 32-bit words (x86-64 and arm64 are little-endian: low word first). */
  private readonly words: Uint32Array;

  constructor(readonly capacity: number, over?: Uint8Array) {
    if (over !== undefined && over.byteLength < capacity * SIZEOF_IOVEC) {
      throw new RangeError(`${over.byteLength} bytes cannot hold ${capacity} iovecs`);
    }
    this.bytes = over ?? new Uint8Array(capacity * SIZEOF_IOVEC);
    this.words = new Uint32Array(this.bytes.buffer, this.bytes.byteOffset, capacity * (SIZEOF_IOVEC / 4));
  }

  /** Entry i = { host, len }. Both are integers below 2^53; `x >>> 0` is x mod 2^32 (no fmod, no floor). */
  set(i: number, host: number, len: number): void {
    const w = this.words;
    const o = i * 4;
    const hostLo = host >>> 0;
    const lenLo = len >>> 0;
    w[o] = hostLo;
    w[o + 1] = (host - hostLo) / TWO_32;
    w[o + 2] = lenLo;
    w[o + 3] = (len - lenLo) / TWO_32;
  }

  /** Entries from `start` on, as the pointer to hand to readv/writev. */
  from(start: number): Uint8Array {
    return start === 0 ? this.bytes : this.bytes.subarray(start * SIZEOF_IOVEC);
  }

  /** Moves n entries from `src` to `dst` (overlap allowed). */
  move(dst: number, src: number, n: number): void {
    this.bytes.copyWithin(dst * SIZEOF_IOVEC, src * SIZEOF_IOVEC, (src + n) * SIZEOF_IOVEC);
  }
}

/** Most bytes the scratch area holds: a whole frame of MAX_BUFFER_SIZE fits. */
export const SCRATCH_BYTES = 128 * 1024;

/** Native scratch memory (one per thread, shared by the devices it runs: used only within one call). */
export interface Scratch {
  host: number;
  bytes: Uint8Array;
}

let scratch: Scratch | undefined;

/** A host-mapped scratch area of SCRATCH_BYTES (bounce buffer, RX overflow byte). */
export function hostScratch(): Scratch {
  if (!scratch) {
    const addr = libc.mmap(SCRATCH_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    scratch = { host: Number(addr), bytes: new Uint8Array(libc.view(addr, SCRATCH_BYTES)) };
  }
  return scratch;
}

/** The errno of a node:fs failure (its `errno` is negative), or EIO. */
function fsErrno(e: unknown): number {
  const n = (e as NodeJS.ErrnoException | undefined)?.errno;
  return typeof n === 'number' && n !== 0 ? Math.abs(n) : 5;
}

/** readv through node:fs (heap memory): bytes, or -errno (-EAGAIN when empty). */
export function fsReadv(fd: number, views: Uint8Array[]): number {
  try {
    return fs.readvSync(fd, views);
  } catch (e) {
    return -fsErrno(e);
  }
}

/** writev through node:fs (heap memory): bytes, or -errno. */
export function fsWritev(fd: number, views: Uint8Array[]): number {
  try {
    return views.length === 1 ? fs.writeSync(fd, views[0]!) : fs.writevSync(fd, views);
  } catch (e) {
    return -fsErrno(e);
  }
}
