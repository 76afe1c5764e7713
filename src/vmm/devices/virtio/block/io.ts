/**
 * Synchronous disk I/O straight between the backing file and guest RAM (the
 * equivalent of Firecracker's sync file engine).
 *
 * Zero-copy: for guest memory backed by a host mapping (the VMM's), a
 * request's buffers go to one preadv(2)/pwritev(2) as host addresses (a
 * 512 KiB request is 128 page-sized descriptors: one syscall, not 128; a
 * buffer spanning adjacent regions becomes one iovec per region); a short
 * transfer continues piece by piece with pread(2)/pwrite(2). For heap
 * test memory (GuestMemory.forTest, host address 0) the same syscalls run
 * through node:fs on the region's own Uint8Array view, which is also read
 * and written in place. A buffer may span adjacent regions; it is then done
 * as one syscall per region crossed. Short transfers are continued; EINTR is
 * retried.
 */
import fs from 'node:fs';
import type { GuestMemory, GuestRegion } from '../../../../memory/guest_memory.js';
import { EINTR } from '../../../../generated/libc.js';
import * as libc from '../../../../sys/libc.js';
import { spanBuffers, type ChainSpan, type GuestBuffer } from '../../../../virtio/queue/index.js';
import { HostMap, IoVecArray } from '../iovec.js';

export type IoDirection = 'read' | 'write';

export interface IoResult {
  /** Bytes moved before the transfer stopped. */
  bytes: number;
  /** Why it stopped short, if it did (end of file, a host error). */
  error?: string;
}

function regionAt(mem: GuestMemory, addr: number): GuestRegion | undefined {
  for (const r of mem.regions) {
    if (addr >= r.guestAddr && addr < r.guestAddr + r.size) return r;
  }
  return undefined;
}

function sysErrorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function isEintr(e: unknown): boolean {
  if (e instanceof libc.SysError) return e.errno === EINTR;
  return (e as NodeJS.ErrnoException | undefined)?.code === 'EINTR';
}

/**
 * One syscall moving up to `len` bytes between file offset `off` and guest
 * RAM at region offset `roff`; returns the count (0: end of file for a read).
 */
function once(dir: IoDirection, fd: number, r: GuestRegion, roff: number, len: number, off: number): number {
  for (;;) {
    try {
      if (r.hostAddr !== 0n) {
        const host = r.hostAddr + BigInt(roff);
        return dir === 'read' ? libc.preadTo(fd, host, len, off) : libc.pwriteFrom(fd, host, len, off);
      }
      return dir === 'read' ? fs.readSync(fd, r.bytes, roff, len, off) : fs.writeSync(fd, r.bytes, roff, len, off);
    } catch (e) {
      if (!isEintr(e)) throw e;
    }
  }
}

/** Most iovecs per preadv/pwritev call (IOV_MAX on Linux). */
const IOV_MAX = 1024;
/** One iovec array per thread, reused by every request (requests run one at a time). */
let iov: IoVecArray | undefined;

/**
 * The whole span in one preadv/pwritev when the memory is host-mapped: the
 * count moved (possibly short), or undefined when the memory doesn't qualify
 * or the call failed (the caller then goes piece by piece, which also
 * reports the error). Host addresses stay JS numbers and the chain is walked
 * in place: this runs once per request with up to SEG_MAX buffers.
 */
function vectored(dir: IoDirection, fd: number, map: HostMap | undefined, span: ChainSpan, offset: number): number | undefined {
  if (map === undefined) return undefined;
  iov ??= new IoVecArray(IOV_MAX);
  const n = map.appendSpan(iov, span, IOV_MAX);
  if (n <= 0) return undefined;
  const got = dir === 'read' ? libc.tryPreadv(fd, iov.bytes, n, offset) : libc.tryPwritev(fd, iov.bytes, n, offset);
  return got > 0 ? got : undefined;
}

/**
 * Reads the file at `offset` into the span's guest buffers (dir 'read'), or
 * writes them to the file at `offset` (dir 'write'), in order. `map`: the
 * memory's HostMap when the caller keeps it (looked up otherwise).
 * Never throws: a failure is reported with the count done so far.
 */
export function transfer(dir: IoDirection, fd: number, mem: GuestMemory, span: ChainSpan, offset: number, map = HostMap.cached(mem)): IoResult {
  const total = span.len;
  const fast = vectored(dir, fd, map, span, offset);
  if (fast === total) return { bytes: total };
  if (fast !== undefined) {
    const rest = pieceByPiece(dir, fd, mem, spanBuffers({ ...span, skip: span.skip + fast, len: total - fast }), offset + fast);
    return { ...rest, bytes: fast + rest.bytes };
  }
  return pieceByPiece(dir, fd, mem, spanBuffers(span), offset);
}

function pieceByPiece(dir: IoDirection, fd: number, mem: GuestMemory, bufs: readonly GuestBuffer[], offset: number): IoResult {
  let done = 0;
  for (const b of bufs) {
    let addr = b.addr;
    let left = b.len;
    while (left > 0) {
      const r = regionAt(mem, addr);
      if (r === undefined) return { bytes: done, error: `guest address 0x${addr.toString(16)} is not RAM` };
      const roff = addr - r.guestAddr;
      const n = Math.min(left, r.size - roff);
      let got: number;
      try {
        got = once(dir, fd, r, roff, n, offset + done);
      } catch (e) {
        return { bytes: done, error: sysErrorText(e) };
      }
      if (got <= 0) {
        return { bytes: done, error: dir === 'read' ? 'unexpected end of file' : 'write made no progress' };
      }
      done += got;
      addr += got;
      left -= got;
    }
  }
  return { bytes: done };
}
