/**
 * The device side of a split virtqueue (Virtio 1.2 §2.7).
 *
 * Layout in guest memory (all little-endian):
 *
 *   descriptor table  16 * size bytes, align 16   struct virtq_desc[size]
 *   available ring    6 + 2 * size,    align 2    flags, idx, ring[size], used_event
 *   used ring         6 + 8 * size,    align 4    flags, idx, {id, len}[size], avail_event
 *
 * The trailing used_event/avail_event words are always required to be in RAM
 * (the layout table of §2.7 counts them), whether or not EVENT_IDX is used.
 *
 * ## Memory ordering
 *
 * The driver runs on other CPUs (vCPU threads) while the device looks at the
 * rings, so the order of our loads and stores matters. The protocol needs:
 *
 *  1. popAvail: load avail.idx *before* loading the ring entries and
 *     descriptors it publishes (an acquire; pairs with the driver's write
 *     barrier before it bumps avail.idx, §2.7.13.3.1).
 *  2. addUsed: store the used element (and all data written into the
 *     buffers) *before* storing used.idx (a release, §2.7.8.1: "MUST set len
 *     prior to updating the used idx").
 *  3. needsNotification: the store of used.idx must be globally visible
 *     *before* we load used_event / avail.flags, otherwise we and the driver
 *     can each miss the other's update and the guest never gets its interrupt.
 *     This is store→load ordering: it needs a full barrier.
 *  4. enableNotification: the store of avail_event (or of used.flags = 0)
 *     must be visible *before* we re-load avail.idx to look for buffers
 *     added meanwhile: again store→load, again a full barrier.
 *
 * JavaScript offers no fence for plain (non-shared) ArrayBuffers, and guest
 * RAM is a plain external ArrayBuffer over an mmap. What we rely on:
 *  - V8 keeps typed-array/DataView loads and stores to the same backing store
 *    in program order (they are effectful operations on one effect chain);
 *  - on x86-64 (TSO; the only architecture sparkler runs on) the CPU never
 *    reorders a load with an older load or a store with an older store, so 1
 *    and 2 need nothing beyond program order;
 *  - for 3 and 4 `fullFence()` performs a sequentially consistent Atomics
 *    operation on a private SharedArrayBuffer, which V8 emits as a LOCK-
 *    prefixed instruction on x86-64 (XCHG): a full barrier that orders *all*
 *    earlier stores before all later loads, including plain guest-RAM ones
 *    (and a full `dmb ish` on arm64, where it would also be used for 1 and 2:
 *    see `ACQ_REL_NEEDS_FENCE`).
 */
import type { GuestMemory } from '../../memory/guest_memory.js';
import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTQ_AVAIL_ALIGN,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_AVAIL_OFF_FLAGS,
  VIRTQ_AVAIL_OFF_IDX,
  VIRTQ_AVAIL_OFF_RING,
  VIRTQ_DESC_ALIGN,
  VIRTQ_MAX_SIZE,
  VIRTQ_USED_ALIGN,
  VIRTQ_USED_ELEM_SIZE,
  VIRTQ_USED_F_NO_NOTIFY,
  VIRTQ_USED_OFF_FLAGS,
  VIRTQ_USED_OFF_IDX,
  VIRTQ_USED_OFF_RING,
  hasFeature,
  virtqAvailRingSize,
  virtqDescTableSize,
  virtqUsedRingSize,
} from '../../generated/virtio.js';
import { DescriptorChain, parseDescriptorChain } from './descriptor_chain.js';
import { asQueueError, QueueError } from './errors.js';
import { GuestView, rangeInRam } from './guest_view.js';

const fenceCell = new Int32Array(new SharedArrayBuffer(4));

/** A full memory barrier (store→load ordering included): see the module comment. */
export function fullFence(): void {
  Atomics.exchange(fenceCell, 0, 0);
}

/** Acquire/release need explicit barriers only on weakly ordered CPUs. */
const ACQ_REL_NEEDS_FENCE = process.arch !== 'x64' && process.arch !== 'ia32';

/** Read barrier (acquire side of 1. above): program order suffices on x86-64. */
function readFence(): void {
  if (ACQ_REL_NEEDS_FENCE) fullFence();
}

/** Write barrier (release side of 2. above): program order suffices on x86-64. */
function writeFence(): void {
  if (ACQ_REL_NEEDS_FENCE) fullFence();
}

/**
 * vring_need_event (Linux include/uapi/linux/virtio_ring.h, reproduced in the
 * spec's virtio_queue.h): true when moving an index from `oldIdx` to `newIdx`
 * stepped over `eventIdx`, i.e. eventIdx ∈ [oldIdx, newIdx) modulo 2^16.
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

/** Everything needed to save and restore a queue (snapshots). */
export interface QueueState {
  maxSize: number;
  size: number;
  ready: boolean;
  descTable: number;
  availRing: number;
  usedRing: number;
  nextAvail: number;
  nextUsed: number;
  eventIdxEnabled: boolean;
  indirectEnabled: boolean;
  signalledUsed: number | null;
}

interface RingViews {
  mem: GuestMemory;
  desc: GuestView;
  avail: GuestView;
  used: GuestView;
}

const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

export class Queue {
  /** Largest size the device offers (QueueNumMax); a power of two ≤ 32768. */
  readonly maxSize: number;
  /** QueueReady: the driver finished configuring this queue. */
  ready = false;
  /** VIRTIO_F_RING_EVENT_IDX was negotiated: use used_event/avail_event (§2.7.7, §2.7.10). */
  eventIdxEnabled = false;
  /**
   * VIRTIO_F_RING_INDIRECT_DESC was negotiated. Defaults to true (lenient)
   * so a device that offers the feature works before applyFeatures is called;
   * applyFeatures() sets it from the negotiated features.
   */
  indirectEnabled = true;
  /**
   * used.idx at the last needsNotification() check (vhost's `signalled_used`):
   * EVENT_IDX asks "did used.idx step over used_event since we last looked?".
   * undefined = never checked: the next check notifies unconditionally.
   */
  signalledUsed: number | undefined = undefined;

  private _size: number;
  private _descTable = 0;
  private _availRing = 0;
  private _usedRing = 0;
  private _nextAvail = 0;
  private _nextUsed = 0;
  /** Last avail.idx read from the guest (vhost's avail_idx): popAvail re-reads the ring only when it has consumed up to it. */
  private availIdxShadow = 0;
  private rings: RingViews | undefined;

  constructor(maxSize = 256) {
    if (!isPowerOfTwo(maxSize) || maxSize > VIRTQ_MAX_SIZE) {
      throw new RangeError(`virtqueue max size ${maxSize} is not a power of two ≤ ${VIRTQ_MAX_SIZE}`);
    }
    this.maxSize = maxSize;
    this._size = maxSize;
  }

  /** QueueNum: number of descriptors, a power of two ≤ maxSize (checked by validate). */
  get size(): number { return this._size; }
  set size(v: number) { this._size = v; this.rings = undefined; }
  /** Guest physical address of the descriptor table (QueueDesc). */
  get descTable(): number { return this._descTable; }
  set descTable(v: number) { this._descTable = v; this.rings = undefined; }
  /** Guest physical address of the available ring (QueueDriver). */
  get availRing(): number { return this._availRing; }
  set availRing(v: number) { this._availRing = v; this.rings = undefined; }
  /** Guest physical address of the used ring (QueueDevice). */
  get usedRing(): number { return this._usedRing; }
  set usedRing(v: number) { this._usedRing = v; this.rings = undefined; }

  /** Free-running (mod 2^16) index of the next avail ring entry the device will consume. */
  get nextAvail(): number { return this._nextAvail; }
  set nextAvail(v: number) { this._nextAvail = v & 0xffff; this.availIdxShadow = this._nextAvail; }
  /** Free-running (mod 2^16) index of the next used ring entry the device will fill; equals used.idx. */
  get nextUsed(): number { return this._nextUsed; }
  set nextUsed(v: number) { this._nextUsed = v & 0xffff; }

  /** Back to the state after device reset (§2.4): not ready, size = maxSize, addresses and indices 0. */
  reset(): void {
    this.ready = false;
    this.eventIdxEnabled = false;
    this.indirectEnabled = true;
    this.signalledUsed = undefined;
    this._size = this.maxSize;
    this._descTable = this._availRing = this._usedRing = 0;
    this._nextAvail = this._nextUsed = this.availIdxShadow = 0;
    this.rings = undefined;
  }

  /** Sets eventIdxEnabled/indirectEnabled from the negotiated (driver-acked) feature bits. */
  applyFeatures(features: bigint): void {
    this.eventIdxEnabled = hasFeature(features, VIRTIO_F_RING_EVENT_IDX);
    this.indirectEnabled = hasFeature(features, VIRTIO_F_RING_INDIRECT_DESC);
  }

  /**
   * Checks the configuration the driver wrote: size a power of two ≤ maxSize,
   * each part aligned (desc 16, avail 2, used 4, §2.7.1) and wholly in guest
   * RAM. Throws QueueError('config') naming the problem. Call it when the
   * driver sets DRIVER_OK (or QueueReady); popAvail/addUsed also call it
   * lazily whenever the configuration changed since the last check.
   */
  validate(mem: GuestMemory): void {
    const size = this._size;
    if (!isPowerOfTwo(size) || size > this.maxSize) {
      throw new QueueError('config', `queue size ${size} is not a power of two in [1, ${this.maxSize}]`);
    }
    const part = (name: string, addr: number, align: number, len: number): void => {
      if (!Number.isSafeInteger(addr) || addr < 0) {
        throw new QueueError('config', `${name} address ${addr} is not a valid guest address`);
      }
      if (addr % align !== 0) {
        throw new QueueError('config', `${name} address 0x${addr.toString(16)} is not ${align}-byte aligned`);
      }
      if (!rangeInRam(mem, addr, len)) {
        throw new QueueError('config', `${name} [0x${addr.toString(16)}, +0x${len.toString(16)}) is not in guest RAM`);
      }
    };
    part('descriptor table', this._descTable, VIRTQ_DESC_ALIGN, virtqDescTableSize(size));
    part('available ring', this._availRing, VIRTQ_AVAIL_ALIGN, virtqAvailRingSize(size));
    part('used ring', this._usedRing, VIRTQ_USED_ALIGN, virtqUsedRingSize(size));
  }

  /** validate() as a boolean. */
  isValid(mem: GuestMemory): boolean {
    try {
      this.validate(mem);
      return true;
    } catch (e) {
      if (e instanceof QueueError) return false;
      throw e;
    }
  }

  /** Views of the three parts, (re)validated when the configuration or the memory changed. */
  private views(mem: GuestMemory): RingViews {
    const r = this.rings;
    if (r && r.mem === mem) return r;
    if (!this.ready) throw new QueueError('not-ready', 'queue is not ready');
    this.validate(mem);
    const size = this._size;
    this.rings = {
      mem,
      desc: new GuestView(mem, this._descTable, virtqDescTableSize(size)),
      avail: new GuestView(mem, this._availRing, virtqAvailRingSize(size)),
      used: new GuestView(mem, this._usedRing, virtqUsedRingSize(size)),
    };
    return this.rings;
  }

  /** avail.idx as the driver last published it. */
  availIdx(mem: GuestMemory): number {
    return guard(() => this.views(mem).avail.u16(VIRTQ_AVAIL_OFF_IDX));
  }

  /** used.idx as last published by the device. */
  usedIdx(mem: GuestMemory): number {
    return guard(() => this.views(mem).used.u16(VIRTQ_USED_OFF_IDX));
  }

  /** Number of chains the driver has made available that the device has not popped yet. */
  pending(mem: GuestMemory): number {
    try {
      return this.checkedPending(this.views(mem).avail.u16(VIRTQ_AVAIL_OFF_IDX));
    } catch (e) {
      throw asQueueError(e);
    }
  }

  /** The distance from nextAvail to a freshly read avail.idx, rejecting jumps over the ring's capacity. */
  private checkedPending(availIdx: number): number {
    const pending = (availIdx - this._nextAvail) & 0xffff;
    if (pending > this._size) {
      throw new QueueError(
        'avail-idx',
        `avail idx ${availIdx} is ${pending} entries ahead of the device's next_avail ${this._nextAvail}, more than queue size ${this._size}`,
      );
    }
    return pending;
  }

  /**
   * Takes the next available descriptor chain, parsed and validated, or
   * undefined when the ring is empty (or the queue not ready).
   *
   * avail.idx is read first and only when the device has caught up with the
   * last value it saw; then (see the ordering notes) the ring entry and the
   * descriptors. An avail.idx more than `size` ahead of next_avail is a
   * guest error: QueueError('avail-idx'), the device should go to
   * DEVICE_NEEDS_RESET.
   *
   * A malformed chain throws QueueError with `head` set, *after* the avail
   * entry has been consumed: the device may return it with addUsed(head, 0)
   * and carry on, or give up on the queue.
   *
   * With `into`, the chain is parsed into that object, reused, instead of a
   * new one: nothing is allocated, and the previous chain in it is gone.
   */
  popAvail(mem: GuestMemory, into?: DescriptorChain): DescriptorChain | undefined {
    if (!this.ready) return undefined;
    try {
      const v = this.views(mem);
      if (this._nextAvail === this.availIdxShadow) {
        const idx = v.avail.u16(VIRTQ_AVAIL_OFF_IDX);
        if (this.checkedPending(idx) === 0) return undefined;
        this.availIdxShadow = idx;
        readFence(); // ring entries and descriptors only after avail.idx
      }
      const slot = this._nextAvail & (this._size - 1);
      const head = v.avail.u16(VIRTQ_AVAIL_OFF_RING + 2 * slot);
      this._nextAvail = (this._nextAvail + 1) & 0xffff;
      return parseDescriptorChain(mem, v.desc, this._size, head, this.indirectEnabled, into);
    } catch (e) {
      throw asQueueError(e);
    }
  }

  /**
   * Puts the last popped chain back (next_avail - 1), e.g. when a device
   * popped a receive buffer it turned out not to be able to fill yet.
   */
  undoPop(): void {
    this._nextAvail = (this._nextAvail - 1) & 0xffff;
  }

  /**
   * Returns a chain to the driver: writes used.ring[next_used % size] =
   * {id: head, len} then publishes used.idx = next_used + 1. `len` is the
   * number of bytes the device wrote into the chain's writable buffers
   * (§2.7.8). All writes into the buffers must be done before this call.
   * Does not notify: see needsNotification().
   */
  addUsed(mem: GuestMemory, head: number, len: number): void {
    if (!Number.isInteger(head) || head < 0 || head >= this._size) {
      throw new QueueError('device', `addUsed: head ${head} is not a descriptor index (queue size ${this._size})`, head, head);
    }
    if (!Number.isInteger(len) || len < 0 || len > 0xffffffff) {
      throw new QueueError('device', `addUsed: length ${len} for head ${head} is not a u32`, head, head);
    }
    try {
      const v = this.views(mem);
      const off = VIRTQ_USED_OFF_RING + VIRTQ_USED_ELEM_SIZE * (this._nextUsed & (this._size - 1));
      v.used.setU32(off, head);
      v.used.setU32(off + 4, len);
      writeFence(); // element (and buffer contents) before used.idx
      this._nextUsed = (this._nextUsed + 1) & 0xffff;
      v.used.setU16(VIRTQ_USED_OFF_IDX, this._nextUsed);
    } catch (e) {
      throw asQueueError(e);
    }
  }

  /**
   * Should the device send a used-buffer notification (interrupt) now, after
   * adding used entries? §2.7.7.2:
   *  - with EVENT_IDX: yes when used.idx stepped over used_event since the
   *    last check (vring_need_event(used_event, used.idx, signalled_used));
   *    the flags word is ignored. The first check always says yes.
   *  - without: yes unless avail.flags has VIRTQ_AVAIL_F_NO_INTERRUPT.
   * Issues the full barrier between publishing used.idx and reading the
   * driver's suppression fields.
   */
  needsNotification(mem: GuestMemory): boolean {
    try {
      const v = this.views(mem);
      fullFence(); // used.idx store before the used_event / flags load
      if (this.eventIdxEnabled) {
        const usedEvent = v.avail.u16(VIRTQ_AVAIL_OFF_RING + 2 * this._size);
        const newIdx = this._nextUsed;
        const old = this.signalledUsed;
        this.signalledUsed = newIdx;
        if (old === undefined) return true;
        return vringNeedEvent(usedEvent, newIdx, old);
      }
      return (v.avail.u16(VIRTQ_AVAIL_OFF_FLAGS) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    } catch (e) {
      throw asQueueError(e);
    }
  }

  /**
   * Asks the driver for available-buffer notifications again (§2.7.10): with
   * EVENT_IDX writes avail_event = next_avail ("kick me when you publish the
   * entry I'll read next"), else clears VIRTQ_USED_F_NO_NOTIFY. Then, after
   * a full barrier, re-reads avail.idx and returns true when buffers are
   * already waiting: the driver may have added them before it could see the
   * change, without kicking, so the caller must process them now (this is
   * the "re-check after enabling" half of the notification pattern).
   */
  enableNotification(mem: GuestMemory): boolean {
    try {
      const v = this.views(mem);
      if (this.eventIdxEnabled) {
        v.used.setU16(VIRTQ_USED_OFF_RING + VIRTQ_USED_ELEM_SIZE * this._size, this._nextAvail);
      } else {
        v.used.setU16(VIRTQ_USED_OFF_FLAGS, 0);
      }
      fullFence(); // avail_event / flags store before the avail.idx load
      const idx = v.avail.u16(VIRTQ_AVAIL_OFF_IDX);
      const pending = this.checkedPending(idx);
      this.availIdxShadow = idx;
      readFence(); // entries published up to idx may be read next
      return pending > 0;
    } catch (e) {
      throw asQueueError(e);
    }
  }

  /**
   * Tells the driver it need not kick while the device is busy draining the
   * ring. Without EVENT_IDX sets VIRTQ_USED_F_NO_NOTIFY. With EVENT_IDX it
   * does nothing: the device MUST keep used.flags at 0 (§2.7.10.2), and an
   * avail_event that is not advanced already suppresses every kick after the
   * first one past it.
   */
  disableNotification(mem: GuestMemory): void {
    if (this.eventIdxEnabled) return;
    guard(() => this.views(mem).used.setU16(VIRTQ_USED_OFF_FLAGS, VIRTQ_USED_F_NO_NOTIFY));
  }

  /**
   * popAvail, and when the ring is empty, enable notifications and look once
   * more (returning what arrived meanwhile). When this returns undefined,
   * notifications are enabled and the ring was seen empty after that: the
   * device may sleep until the next kick without missing anything.
   */
  popAvailOrEnableNotification(mem: GuestMemory, into?: DescriptorChain): DescriptorChain | undefined {
    const chain = this.popAvail(mem, into);
    if (chain || !this.ready) return chain;
    return this.enableNotification(mem) ? this.popAvail(mem, into) : undefined;
  }

  /**
   * The whole notification pattern for a kick: with notifications disabled,
   * pops every available chain and hands it to `handle`; once the ring is
   * empty, re-enables notifications and repeats if buffers arrived meanwhile.
   * Returns the number of chains handled. The caller adds used entries in
   * `handle` (or later) and then checks needsNotification().
   */
  drainAvail(mem: GuestMemory, handle: (chain: DescriptorChain) => void): number {
    if (!this.ready) return 0;
    let n = 0;
    do {
      this.disableNotification(mem);
      for (let c = this.popAvail(mem); c; c = this.popAvail(mem)) {
        handle(c);
        n++;
      }
    } while (this.enableNotification(mem));
    return n;
  }

  /**
   * Both sides' indices in one line, for diagnosing a stalled queue: the
   * device's (next_avail, next_used, signalled_used) and what guest memory
   * holds (avail.idx, avail.flags, used_event, used.idx, avail_event). A
   * lost kick shows as avail.idx ahead of next_avail, a suppressed
   * interrupt as used.idx past what used_event asked to be told about.
   */
  describe(mem: GuestMemory): string {
    if (!this.ready) return 'not ready';
    try {
      const { avail, used } = this.views(mem);
      const size = this._size;
      return `next_avail=${this._nextAvail} avail.idx=${avail.u16(VIRTQ_AVAIL_OFF_IDX)} avail.flags=${avail.u16(VIRTQ_AVAIL_OFF_FLAGS)}` +
        ` avail_event=${used.u16(VIRTQ_USED_OFF_RING + VIRTQ_USED_ELEM_SIZE * size)} next_used=${this._nextUsed}` +
        ` used.idx=${used.u16(VIRTQ_USED_OFF_IDX)} used_event=${avail.u16(VIRTQ_AVAIL_OFF_RING + 2 * size)} signalled_used=${this.signalledUsed ?? '-'}`;
    } catch (e) {
      return (e as Error).message;
    }
  }

  saveState(): QueueState {
    return {
      maxSize: this.maxSize,
      size: this._size,
      ready: this.ready,
      descTable: this._descTable,
      availRing: this._availRing,
      usedRing: this._usedRing,
      nextAvail: this._nextAvail,
      nextUsed: this._nextUsed,
      eventIdxEnabled: this.eventIdxEnabled,
      indirectEnabled: this.indirectEnabled,
      signalledUsed: this.signalledUsed ?? null,
    };
  }

  static restore(s: QueueState): Queue {
    const q = new Queue(s.maxSize);
    q.size = s.size;
    q.ready = s.ready;
    q.descTable = s.descTable;
    q.availRing = s.availRing;
    q.usedRing = s.usedRing;
    q.nextAvail = s.nextAvail;
    q.nextUsed = s.nextUsed;
    q.eventIdxEnabled = s.eventIdxEnabled;
    q.indirectEnabled = s.indirectEnabled;
    q.signalledUsed = s.signalledUsed ?? undefined;
    return q;
  }
}

/** Runs `fn` with asQueueError applied to what it throws (the paths that are not hot; hot ones catch inline). */
function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw asQueueError(e);
  }
}

