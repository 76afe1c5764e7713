/**
 * The virtio-net device backend (virtio 1.2 §5.1), Firecracker's Net device
 * (devices/virtio/net/device.rs) over a host TAP: an rx queue (0) and a tx
 * queue (1) of 256, Firecracker's feature set (checksum and TSO/UFO
 * offloads both ways, mergeable receive buffers, EVENT_IDX, plus MAC and
 * MTU when configured), its config space, rate limiters and metrics.
 *
 * Every frame on the TAP carries a 12-byte struct virtio_net_hdr_v1, the
 * same header the guest puts before (tx) and finds before (rx) each frame,
 * so frames move between the TAP and guest RAM untouched and uncopied:
 *
 *  - TX (processQueue(1)): each chain (header + frame, device-readable) is
 *    written to the TAP with one writev straight from guest RAM, then
 *    returned with used length 0. Malformed chains (device-writable
 *    descriptors, shorter than the header, longer than MAX_BUFFER_SIZE,
 *    broken descriptors) are counted and returned unsent.
 *  - RX (TAP readable, or processQueue(0) when the guest adds buffers): the
 *    device holds receive chains popped from the rx queue (RxBuffers) and
 *    reads each frame with one readv straight into them: across several
 *    chains with MRG_RXBUF (num_buffers in the header says how many; all of
 *    a frame's used entries are published with one used.idx update, since
 *    a driver that saw only some of them would drop the frame), into one
 *    chain without. It reads only when the buffers can hold any frame
 *    (MAX_BUFFER_SIZE bytes with MRG_RXBUF, as Firecracker; one chain of at
 *    least the minimum receive buffer size without), so a frame is never
 *    dropped for want of buffers: when the guest has none, the TAP fd leaves
 *    the epoll loop (frames wait in the kernel's queue; nothing spins) and
 *    comes back when processQueue(0) finds buffers again. A frame larger
 *    than the buffers (only possible beyond MAX_BUFFER_SIZE, or beyond a
 *    single chain without MRG_RXBUF) is dropped and counted in rx_fails.
 *    The guest is interrupted (if it asks to be) once per batch of frames.
 *
 * RX is the per-buffer path (Linux posts page-sized mergeable buffers, so
 * a 64 KiB GSO frame fills 16 of them), and in the JIT's early tiers every
 * call and allocation there costs: the usual buffer, a chain of one
 * device-writable descriptor, is taken straight off the ring through
 * typed-array views of it (RxRing; holdRxBuffers, which takes only what
 * the queue's own validation would accept, leaving everything else to
 * it), held in RxBuffers' typed arrays, and frames are published straight
 * into the used ring; nothing is allocated per buffer or per frame.
 *
 * Rate limiters (Firecracker's semantics): tx takes one op and the chain's
 * bytes before sending, and a refused chain stays on the ring; rx reads the
 * frame first and then takes one op and its bytes, and a refused frame waits
 * in the guest's buffers, unpublished, until the limiter allows it. While a
 * limiter blocks, retryInMs() says when to call processQueue again.
 *
 * The TAP fd is registered level-triggered in the device thread's epoll
 * loop while the device is willing to read (buffers held, not throttled, no
 * read error); each readable event reads at most RX_BATCH frames, so one
 * busy interface cannot starve the other devices of the thread.
 */
import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_ID_NET,
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_F_GUEST_TSO4,
  VIRTIO_NET_F_GUEST_TSO6,
  VIRTIO_NET_F_GUEST_UFO,
  VIRTIO_NET_F_HOST_TSO4,
  VIRTIO_NET_F_HOST_TSO6,
  VIRTIO_NET_F_HOST_UFO,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_F_MTU,
  VIRTIO_NET_HDR_V1_SIZE,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_USED_ELEM_SIZE,
  VIRTQ_USED_OFF_IDX,
  VIRTQ_USED_OFF_RING,
  featureBit,
  hasFeature,
  virtqUsedRingSize,
} from '../../../../generated/virtio.js';
import { EAGAIN, EBADFD, EPOLLIN, IOV_MAX } from '../../../../generated/libc.js';
import { logger } from '../../../../logger/logger.js';
import type { GuestMemory } from '../../../../memory/guest_memory.js';
import * as libc from '../../../../sys/libc.js';
import { asQueueError, DescriptorChain, fullFence, GuestView, QueueError, rangeInRam, type Queue } from '../../../../virtio/queue/index.js';
import { RateLimiter, type BucketUpdate } from '../../../rate_limiter/index.js';
import { popChain, REJECTED, retryDelayMs, type ActivateContext, type BackendEvents, type VirtioBackend, takeQueues } from '../backend.js';
import { fsWritev, HostMap, hostScratch, IoVecArray } from '../iovec.js';
import { createNetMetrics, recordTapWriteLatency, type NetMetrics } from './metrics.js';
import { RxBuffers, type RxFrame } from './rx_buffers.js';
import { RxRing } from './rx_ring.js';
import { Tap, tapOffloadFlags } from './tap.js';

/** Two queues (rx, tx) of FIRECRACKER_MAX_QUEUE_SIZE, as Firecracker's NET_QUEUE_SIZES. */
export const NET_QUEUE_SIZES: readonly number[] = [256, 256];
export const RX_INDEX = 0;
export const TX_INDEX = 1;
/** Firecracker's MAX_BUFFER_SIZE: the largest frame with its vnet header (64 KiB + Ethernet header + vnet header). */
export const MAX_BUFFER_SIZE = 65562;
/** struct virtio_net_hdr_v1. */
export const VNET_HDR_LEN = VIRTIO_NET_HDR_V1_SIZE;
/** struct virtio_net_config as Firecracker exposes it: mac[6], status (le16), max_virtqueue_pairs (le16), mtu (le16). */
export const NET_CONFIG_SIZE = 12;
/** Smallest receive chain without MRG_RXBUF when the guest takes no GSO (spec §5.1.6.3.1: 1526 bytes). */
export const MIN_RX_BUFFER_SMALL = 1526;
/** Most frames one TAP event (or one processQueue(0)) reads before yielding to the epoll loop. */
export const RX_BATCH = 128;
/** First and longest wait before reading the TAP again after a read error. */
const RX_ERROR_BACKOFF_MS = 100;
const RX_ERROR_BACKOFF_MAX_MS = 1600;

export interface NetBackendOptions {
  /** The interface id (iface_id), for logs. */
  id: string;
  /** Host TAP interface to open (host_dev_name); the backend owns the fd and close() closes it. */
  tapName?: string;
  /** Or an fd already attached to a TAP (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR); the caller keeps owning it. */
  tapFd?: number;
  /** "xx:xx:xx:xx:xx:xx": offered to the guest with VIRTIO_NET_F_MAC; also the expected source MAC (tx_spoofed_mac_count). */
  guestMac?: string;
  /** MTU to advertise with VIRTIO_NET_F_MTU (68..65535). */
  mtu?: number;
  /** Default: no limit. */
  rxRateLimiter?: RateLimiter;
  /** Default: no limit. */
  txRateLimiter?: RateLimiter;
}

interface ActiveState {
  mem: GuestMemory;
  rxq: Queue;
  txq: Queue;
  interrupt: () => void;
  events: BackendEvents | undefined;
  mrgRxbuf: boolean;
  /** Smallest receive chain accepted. */
  minRxBuffer: number;
  hostMap: HostMap | undefined;
  rx: RxBuffers;
  /** The rx queue's used ring, made at the first frame (the queue has validated its rings by then). */
  rxUsed: GuestView | undefined;
  /** The rx queue's rings for holdRxBuffers, made once the queue is valid; null when they cannot be had. */
  rxRing: RxRing | null | undefined;
  /** avail.idx as holdRxBuffers last read it. */
  rxAvailIdx: number;
}

/** fillRxBuffers: the held buffers can take a frame. */
const FILL_READY = 1;
/** fillRxBuffers: it returned unusable chains to the used ring. */
const FILL_RETURNED = 2;
/** holdRxBuffers: the held buffers can take any frame. */
const HOLD_ENOUGH = 0;
/** holdRxBuffers: the next chain is left to popChain (none published, or not a plain single buffer). */
const HOLD_GENERAL = 1;
/** holdRxBuffers: the held buffers use every iovec a read may have (the next chain stays on the ring). */
const HOLD_IOV_FULL = 2;
/** Descriptor address high words from here on are beyond 2^53: never RAM. */
const ADDR_HI_LIMIT = 2 ** 21;

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** "xx:xx:xx:xx:xx:xx" as 6 bytes. */
export function parseMac(mac: string): Uint8Array {
  if (!MAC_RE.test(mac)) throw new RangeError(`invalid MAC address ${JSON.stringify(mac)} (expected xx:xx:xx:xx:xx:xx in hex)`);
  return Uint8Array.from(mac.split(':').map((b) => parseInt(b, 16)));
}

/** A TAP syscall error for logs; EBADFD means the interface was deleted under the fd. */
function tapErrorText(op: string, errno: number): string {
  const text = new libc.SysError(op, errno).message;
  return errno === EBADFD ? `${text}: the TAP interface no longer exists on the host` : text;
}

const formatMac = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');

export class NetBackend implements VirtioBackend {
  readonly deviceType = VIRTIO_ID_NET;
  readonly queueMaxSizes = NET_QUEUE_SIZES;
  readonly availFeatures: bigint;
  readonly metrics: NetMetrics = createNetMetrics();
  readonly id: string;
  readonly tap: Tap;
  readonly guestMac: string | undefined;
  readonly mtu: number | undefined;
  readonly rxRateLimiter: RateLimiter;
  readonly txRateLimiter: RateLimiter;

  private readonly macBytes: Uint8Array | undefined;
  private readonly txIov = new IoVecArray(IOV_MAX);
  /** Every TX chain is parsed into this one object (a frame is written before the next pop). */
  private readonly txChain = new DescriptorChain();
  private active: ActiveState | undefined;
  /** The TAP fd is in the epoll loop. */
  private tapArmed = false;
  /**
   * A received frame the rx limiter refused: in guest buffers, not yet
   * published (RxBuffers' reused frame: nothing else is taken until it is).
   */
  private rxDeferred: RxFrame | undefined;
  private rxThrottled = false;
  private txThrottled = false;
  /** After a TAP read error: no reads before this time (performance.now()). */
  private rxErrorUntil: number | undefined;
  private rxErrorBackoff = RX_ERROR_BACKOFF_MS;

  constructor(opts: NetBackendOptions) {
    if ((opts.tapName === undefined) === (opts.tapFd === undefined)) {
      throw new TypeError(`net ${opts.id}: give exactly one of tapName and tapFd`);
    }
    if (opts.mtu !== undefined && (!Number.isInteger(opts.mtu) || opts.mtu < 68 || opts.mtu > 65535)) {
      throw new RangeError(`net ${opts.id}: MTU ${opts.mtu} is not in [68, 65535]`);
    }
    this.macBytes = opts.guestMac === undefined ? undefined : parseMac(opts.guestMac);
    this.id = opts.id;
    this.guestMac = this.macBytes ? formatMac(this.macBytes) : undefined;
    this.mtu = opts.mtu;
    this.rxRateLimiter = opts.rxRateLimiter ?? new RateLimiter();
    this.txRateLimiter = opts.txRateLimiter ?? new RateLimiter();

    let f = featureBit(VIRTIO_NET_F_GUEST_CSUM)
      | featureBit(VIRTIO_NET_F_CSUM)
      | featureBit(VIRTIO_NET_F_GUEST_TSO4)
      | featureBit(VIRTIO_NET_F_GUEST_TSO6)
      | featureBit(VIRTIO_NET_F_GUEST_UFO)
      | featureBit(VIRTIO_NET_F_HOST_TSO4)
      | featureBit(VIRTIO_NET_F_HOST_TSO6)
      | featureBit(VIRTIO_NET_F_HOST_UFO)
      | featureBit(VIRTIO_NET_F_MRG_RXBUF)
      | featureBit(VIRTIO_F_RING_EVENT_IDX);
    if (this.macBytes) f |= featureBit(VIRTIO_NET_F_MAC);
    if (opts.mtu !== undefined) f |= featureBit(VIRTIO_NET_F_MTU);
    this.availFeatures = f;

    this.tap = opts.tapName !== undefined ? Tap.open(opts.tapName) : Tap.fromFd(opts.tapFd!);
  }

  get isActivated(): boolean {
    return this.active !== undefined;
  }

  /** The TAP fd is registered in the epoll loop (false while the device waits for buffers, tokens, or after a read error). */
  get tapRegistered(): boolean {
    return this.tapArmed;
  }

  /** Receive chains held (popped, not yet used). */
  get heldRxChains(): number {
    return this.active?.rx.length ?? 0;
  }

  /** A received frame waits for the rx rate limiter. */
  get hasDeferredRxFrame(): boolean {
    return this.rxDeferred !== undefined;
  }

  describeState(): string {
    return `tap_polled=${this.tapRegistered} held_rx_chains=${this.heldRxChains} rx_deferred=${this.hasDeferredRxFrame}`;
  }

  /** struct virtio_net_config as Firecracker's ConfigSpace: mac, status 0, max_virtqueue_pairs 0, mtu. */
  configSpace(): Uint8Array {
    const out = new Uint8Array(NET_CONFIG_SIZE);
    if (this.macBytes) out.set(this.macBytes, 0);
    if (this.mtu !== undefined) new DataView(out.buffer).setUint16(10, this.mtu, true);
    return out;
  }

  activate(ctx: ActivateContext): void {
    if (this.tap.closed) {
      this.metrics['activate_fails']++;
      throw new Error(`net ${this.id}: activate after close()`);
    }
    takeQueues(`net ${this.id}`, ctx, NET_QUEUE_SIZES, this.metrics);
    if (this.active) this.reset();
    try {
      this.tap.setOffload(tapOffloadFlags(ctx.ackedFeatures));
    } catch (e) {
      this.metrics['activate_fails']++;
      throw new Error(`net ${this.id}: ${(e as Error).message} (negotiated features 0x${ctx.ackedFeatures.toString(16)})`);
    }
    const acked = ctx.ackedFeatures;
    const mrgRxbuf = hasFeature(acked, VIRTIO_NET_F_MRG_RXBUF);
    const gso = hasFeature(acked, VIRTIO_NET_F_GUEST_TSO4) || hasFeature(acked, VIRTIO_NET_F_GUEST_TSO6) || hasFeature(acked, VIRTIO_NET_F_GUEST_UFO);
    // Firecracker's minimum_rx_buffer_size (and the spec's §5.1.6.3.1 sizes).
    const minRxBuffer = mrgRxbuf ? VNET_HDR_LEN : gso ? MAX_BUFFER_SIZE : MIN_RX_BUFFER_SMALL;
    const hostMap = HostMap.of(ctx.mem);
    this.active = {
      mem: ctx.mem,
      rxq: ctx.queues[RX_INDEX]!,
      txq: ctx.queues[TX_INDEX]!,
      interrupt: ctx.interrupt,
      events: ctx.events,
      mrgRxbuf,
      minRxBuffer,
      hostMap,
      rx: new RxBuffers(ctx.mem, hostMap),
      rxUsed: undefined,
      rxRing: undefined,
      rxAvailIdx: 0,
    };
    this.rxDeferred = undefined;
    this.rxThrottled = this.txThrottled = false;
    this.rxErrorUntil = undefined;
    this.rxErrorBackoff = RX_ERROR_BACKOFF_MS;
    this.armTap();
  }

  reset(): void {
    this.disarmTap();
    this.active?.rx.clear();
    this.active = undefined;
    this.rxDeferred = undefined;
    this.rxThrottled = this.txThrottled = false;
    this.rxErrorUntil = undefined;
  }

  /** Reset, then close the TAP fd if the backend opened it (a non-persistent TAP goes away). */
  close(): void {
    this.reset();
    this.tap.close();
  }

  retryInMs(): number | undefined {
    if (!this.active) return undefined;
    let t: number | undefined;
    const at = (ms: number): void => {
      t = t === undefined ? ms : Math.min(t, ms);
    };
    if (this.rxThrottled) at(this.rxRateLimiter.timerDueMs());
    if (this.txThrottled) at(this.txRateLimiter.timerDueMs());
    if (this.rxErrorUntil !== undefined) at(Math.max(0, this.rxErrorUntil - performance.now()));
    return t === undefined ? undefined : retryDelayMs(t);
  }

  /**
   * PATCH /network-interfaces (Firecracker's patch_rate_limiters): undefined
   * or null leaves a bucket as it is. The limiters are unblocked: the caller
   * should run processQueue on both queues (the device thread's retry does).
   */
  updateRateLimiters(rxBandwidth?: BucketUpdate, rxOps?: BucketUpdate, txBandwidth?: BucketUpdate, txOps?: BucketUpdate): void {
    this.rxRateLimiter.updateBuckets(rxBandwidth, rxOps);
    this.txRateLimiter.updateBuckets(txBandwidth, txOps);
  }

  processQueue(index: number): void {
    const a = this.active;
    if (!a) return;
    if (index !== RX_INDEX && index !== TX_INDEX) throw new RangeError(`net ${this.id}: no queue ${index}`);
    this.guarded(() => {
      if (index === RX_INDEX) {
        if (this.rxThrottled) this.metrics['rx_event_rate_limiter_count']++;
        else this.metrics['rx_queue_event_count']++;
        this.rxThrottled = false;
        this.runRx(a);
      } else {
        this.processTx(a);
      }
    });
  }

  /** The TAP fd is readable (the epoll handler; also callable directly when there is no event loop). */
  processTap(): void {
    const a = this.active;
    if (!a) return;
    this.metrics['rx_tap_event_count']++;
    this.guarded(() => this.runRx(a));
  }

  /**
   * Runs `fn`; if it throws (a QueueError: the device is going to
   * NEEDS_RESET), takes the TAP out of the loop first, so a readable TAP
   * nobody serves any more cannot keep the level-triggered loop spinning.
   */
  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.disarmTap();
      throw e;
    }
  }

  private readonly onTapEvent = (): void => {
    this.processTap();
  };

  private armTap(): void {
    const ev = this.active?.events;
    if (this.tapArmed || !ev) return;
    ev.add(this.tap.fd, this.onTapEvent, EPOLLIN);
    this.tapArmed = true;
  }

  private disarmTap(): void {
    if (!this.tapArmed) return;
    this.tapArmed = false;
    this.active?.events?.remove(this.tap.fd);
  }

  // ---- RX -------------------------------------------------------------------

  private runRx(a: ActiveState): void {
    if (this.receive(a) && a.rxq.needsNotification(a.mem)) a.interrupt();
  }

  /** Receives frames until the TAP is empty, buffers or tokens run out, or RX_BATCH; true when used entries were added. */
  private receive(a: ActiveState): boolean {
    const m = this.metrics;
    let used = false;
    if (this.rxErrorUntil !== undefined) {
      if (performance.now() < this.rxErrorUntil) return used;
      this.rxErrorUntil = undefined;
    }
    if (this.rxDeferred) {
      if (!this.admit(this.rxRateLimiter, this.rxDeferred.bytes)) {
        m['rx_rate_limiter_throttled']++;
        this.rxThrottled = true;
        this.disarmTap();
        return used;
      }
      this.publishFrame(a, this.rxDeferred);
      this.rxDeferred = undefined;
      used = true;
    }
    for (let frames = 0; ; frames++) {
      if (frames === RX_BATCH) {
        // More may be waiting: stay registered, the (level-triggered) loop comes back.
        this.armTap();
        break;
      }
      if (this.rxRateLimiter.isBlocked) {
        m['rx_rate_limiter_throttled']++;
        this.rxThrottled = true;
        this.disarmTap();
        break;
      }
      const fill = this.fillRxBuffers(a);
      if (fill & FILL_RETURNED) used = true;
      if (!(fill & FILL_READY)) {
        // Frames stay in the TAP's queue; processQueue(0) resumes when the guest adds buffers.
        m['no_rx_avail_buffer']++;
        this.disarmTap();
        break;
      }
      const n = a.rx.read(this.tap.fd);
      if (n === -EAGAIN) {
        this.armTap();
        break;
      }
      if (n < 0) {
        logger.error(`net ${this.id}: reading TAP ${this.tap.name} failed: ${tapErrorText('readv', -n)}`);
        m['tap_read_fails']++;
        m['event_fails']++;
        this.disarmTap();
        this.rxErrorUntil = performance.now() + this.rxErrorBackoff;
        this.rxErrorBackoff = Math.min(this.rxErrorBackoff * 2, RX_ERROR_BACKOFF_MAX_MS);
        break;
      }
      this.rxErrorBackoff = RX_ERROR_BACKOFF_MS;
      if (n > a.rx.capacity) {
        logger.error(`net ${this.id}: dropped a ${n > a.rx.capacity + 1 ? `${n}-byte` : 'truncated'} frame larger than the ${a.rx.capacity} bytes of receive buffers${a.mrgRxbuf ? '' : ' (one chain: no VIRTIO_NET_F_MRG_RXBUF)'}`);
        m['rx_fails']++;
        continue;
      }
      if (n < VNET_HDR_LEN) {
        logger.error(`net ${this.id}: TAP ${this.tap.name} returned ${n} bytes, less than the vnet header`);
        m['rx_fails']++;
        continue;
      }
      const frame = a.rx.take(n);
      m['rx_count']++;
      m['rx_packets_count']++;
      m['rx_bytes_count'] += n;
      if (!this.admit(this.rxRateLimiter, n)) {
        this.rxDeferred = frame;
        m['rx_rate_limiter_throttled']++;
        this.rxThrottled = true;
        this.disarmTap();
        break;
      }
      this.publishFrame(a, frame);
      used = true;
    }
    return used;
  }

  /**
   * Pops receive chains until the held buffers can take any frame (with
   * MRG_RXBUF: MAX_BUFFER_SIZE bytes, or as many chains as IOV_MAX allows;
   * without: one chain). Unusable chains are returned with length 0.
   * FILL_READY when a frame can be read, FILL_RETURNED when chains were returned.
   */
  private fillRxBuffers(a: ActiveState): number {
    const { rx, rxq: q, mem } = a;
    let returned = 0;
    for (;;) {
      const held = this.holdRxBuffers(a);
      if (held !== HOLD_GENERAL) return FILL_READY | returned;
      const chain = popChain(q, mem, this.onRxChainError);
      if (chain === REJECTED) {
        returned = FILL_RETURNED;
        continue;
      }
      if (!chain) return returned;
      if (chain.readableLength > 0) {
        this.rejectRxChain(a, chain, `has ${chain.readableLength} device-readable bytes`);
        returned = FILL_RETURNED;
        continue;
      }
      if (chain.writableLength < a.minRxBuffer) {
        this.rejectRxChain(a, chain, `has ${chain.writableLength} bytes, less than the ${a.minRxBuffer} of the smallest receive buffer`);
        returned = FILL_RETURNED;
        continue;
      }
      if (rx.add(chain, MAX_BUFFER_SIZE) === 'iov-limit') {
        if (rx.length === 0) {
          this.rejectRxChain(a, chain, `needs more than ${IOV_MAX - 1} iovecs`);
          returned = FILL_RETURNED;
          continue;
        }
        q.undoPop(); // taken again once the held chains are used
        return FILL_READY | returned;
      }
    }
  }

  /**
   * The usual receive buffers, taken straight off the ring without a
   * DescriptorChain, until the held buffers can take any frame (with
   * MRG_RXBUF: MAX_BUFFER_SIZE bytes; without: one chain): while the next
   * available entry (one the driver has published) is a chain of one
   * direct device-writable descriptor of at least minRxBuffer bytes within
   * one RAM region, holds it and consumes the entry, each ring field read
   * once, as popAvail does. Anything else (an empty ring, a longer or
   * indirect chain, a descriptor to refuse, a bad ring) is left on the ring
   * for popChain, whose full validation decides: this only takes chains it
   * would accept, and as it would hold them.
   */
  private holdRxBuffers(a: ActiveState): number {
    const { rx, rxq: q } = a;
    const need = a.mrgRxbuf ? MAX_BUFFER_SIZE : 1;
    if ((a.mrgRxbuf ? rx.capacity : rx.length) >= need) return HOLD_ENOUGH;
    if (!q.ready) return HOLD_GENERAL;
    let ring = a.rxRing;
    if (ring === undefined || (ring !== null && !ring.matches(q))) {
      ring = a.rxRing = q.isValid(a.mem) ? RxRing.of(a.mem, q) ?? null : undefined;
      a.rxAvailIdx = q.nextAvail;
    }
    if (!ring) return HOLD_GENERAL;
    const { avail, desc32, desc16, size } = ring;
    const min = a.minRxBuffer;
    const start = q.nextAvail;
    let next = start;
    let known = a.rxAvailIdx;
    let result = HOLD_GENERAL;
    for (;;) {
      let pending = (known - next) & 0xffff;
      if (pending === 0 || pending > size) {
        known = avail[1]!; // avail.idx
        pending = (known - next) & 0xffff;
        // None published, or an index popAvail must report.
        if (pending === 0 || pending > size) break;
        fullFence(); // ring entries and descriptors only after avail.idx
      }
      const head = avail[2 + (next & (size - 1))]!; // avail.ring[]
      if (head >= size) break;
      const flags = desc16[8 * head + 6]!;
      const len = desc32[4 * head + 2]!;
      const hi = desc32[4 * head + 1]!;
      if (flags !== VIRTQ_DESC_F_WRITE || len < min || hi >= ADDR_HI_LIMIT) break;
      const held = rx.holdBuffer(head, hi * 2 ** 32 + desc32[4 * head]!, len, MAX_BUFFER_SIZE);
      if (held === 0) break;
      if (held < 0) {
        result = HOLD_IOV_FULL;
        break;
      }
      next = (next + 1) & 0xffff;
      if ((a.mrgRxbuf ? rx.capacity : rx.length) >= need) {
        result = HOLD_ENOUGH;
        break;
      }
    }
    a.rxAvailIdx = known;
    if (next !== start) q.nextAvail = next;
    return result;
  }

  private readonly onRxChainError = (e: Error): void => {
    logger.error(`net ${this.id}: rx: ${e.message}`);
    this.metrics['rx_fails']++;
  };

  private rejectRxChain(a: ActiveState, chain: DescriptorChain, why: string): void {
    logger.error(`net ${this.id}: rx chain ${chain.head} ${why}; returned unused`);
    this.metrics['rx_fails']++;
    a.rxq.addUsed(a.mem, chain.head, 0);
  }

  /**
   * Publishes a frame's used entries with a single used.idx store (what
   * Queue.addUsed does for one), so the driver sees all of a merged frame's
   * buffers at once or none of them. Straight through views of the used
   * ring (the RxRing's, else a GuestView): this runs for every frame.
   */
  private publishFrame(a: ActiveState, f: RxFrame): void {
    const q = a.rxq;
    const size = q.size;
    const ring = a.rxRing;
    if (ring && ring.matches(q)) {
      const used32 = ring.used32;
      let idx = q.nextUsed;
      for (let i = 0; i < f.count; i++) {
        const e = 1 + 2 * (idx & (size - 1)); // used.ring[] as u32s
        used32[e] = f.heads[i]!;
        used32[e + 1] = f.lens[i]!;
        idx = (idx + 1) & 0xffff;
      }
      fullFence(); // elements (and the frame) before used.idx
      q.nextUsed = idx;
      ring.used16[1] = idx; // used.idx
      return;
    }
    try {
      let used = a.rxUsed;
      if (used === undefined || used.base !== q.usedRing) {
        const len = virtqUsedRingSize(size);
        if (!rangeInRam(a.mem, q.usedRing, len)) {
          throw new QueueError('config', `used ring [0x${q.usedRing.toString(16)}, +0x${len.toString(16)}) is not in guest RAM`);
        }
        used = a.rxUsed = new GuestView(a.mem, q.usedRing, len);
      }
      let idx = q.nextUsed;
      for (let i = 0; i < f.count; i++) {
        const off = VIRTQ_USED_OFF_RING + VIRTQ_USED_ELEM_SIZE * (idx & (size - 1));
        used.setU32(off, f.heads[i]!);
        used.setU32(off + 4, f.lens[i]!);
        idx = (idx + 1) & 0xffff;
      }
      fullFence(); // elements (and the frame) before used.idx
      q.nextUsed = idx;
      used.setU16(VIRTQ_USED_OFF_IDX, idx);
    } catch (e) {
      throw asQueueError(e);
    }
  }

  // ---- TX -------------------------------------------------------------------

  private processTx(a: ActiveState): void {
    const m = this.metrics;
    const { txq: q, mem } = a;
    if (this.txThrottled) m['tx_rate_limiter_event_count']++;
    else m['tx_queue_event_count']++;
    this.txThrottled = false;
    if (this.txRateLimiter.isBlocked) {
      m['tx_rate_limiter_throttled']++;
      this.txThrottled = true;
      return;
    }

    let used = false;
    for (;;) {
      const chain = popChain(q, mem, this.onTxChainError, true, this.txChain);
      if (chain === REJECTED) {
        used = true;
        continue;
      }
      if (!chain) break;
      m['tx_remaining_reqs_count'] += q.pending(mem);

      const len = chain.readableLength;
      let bad: string | undefined;
      if (chain.writableLength > 0) {
        bad = `has ${chain.writableLength} device-writable bytes`;
        m['tx_fails']++;
      } else if (len < VNET_HDR_LEN) {
        bad = `is ${len} bytes, shorter than the ${VNET_HDR_LEN}-byte vnet header`;
        m['tx_malformed_frames']++;
      } else if (len > MAX_BUFFER_SIZE) {
        bad = `is ${len} bytes, more than ${MAX_BUFFER_SIZE}`;
        m['tx_malformed_frames']++;
      }
      if (bad !== undefined) {
        logger.error(`net ${this.id}: tx chain ${chain.head} ${bad}; not sent`);
        q.addUsed(mem, chain.head, 0);
        used = true;
        continue;
      }

      if (!this.admit(this.txRateLimiter, len)) {
        // Stays on the ring for the retry.
        q.undoPop();
        m['tx_rate_limiter_throttled']++;
        this.txThrottled = true;
        break;
      }

      if (this.macBytes && len >= VNET_HDR_LEN + 12 && this.spoofedSource(mem, chain, this.macBytes)) m['tx_spoofed_mac_count']++;

      const t0 = performance.now();
      const n = this.writeFrame(a, chain, len);
      recordTapWriteLatency(m, (performance.now() - t0) * 1000);
      if (n === len) {
        m['tx_bytes_count'] += len;
        m['tx_packets_count']++;
        m['tx_count']++;
      } else {
        const why = n < 0 ? tapErrorText('writev', -n) : `wrote ${n} of ${len} bytes`;
        logger.error(`net ${this.id}: writing a frame to TAP ${this.tap.name} failed: ${why}`);
        m['tap_write_fails']++;
      }
      q.addUsed(mem, chain.head, 0);
      used = true;
    }

    if (!used) m['no_tx_avail_buffer']++;
    else if (q.needsNotification(mem)) a.interrupt();
  }

  private readonly onTxChainError = (e: Error): void => {
    logger.error(`net ${this.id}: tx: ${e.message}`);
    this.metrics['tx_fails']++;
  };

  /**
   * Whether the frame's source MAC (6 bytes after the vnet header and the
   * destination) differs from `mac`: read in place when the first buffer
   * holds it, else copied out of the chain.
   */
  private spoofedSource(mem: GuestMemory, chain: DescriptorChain, mac: Uint8Array): boolean {
    const at = VNET_HDR_LEN + 6;
    // The first descriptor is readable (the chain has no writable part) and may be empty.
    if (chain.len(0) >= at + 6) {
      const addr = chain.addr(0) + at;
      for (const r of mem.regions) {
        const off = addr - r.guestAddr;
        if (off >= 0 && off + 6 <= r.size) {
          const b = r.bytes;
          return b[off] !== mac[0] || b[off + 1] !== mac[1] || b[off + 2] !== mac[2]
            || b[off + 3] !== mac[3] || b[off + 4] !== mac[4] || b[off + 5] !== mac[5];
        }
      }
    }
    const src = chain.readBytes(mem, 6, at);
    for (let i = 0; i < 6; i++) if (src[i] !== mac[i]) return true;
    return false;
  }

  /** One writev of the chain's `len` readable bytes to the TAP (a copy only past IOV_MAX pieces): bytes written or -errno. */
  private writeFrame(a: ActiveState, chain: DescriptorChain, len: number): number {
    const fd = this.tap.fd;
    if (a.hostMap) {
      const n = a.hostMap.appendSpan(this.txIov, { chain, writable: false, skip: 0, len }, IOV_MAX);
      if (n >= 0) return libc.tryWritev(fd, this.txIov.bytes, n);
      const s = hostScratch();
      chain.reader(a.mem).readInto(s.bytes.subarray(0, len));
      this.txIov.set(0, s.host, len);
      return libc.tryWritev(fd, this.txIov.bytes, 1);
    }
    const views = chain.reader(a.mem).views(len);
    if (views.length <= IOV_MAX) return fsWritev(fd, views);
    const copy = new Uint8Array(len);
    chain.reader(a.mem).readInto(copy);
    return fsWritev(fd, [copy]);
  }

  /** One op and `bytes` bytes, giving the op back when the bytes are refused (Firecracker's rate_limiter_consume_op). */
  private admit(rl: RateLimiter, bytes: number): boolean {
    if (!rl.enabled) return true;
    if (!rl.consume(1, 'ops')) return false;
    if (!rl.consume(bytes, 'bytes')) {
      rl.manualReplenish(1, 'ops');
      return false;
    }
    return true;
  }
}
