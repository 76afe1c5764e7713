/**
 * Firecracker's Async block engine: reads, writes and flushes go to an
 * io_uring instead of blocking the device thread. The device thread parses
 * a request, points an SQE at an iovec array built from the guest's buffers
 * (zero copy, as the sync engine) and goes on with the next request; the
 * kernel completes requests in any order, signalling an eventfd that sits in
 * the device thread's epoll loop.
 *
 * Every request is forced onto the kernel's io-wq workers (IOSQE_ASYNC):
 * a buffered read from the page cache would otherwise be done inline during
 * io_uring_enter, on the device thread, one request after another. Handed
 * off, the copies of requests in flight run in parallel with each other and
 * with the device thread's parsing of the next ones, as in QEMU's thread pool.
 *
 * Each slot (one request in flight) owns IOVS_PER_SLOT iovecs in native
 * memory, which must stay put until the request completes. There are as
 * many slots as the queue has entries, so a slot is always free for a
 * request the ring hands out.
 */
import { IOSQE_ASYNC } from '../../../../generated/io_uring.js';
import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE, SIZEOF_IOVEC } from '../../../../generated/libc.js';
import { IoUring } from '../../../../sys/io_uring.js';
import * as libc from '../../../../sys/libc.js';
import type { ChainSpan } from '../../../../virtio/queue/index.js';
import { drainEventFd, newEventFd } from '../../../event_manager.js';
import { HostMap, IoVecArray } from '../iovec.js';

export type AsyncOp = 'read' | 'write' | 'fsync';

export class AsyncIo {
  private readonly ring: IoUring;
  readonly eventFd: number;
  private readonly slab: bigint;
  private readonly slabBytes: number;
  private readonly iovs: IoVecArray[];
  private readonly slabAddr: number;
  private readonly free: number[];
  private queued = 0;
  private inFlightCount = 0;
  private closed = false;

  /**
   * `slots`: most requests in flight (the queue size); `iovsPerSlot`: most
   * iovecs one request needs (its data segments, each possibly split at a
   * memory-region boundary).
   */
  constructor(readonly slots: number, readonly iovsPerSlot: number) {
    this.ring = IoUring.create(slots);
    try {
      this.eventFd = newEventFd();
    } catch (e) {
      this.ring.close();
      throw e;
    }
    this.ring.registerEventFd(this.eventFd);
    this.slabBytes = slots * iovsPerSlot * SIZEOF_IOVEC;
    this.slab = libc.mmap(this.slabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    this.slabAddr = Number(this.slab);
    const bytes = new Uint8Array(libc.view(this.slab, this.slabBytes));
    const per = iovsPerSlot * SIZEOF_IOVEC;
    this.iovs = Array.from({ length: slots }, (_, i) => new IoVecArray(iovsPerSlot, bytes.subarray(i * per, (i + 1) * per)));
    this.free = Array.from({ length: slots }, (_, i) => slots - 1 - i);
  }

  /** Requests handed to the kernel or queued for it, not yet reaped. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /**
   * Queues a read (file → guest) or write (guest → file) of `span` at file
   * offset `offset`: the slot that identifies it in completions, or -1 when
   * no slot is free or the buffers are not in host-mapped memory (the
   * caller then does the request synchronously).
   */
  queueRw(op: 'read' | 'write', fd: number, map: HostMap, span: ChainSpan, offset: number): number {
    const slot = this.free.pop();
    if (slot === undefined) return -1;
    const iov = this.iovs[slot]!;
    const n = map.appendSpan(iov, span, this.iovsPerSlot);
    const addr = this.slabAddr + slot * this.iovsPerSlot * SIZEOF_IOVEC;
    const ok = n >= 0 && (op === 'read'
      ? this.ring.prepReadv(fd, addr, n, offset, slot, IOSQE_ASYNC)
      : this.ring.prepWritev(fd, addr, n, offset, slot, IOSQE_ASYNC));
    if (!ok) {
      this.free.push(slot);
      return -1;
    }
    this.queued++;
    this.inFlightCount++;
    return slot;
  }

  /** Queues an fsync of `fd` (FLUSH under the Writeback cache type); the slot, or -1. */
  queueFsync(fd: number): number {
    const slot = this.free.pop();
    if (slot === undefined) return -1;
    if (!this.ring.prepFsync(fd, slot, IOSQE_ASYNC)) {
      this.free.push(slot);
      return -1;
    }
    this.queued++;
    this.inFlightCount++;
    return slot;
  }

  /** Hands everything queued to the kernel (one io_uring_enter). */
  submit(): void {
    if (this.queued === 0) return;
    this.queued -= this.ring.submit();
  }

  /**
   * Calls `done(slot, res)` for each completed request (res: bytes moved, or
   * -errno) and frees its slot. Clears the eventfd first, so a completion
   * that lands meanwhile signals it again.
   */
  reap(done: (slot: number, res: number) => void): number {
    drainEventFd(this.eventFd);
    return this.ring.reap((slot, res) => {
      this.inFlightCount--;
      this.free.push(slot);
      done(slot, res);
    });
  }

  /**
   * Waits for every request in flight and drops the results: after a device
   * reset nothing may be written into guest memory any more, and the kernel
   * must be done with the guest's buffers before anyone reuses them.
   */
  drain(): void {
    this.submit();
    while (this.inFlightCount > 0) {
      this.ring.wait(this.inFlightCount);
      this.reap(() => {});
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.drain();
    this.ring.close();
    libc.close(this.eventFd);
    libc.munmap(this.slab, this.slabBytes);
  }
}
