/**
 * The virtio-vsock device backend (virtio 1.2 §5.10), Firecracker's Vsock
 * device with its Unix-socket backend (docs/vsock.md): three queues of 256
 * (rx, tx, event), config space `le64 guest_cid`, stream sockets only.
 *
 * Runs on the device thread. The host side (muxer.ts) serves a listening
 * Unix socket at `udsPath` and one non-blocking host socket per connection,
 * registered in the thread's epoll loop through `ActivateContext.events`.
 *
 *  - processQueue(1) (tx kick): every tx chain is one packet, a 44-byte
 *    header then `len` payload bytes, all device-readable. The header is
 *    copied and checked; the payload goes from guest memory straight to the
 *    host socket (zero-copy views). Every chain is returned with length 0.
 *    Malformed ones (header short or split into writable buffers, `len`
 *    above 64 KiB or beyond the buffer) are dropped and counted; a bad `len`
 *    also resets the connection it names. Then rx is served, since the
 *    packets may have produced replies.
 *  - processQueue(0) (rx kick), and each host socket event: while packets
 *    are due and the guest has rx buffers, each buffer (device-writable,
 *    at least 44 bytes) gets one packet: payload received from the host
 *    socket straight into guest memory after the header, then the header;
 *    used length = 44 + payload.
 *  - processQueue(2) (event queue kick): nothing to do; the device keeps
 *    the buffers for a TRANSPORT_RESET event (sendTransportReset()).
 *  - Timers (a REQUEST the guest does not answer, a shutdown it does not
 *    finish, both 2 s as Firecracker) go through retryInMs(): the device
 *    thread calls processQueue once they are due, which resets the expired
 *    connections.
 *
 * Offered features: VIRTIO_RING_F_EVENT_IDX and VIRTIO_F_IN_ORDER, as
 * Firecracker (the device uses every ring's buffers in the order they were
 * made available).
 */
import {
  VIRTIO_F_IN_ORDER,
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_ID_VSOCK,
  featureBit,
} from '../../../../generated/virtio.js';
import {
  VIRTIO_VSOCK_CONFIG_SIZE,
  VIRTIO_VSOCK_EVENT_SIZE,
  VIRTIO_VSOCK_EVENT_TRANSPORT_RESET,
  VIRTIO_VSOCK_HDR_SIZE,
  VSOCK_MIN_GUEST_CID,
} from '../../../../generated/vsock.js';
import { logger } from '../../../../logger/logger.js';
import type { GuestMemory } from '../../../../memory/guest_memory.js';
import * as libc from '../../../../sys/libc.js';
import type { DescriptorChain, Queue } from '../../../../virtio/queue/index.js';
import { popChain, REJECTED, type ActivateContext, type BackendEvents, type VirtioBackend, takeQueues } from '../backend.js';
import { createVsockMetrics, createVsockStats, type VsockMetrics, type VsockStats } from './metrics.js';
import { listenUnix, VSOCK_MAX_CONNECTIONS, VsockMuxer } from './muxer.js';
import { decodeHeader, encodeHeader, VSOCK_MAX_PKT_BUF_SIZE, type VsockHeader } from './packet.js';

/** Firecracker's VSOCK_QUEUE_SIZES: rx, tx, event, each FIRECRACKER_MAX_QUEUE_SIZE. */
export const VSOCK_QUEUE_SIZES: readonly number[] = [256, 256, 256];
export const VSOCK_RXQ = 0;
export const VSOCK_TXQ = 1;
export const VSOCK_EVQ = 2;

export interface VsockBackendOptions {
  /** The guest's CID: 3 .. 2^32 - 1 (Firecracker's guest_cid is a u32). */
  guestCid: number | bigint;
  /** Host-initiated connections arrive here; guest-initiated ones go to `<udsPath>_<port>`. */
  udsPath: string;
  /**
   * A socket already bound to `udsPath` and listening, non-blocking (e.g.
   * made with listenUnix() on the main thread, so PUT /vsock can report a
   * bind error). Without it the constructor binds `udsPath` itself (the path
   * must not exist: EADDRINUSE, as Firecracker).
   */
  listenFd?: number;
  /** Default VSOCK_MAX_CONNECTIONS (1023, Firecracker's). */
  maxConnections?: number;
  /** Monotonic milliseconds, for the connection timers (tests inject a clock). */
  now?: () => number;
}

interface ActiveState {
  mem: GuestMemory;
  queues: Queue[];
  interrupt: () => void;
  events: BackendEvents;
}

function checkCid(cid: number | bigint): bigint {
  const c = typeof cid === 'bigint' ? cid : Number.isSafeInteger(cid) ? BigInt(cid) : -1n;
  if (c < BigInt(VSOCK_MIN_GUEST_CID) || c > 0xffffffffn) throw new RangeError(`vsock guest CID ${String(cid)} is not in [3, 2^32 - 1]`);
  return c;
}

/** A header object for the device to fill. */
function blankHeader(): VsockHeader {
  return { srcCid: 0n, dstCid: 0n, srcPort: 0, dstPort: 0, len: 0, type: 0, op: 0, flags: 0, bufAlloc: 0, fwdCnt: 0 };
}

export class VsockBackend implements VirtioBackend {
  readonly deviceType = VIRTIO_ID_VSOCK;
  readonly queueMaxSizes = VSOCK_QUEUE_SIZES;
  readonly availFeatures = featureBit(VIRTIO_F_RING_EVENT_IDX) | featureBit(VIRTIO_F_IN_ORDER);
  readonly metrics: VsockMetrics = createVsockMetrics();
  /** Finer counters than Firecracker's (drops and refusals by reason); not in the metrics line. */
  readonly stats: VsockStats = createVsockStats();
  readonly guestCid: bigint;
  readonly udsPath: string;

  private readonly muxer: VsockMuxer;
  private readonly now: () => number;
  /** The constructor bound udsPath (close() removes it). */
  private readonly ownsPath: boolean;
  private active: ActiveState | undefined;
  private closed = false;
  private readonly rxHeader = blankHeader();
  private readonly hdrBytes = new Uint8Array(VIRTIO_VSOCK_HDR_SIZE);

  constructor(opts: VsockBackendOptions) {
    this.guestCid = checkCid(opts.guestCid);
    this.udsPath = opts.udsPath;
    this.now = opts.now ?? ((): number => performance.now());
    const maxConnections = opts.maxConnections ?? VSOCK_MAX_CONNECTIONS;
    if (!Number.isSafeInteger(maxConnections) || maxConnections < 1) throw new RangeError(`vsock maxConnections ${maxConnections} is not a positive integer`);
    this.ownsPath = opts.listenFd === undefined;
    const listenFd = opts.listenFd ?? listenUnix(opts.udsPath);
    this.muxer = new VsockMuxer({
      guestCid: this.guestCid, udsPath: opts.udsPath, listenFd, maxConnections,
      metrics: this.metrics, stats: this.stats, now: this.now,
    });
    this.muxer.onActivity = (): void => this.deliverRx();
  }

  get isActivated(): boolean {
    return this.active !== undefined;
  }

  /** Connections in the table. */
  get connectionCount(): number {
    return this.muxer.connectionCount;
  }

  /** Host fds registered in the event loop (listener, host sockets awaiting CONNECT, connections being polled). */
  get registeredFds(): number {
    return this.muxer.registeredFds;
  }

  /** Host sockets accepted on udsPath that have not sent their CONNECT line yet. */
  get pendingHostConnections(): number {
    return this.muxer.localStreamCount;
  }

  /** §5.10.4: le64 guest_cid. */
  configSpace(): Uint8Array {
    const b = new Uint8Array(VIRTIO_VSOCK_CONFIG_SIZE);
    new DataView(b.buffer).setBigUint64(0, this.guestCid, true);
    return b;
  }

  activate(ctx: ActivateContext): void {
    if (this.closed) {
      this.metrics['activate_fails']++;
      throw new Error('vsock: activate after close');
    }
    takeQueues('vsock', ctx, VSOCK_QUEUE_SIZES, this.metrics);
    if (!ctx.events) {
      this.metrics['activate_fails']++;
      throw new Error('vsock: activate without an event loop for the host sockets');
    }
    this.active = { mem: ctx.mem, queues: ctx.queues, interrupt: ctx.interrupt, events: ctx.events };
    this.muxer.activate(ctx.events);
  }

  /** Drops every connection (closing the host sockets) and unregisters every fd; the listening socket stays for the next activation. */
  reset(): void {
    this.muxer.reset();
    this.active = undefined;
  }

  /** reset(), then closes the listening socket and, when the backend bound it, removes udsPath. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.muxer.close();
    this.active = undefined;
    if (this.ownsPath) {
      try {
        libc.unlink(this.udsPath);
      } catch {
        // Already gone.
      }
    }
  }

  /** ms until the next connection timer is due (processQueue then resets what expired), else undefined. */
  retryInMs(): number | undefined {
    if (!this.active) return undefined;
    const next = this.muxer.nextExpiry();
    if (next === undefined) return undefined;
    return Math.max(0, Math.ceil(next - this.now()));
  }

  processQueue(index: number): void {
    const a = this.active;
    if (!a) return;
    if (!a.queues[index]) throw new RangeError(`vsock: no queue ${index}`);
    this.muxer.sweep(this.now());
    let notify = false;
    if (index === VSOCK_RXQ) this.metrics['rx_queue_event_count']++;
    else if (index === VSOCK_TXQ) {
      this.metrics['tx_queue_event_count']++;
      notify = this.processTx(a);
    }
    if (this.processRx(a)) notify = true;
    if (notify) a.interrupt();
  }

  /**
   * Publishes a VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue
   * (§5.10.6.6: the driver drops its connections and re-reads guest_cid;
   * Firecracker sends it before a snapshot) and drops every connection.
   * Returns false when the guest has no event buffer.
   */
  sendTransportReset(): boolean {
    const a = this.active;
    if (!a) return false;
    const q = a.queues[VSOCK_EVQ]!;
    let chain: DescriptorChain | undefined | typeof REJECTED;
    do {
      chain = popChain(q, a.mem, () => { this.metrics['ev_queue_event_fails']++; }, false);
    } while (chain === REJECTED);
    if (!chain) {
      this.metrics['ev_queue_event_fails']++;
      return false;
    }
    const ev = new Uint8Array(VIRTIO_VSOCK_EVENT_SIZE);
    new DataView(ev.buffer).setUint32(0, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, true);
    const n = chain.writableLength >= VIRTIO_VSOCK_EVENT_SIZE ? chain.writeBytes(a.mem, ev) : 0;
    if (n === 0) this.metrics['ev_queue_event_fails']++;
    q.addUsed(a.mem, chain.head, n);
    q.enableNotification(a.mem);
    // The driver forgets every connection: so does the device (the listener stays).
    this.muxer.reset();
    this.muxer.activate(a.events);
    if (q.needsNotification(a.mem)) a.interrupt();
    return n > 0;
  }

  /** Host socket activity: deliver what it produced. */
  private deliverRx(): void {
    const a = this.active;
    if (!a) return;
    this.muxer.sweep(this.now());
    if (this.processRx(a)) a.interrupt();
  }

  /** Takes every tx packet; returns whether the guest needs an interrupt for the tx queue. */
  private processTx(a: ActiveState): boolean {
    const q = a.queues[VSOCK_TXQ]!;
    const mem = a.mem;
    let used = false;
    for (;;) {
      const chain = popChain(q, mem, (e) => {
        this.metrics['tx_queue_event_fails']++;
        logger.error(`vsock: tx queue: ${(e as Error).message}`);
      });
      if (chain === REJECTED) {
        used = true;
        continue;
      }
      if (!chain) break;
      this.txPacket(mem, chain);
      q.addUsed(mem, chain.head, 0);
      used = true;
    }
    return used && q.needsNotification(mem);
  }

  private txPacket(mem: GuestMemory, chain: DescriptorChain): void {
    if (chain.writableLength > 0 || chain.readableLength < VIRTIO_VSOCK_HDR_SIZE) {
      // Firecracker rejects tx chains with device-writable buffers, and headers that do not fit.
      this.metrics['tx_queue_event_fails']++;
      if (chain.readableLength < VIRTIO_VSOCK_HDR_SIZE) this.stats.txShortHeader++;
      logger.warn(`vsock: dropping tx chain ${chain.head}: ${chain.readableLength} device-readable and ${chain.writableLength} device-writable bytes`);
      return;
    }
    const reader = chain.reader(mem);
    const h = decodeHeader(reader.read(VIRTIO_VSOCK_HDR_SIZE));
    if (h.len > VSOCK_MAX_PKT_BUF_SIZE || h.len > reader.remaining) {
      this.metrics['tx_queue_event_fails']++;
      this.stats.txBadLen++;
      logger.warn(`vsock: dropping tx packet with len ${h.len} (buffer holds ${reader.remaining}, at most ${VSOCK_MAX_PKT_BUF_SIZE}); resetting its connection`);
      this.muxer.resetFor(h);
      return;
    }
    this.metrics['tx_packets_count']++;
    this.muxer.sendPkt(h, (len) => reader.views(len));
  }

  /** Fills rx buffers while packets are due; returns whether the guest needs an interrupt for the rx queue. */
  private processRx(a: ActiveState): boolean {
    if (!this.muxer.hasPendingRx()) return false;
    const q = a.queues[VSOCK_RXQ]!;
    const mem = a.mem;
    let used = false;
    while (this.muxer.hasPendingRx()) {
      const chain = popChain(q, mem, (e) => {
        this.metrics['rx_queue_event_fails']++;
        logger.error(`vsock: rx queue: ${(e as Error).message}`);
      });
      if (chain === REJECTED) {
        used = true;
        continue;
      }
      if (!chain) break;
      if (chain.readableLength > 0 || chain.writableLength < VIRTIO_VSOCK_HDR_SIZE) {
        this.metrics['rx_queue_event_fails']++;
        logger.warn(`vsock: rx chain ${chain.head} unusable: ${chain.readableLength} device-readable and ${chain.writableLength} device-writable bytes`);
        q.addUsed(mem, chain.head, 0);
        used = true;
        continue;
      }
      const c = chain;
      const h = this.rxHeader;
      const cap = Math.min(c.writableLength - VIRTIO_VSOCK_HDR_SIZE, VSOCK_MAX_PKT_BUF_SIZE);
      const dataViews = (max: number): Uint8Array[] => {
        const w = c.writer(mem);
        w.skip(VIRTIO_VSOCK_HDR_SIZE);
        return w.views(max);
      };
      if (!this.muxer.recvPkt(h, cap, dataViews)) {
        q.undoPop();
        break;
      }
      c.writeBytes(mem, encodeHeader(h, this.hdrBytes));
      q.addUsed(mem, c.head, VIRTIO_VSOCK_HDR_SIZE + h.len);
      this.metrics['rx_packets_count']++;
      used = true;
    }
    return used && q.needsNotification(mem);
  }
}
