/**
 * One vsock stream connection between a guest AF_VSOCK socket and a host
 * AF_UNIX stream socket: the connection state machine of Firecracker's
 * csm/connection.rs, written for a non-blocking fd served from an epoll loop.
 *
 * Data host → guest (rx) is never buffered: when the host socket is readable
 * the connection notes a pending RW, and when the device has a guest rx
 * buffer it recv()s straight into guest memory, at most the guest's free
 * credit (buf_alloc - (bytes sent - fwd_cnt)) and the buffer's size. With no
 * credit left it sends one CREDIT_REQUEST and stops polling the socket until
 * the guest's next packet updates the credit.
 *
 * Data guest → host (tx) is written to the host socket at once; what the
 * socket does not take (EAGAIN, short write) is copied into a per-connection
 * buffer of at most VSOCK_CONN_TX_BUF_SIZE bytes (the buf_alloc the device
 * advertises) and flushed on EPOLLOUT. fwd_cnt only counts bytes the host
 * socket took, so a guest honouring the credit stops sending while the host
 * peer is not reading; a guest that sends more than the credit is reset.
 *
 * Control packets: REQUEST / RESPONSE open the connection, SHUTDOWN (flags
 * OR-ed over successive packets) half- or fully closes it, RST kills it;
 * CREDIT_UPDATE is sent proactively when the guest's view of our free space
 * drops under VSOCK_CONN_CREDIT_UPDATE_THRESHOLD and in answer to
 * CREDIT_REQUEST. Packets the device owes the guest are kept as a set of
 * pending indications (RST, RESPONSE, REQUEST, RW, CREDIT_UPDATE), so a
 * connection holds at most one of each, however the guest behaves.
 *
 * Beyond Firecracker: when the guest has promised to send no more
 * (SHUTDOWN with SEND) and everything it sent has reached the host socket,
 * the host socket's write side is shut down, so the host peer sees EOF.
 */
import { EAGAIN, EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, MSG_DONTWAIT, MSG_NOSIGNAL, SHUT_WR, SO_ERROR, SOL_SOCKET } from '../../../../generated/libc.js';
import {
  VIRTIO_VSOCK_OP_CREDIT_REQUEST,
  VIRTIO_VSOCK_OP_CREDIT_UPDATE,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RESPONSE,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_OP_RW,
  VIRTIO_VSOCK_OP_SHUTDOWN,
  VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE,
  VIRTIO_VSOCK_SHUTDOWN_F_SEND,
  VIRTIO_VSOCK_TYPE_STREAM,
  VMADDR_CID_HOST,
} from '../../../../generated/vsock.js';
import { logger } from '../../../../logger/logger.js';
import * as libc from '../../../../sys/libc.js';
import type { VsockMetrics, VsockStats } from './metrics.js';
import { VSOCK_MAX_PKT_BUF_SIZE, type VsockHeader } from './packet.js';

/** Firecracker's CONN_TX_BUF_SIZE: the buf_alloc the device advertises, and the most guest data a connection buffers. */
export const VSOCK_CONN_TX_BUF_SIZE = 64 * 1024;
/** Firecracker's CONN_CREDIT_UPDATE_THRESHOLD: below this much free space (as the guest last heard), send a CREDIT_UPDATE. */
export const VSOCK_CONN_CREDIT_UPDATE_THRESHOLD = 4 * 1024;
/** Firecracker's CONN_REQUEST_TIMEOUT_MS: a host-initiated REQUEST the guest does not answer is reset after this. */
export const VSOCK_CONN_REQUEST_TIMEOUT_MS = 2000;
/** Firecracker's CONN_SHUTDOWN_TIMEOUT_MS: a closing connection the guest does not finish is reset after this. */
export const VSOCK_CONN_SHUTDOWN_TIMEOUT_MS = 2000;

export type ConnState =
  /** Host-initiated, REQUEST not yet answered by the guest. */
  | 'local-init'
  /** Guest-initiated, RESPONSE not yet sent. */
  | 'peer-init'
  | 'established'
  /** The host socket reached EOF: SHUTDOWN sent to the guest, waiting for its RST. */
  | 'local-closed'
  /** The guest sent SHUTDOWN (see peerRecvOff / peerSendOff). */
  | 'peer-closed'
  /** Reset: only an RST is left to send. */
  | 'killed';

/** Pending packets for the guest (a bit set, Firecracker's PendingRxSet). */
const P_REQUEST = 1;
const P_RESPONSE = 2;
const P_RST = 4;
const P_RW = 8;
const P_CREDIT_UPDATE = 16;

/** What a connection needs from its device. */
export interface ConnectionEnv {
  readonly metrics: VsockMetrics;
  readonly stats: VsockStats;
  /** Monotonic milliseconds. */
  now(): number;
}

const u32 = (v: number): number => v >>> 0;
const SEND_FLAGS = MSG_NOSIGNAL | MSG_DONTWAIT;

/**
 * Guest data the host socket has not taken yet: a ring of
 * VSOCK_CONN_TX_BUF_SIZE bytes, allocated on first use and released once
 * drained (most connections never need it).
 */
class TxRing {
  private buf: Uint8Array | undefined;
  private head = 0;
  private size = 0;

  get length(): number {
    return this.size;
  }

  get free(): number {
    return VSOCK_CONN_TX_BUF_SIZE - this.size;
  }

  /** Appends `src` (the caller checked it fits). */
  push(src: Uint8Array): void {
    const buf = (this.buf ??= new Uint8Array(VSOCK_CONN_TX_BUF_SIZE));
    let at = (this.head + this.size) % VSOCK_CONN_TX_BUF_SIZE;
    let off = 0;
    while (off < src.byteLength) {
      const n = Math.min(src.byteLength - off, VSOCK_CONN_TX_BUF_SIZE - at);
      buf.set(src.subarray(off, off + n), at);
      off += n;
      at = (at + n) % VSOCK_CONN_TX_BUF_SIZE;
    }
    this.size += src.byteLength;
  }

  /** Writes as much as the socket takes; returns bytes written, or -errno (other than EAGAIN) when nothing could be written. */
  flushTo(fd: number): number {
    let total = 0;
    while (this.size > 0) {
      const n = Math.min(this.size, VSOCK_CONN_TX_BUF_SIZE - this.head);
      const r = libc.trySend(fd, this.buf!.subarray(this.head, this.head + n), SEND_FLAGS);
      if (r < 0) {
        if (r === -EAGAIN || total > 0) break;
        return r;
      }
      total += r;
      this.head = (this.head + r) % VSOCK_CONN_TX_BUF_SIZE;
      this.size -= r;
      if (r < n) break;
    }
    if (this.size === 0) this.clear();
    return total;
  }

  clear(): void {
    this.buf = undefined;
    this.head = 0;
    this.size = 0;
  }
}

export class VsockConnection {
  /** Connection table key: local (host) port and peer (guest) port. */
  readonly key: string;
  private _state: ConnState;
  /** The guest will receive / send no more data (SHUTDOWN flags seen so far). */
  private peerRecvOff = false;
  private peerSendOff = false;
  private pending: number;
  /** A guest-initiated connect() still in progress (EINPROGRESS): waiting for EPOLLOUT. */
  private connecting: boolean;
  private hostWriteShut = false;
  private readonly tx = new TxRing();

  /** Bytes of guest data written to the host socket (our fwd_cnt). */
  private fwdCnt = 0;
  /** The guest's receive buffer and how much of what we sent it has consumed. */
  private peerBufAlloc: number;
  private peerFwdCnt = 0;
  /** Bytes of host data sent to the guest. */
  private rxCnt = 0;
  /** fwdCnt as the guest last heard it. */
  private lastFwdCntToPeer = 0;

  /** When the connection is to be reset (monotonic ms), if a timer runs. */
  expiry: number | undefined;
  /** Events the fd is registered for in the event loop (0: not registered). */
  registered = 0;
  /** The epoll handler, created once per connection. */
  handler: ((events: number) => void) | undefined;

  private constructor(
    readonly fd: number,
    readonly localPort: number,
    readonly peerPort: number,
    readonly peerCid: bigint,
    /** Host-initiated: the local port was allocated by the device. */
    readonly hostInitiated: boolean,
    state: ConnState,
    pending: number,
    peerBufAlloc: number,
    connecting: boolean,
    private readonly env: ConnectionEnv,
  ) {
    this.key = connKey(localPort, peerPort);
    this._state = state;
    this.pending = pending;
    this.peerBufAlloc = peerBufAlloc;
    this.connecting = connecting;
  }

  /** A guest-initiated connection whose host socket is connected (or, with `connecting`, still connecting): RESPONSE is due. */
  static peerInit(fd: number, localPort: number, peerPort: number, peerCid: bigint, peerBufAlloc: number, env: ConnectionEnv, connecting = false): VsockConnection {
    return new VsockConnection(fd, localPort, peerPort, peerCid, false, 'peer-init', connecting ? 0 : P_RESPONSE, peerBufAlloc, connecting, env);
  }

  /** A host-initiated connection (after `CONNECT <port>\n`): REQUEST is due. */
  static localInit(fd: number, localPort: number, peerPort: number, peerCid: bigint, env: ConnectionEnv): VsockConnection {
    return new VsockConnection(fd, localPort, peerPort, peerCid, true, 'local-init', P_REQUEST, 0, false, env);
  }

  get state(): ConnState {
    return this._state;
  }

  get hasPendingRx(): boolean {
    return this.pending !== 0;
  }

  /** Guest bytes waiting for the host socket. */
  get txBuffered(): number {
    return this.tx.length;
  }

  /** Reset: only an RST is left to send; buffered guest data is dropped. */
  kill(): void {
    this._state = 'killed';
    this.pending = P_RST;
    this.expiry = undefined;
    this.connecting = false;
    this.tx.clear();
  }

  private take(bit: number): boolean {
    if ((this.pending & bit) === 0) return false;
    this.pending &= ~bit;
    return true;
  }

  /** What the guest may still receive (0 when it says it has less room than it already has in flight). */
  private peerAvailCredit(): number {
    const inFlight = u32(this.rxCnt - this.peerFwdCnt);
    return inFlight >= this.peerBufAlloc ? 0 : this.peerBufAlloc - inFlight;
  }

  /** The free space the guest last heard of is under the threshold. */
  private peerNeedsCreditUpdate(): boolean {
    const seenFree = VSOCK_CONN_TX_BUF_SIZE - u32(this.fwdCnt - this.lastFwdCntToPeer);
    return seenFree < VSOCK_CONN_CREDIT_UPDATE_THRESHOLD;
  }

  /**
   * Produces the next packet for the guest, if any: fills `h` (all fields)
   * and, for RW, receives the payload through `dataViews(max)` (fresh views
   * of the rx buffer after its header). `cap` is the payload room in the rx
   * buffer. Returns false when there is nothing to send.
   */
  recvPkt(h: VsockHeader, cap: number, dataViews: (max: number) => Uint8Array[]): boolean {
    const produced = this.fillPkt(h, cap, dataViews);
    if (produced) {
      h.srcCid = BigInt(VMADDR_CID_HOST);
      h.dstCid = this.peerCid;
      h.srcPort = this.localPort;
      h.dstPort = this.peerPort;
      h.type = VIRTIO_VSOCK_TYPE_STREAM;
      h.bufAlloc = VSOCK_CONN_TX_BUF_SIZE;
      h.fwdCnt = this.fwdCnt;
      this.lastFwdCntToPeer = this.fwdCnt;
    }
    return produced;
  }

  private fillPkt(h: VsockHeader, cap: number, dataViews: (max: number) => Uint8Array[]): boolean {
    h.len = 0;
    h.flags = 0;
    if (this.take(P_RST)) {
      h.op = VIRTIO_VSOCK_OP_RST;
      return true;
    }
    if (this.take(P_RESPONSE)) {
      this._state = 'established';
      h.op = VIRTIO_VSOCK_OP_RESPONSE;
      return true;
    }
    if (this.take(P_REQUEST)) {
      this.expiry = this.env.now() + VSOCK_CONN_REQUEST_TIMEOUT_MS;
      h.op = VIRTIO_VSOCK_OP_REQUEST;
      return true;
    }
    if (this.pending & P_RW) {
      if (!(this._state === 'established' || (this._state === 'peer-closed' && !this.peerRecvOff))) {
        // Data for a connection that may not carry it any more: kill it.
        this.pending &= ~P_RW;
        this.kill();
        this.pending = 0;
        h.op = VIRTIO_VSOCK_OP_RST;
        return true;
      }
      const credit = this.peerAvailCredit();
      if (credit === 0) {
        this.pending &= ~P_RW;
        h.op = VIRTIO_VSOCK_OP_CREDIT_REQUEST;
        return true;
      }
      // An rx buffer with no room for data: keep RW pending for a bigger one.
      if (cap > 0) {
        this.pending &= ~P_RW;
        const r = this.readHost(Math.min(cap, credit, VSOCK_MAX_PKT_BUF_SIZE), dataViews);
        if (r > 0) {
          h.op = VIRTIO_VSOCK_OP_RW;
          h.len = r;
          this.rxCnt = u32(this.rxCnt + r);
          this.env.metrics['rx_bytes_count'] += r;
          this.pending |= P_RW; // there may be more
          return true;
        }
        if (r === 0) {
          // EOF: the host end is gone; ask the guest to close both ways.
          this._state = 'local-closed';
          this.expiry = this.env.now() + VSOCK_CONN_SHUTDOWN_TIMEOUT_MS;
          h.op = VIRTIO_VSOCK_OP_SHUTDOWN;
          h.flags = VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE | VIRTIO_VSOCK_SHUTDOWN_F_SEND;
          return true;
        }
        if (r !== -EAGAIN) {
          this.env.metrics['rx_read_fails']++;
          logger.warn(`vsock: reading host socket of ${this.describe()} failed (errno ${-r}); resetting it`);
          this.kill();
          this.pending = 0;
          h.op = VIRTIO_VSOCK_OP_RST;
          return true;
        }
        // EAGAIN: drained; RW stays cleared until the next EPOLLIN.
      }
    }
    // A credit update carries nothing new when another packet (which has the credit fields) is due.
    if (this.take(P_CREDIT_UPDATE) && this.pending === 0) {
      h.op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
      return true;
    }
    return false;
  }

  /** recv() up to `max` bytes into the rx buffer: bytes read (> 0), 0 at EOF, or -errno. */
  private readHost(max: number, dataViews: (max: number) => Uint8Array[]): number {
    let total = 0;
    for (const v of dataViews(max)) {
      const r = libc.tryRecv(this.fd, v, MSG_DONTWAIT);
      if (r <= 0) return total > 0 ? total : r; // EOF or error shows up again on the next read
      total += r;
      if (r < v.byteLength) break;
    }
    return total;
  }

  /**
   * A packet from the guest for this connection (not RST, which the muxer
   * handles). `payload` gives views of its `h.len` data bytes.
   */
  sendPkt(h: VsockHeader, payload: (len: number) => Uint8Array[]): void {
    this.peerBufAlloc = h.bufAlloc;
    this.peerFwdCnt = h.fwdCnt;
    const st = this._state;
    switch (h.op) {
      case VIRTIO_VSOCK_OP_RW:
        if (st === 'established' || (st === 'peer-closed' && !this.peerSendOff)) {
          if (h.len === 0) return;
          if (!this.writeGuestData(payload(h.len), h.len)) return;
          if (this.peerNeedsCreditUpdate()) this.pending |= P_CREDIT_UPDATE;
          return;
        }
        break;
      case VIRTIO_VSOCK_OP_RESPONSE:
        if (st === 'local-init') {
          this.expiry = undefined;
          this._state = 'established';
          return;
        }
        break;
      case VIRTIO_VSOCK_OP_SHUTDOWN:
        if (st === 'established' || st === 'peer-closed') {
          this._state = 'peer-closed';
          if (h.flags & VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE) this.peerRecvOff = true;
          if (h.flags & VIRTIO_VSOCK_SHUTDOWN_F_SEND) this.peerSendOff = true;
          if (this.peerRecvOff) this.pending &= ~P_RW;
          if (this.peerRecvOff && this.peerSendOff) {
            if (this.tx.length === 0) this.pending |= P_RST;
            else this.expiry ??= this.env.now() + VSOCK_CONN_SHUTDOWN_TIMEOUT_MS;
          }
          this.maybeShutHostWrite();
          return;
        }
        break;
      case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        // The credit fields were taken above.
        if (st === 'established' || st === 'peer-init' || (st === 'peer-closed' && !this.peerRecvOff)) return;
        break;
      case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        if (st === 'established' || st === 'peer-init' || (st === 'peer-closed' && !this.peerSendOff)) {
          this.pending |= P_CREDIT_UPDATE;
          return;
        }
        break;
    }
    this.env.stats.txInvalidForState++;
    if (logger.isEnabled('Debug')) logger.debug(`vsock: dropping op ${h.op} for ${this.describe()} in state ${st}`);
  }

  /** Sends guest data to the host socket, buffering what it does not take; false when the connection was reset. */
  private writeGuestData(views: Uint8Array[], len: number): boolean {
    const m = this.env.metrics;
    if (this.tx.length > 0) {
      // Already waiting for EPOLLOUT: keep the order, buffer behind what is there.
      if (len > this.tx.free) return this.creditViolation(len);
      for (const v of views) this.tx.push(v);
      return true;
    }
    let written = 0;
    let i = 0;
    let partial = 0;
    for (; i < views.length; i++) {
      const v = views[i]!;
      const r = libc.trySend(this.fd, v, SEND_FLAGS);
      if (r < 0) {
        if (r === -EAGAIN) break;
        m['tx_bytes_count'] += written;
        m['tx_write_fails']++;
        logger.warn(`vsock: writing to host socket of ${this.describe()} failed (errno ${-r}); resetting it`);
        this.kill();
        return false;
      }
      written += r;
      if (r < v.byteLength) {
        partial = r;
        break;
      }
    }
    this.fwdCnt = u32(this.fwdCnt + written);
    m['tx_bytes_count'] += written;
    if (written < len) {
      if (len - written > this.tx.free) return this.creditViolation(len);
      for (; i < views.length; i++) {
        this.tx.push(partial > 0 ? views[i]!.subarray(partial) : views[i]!);
        partial = 0;
      }
    }
    return true;
  }

  private creditViolation(len: number): boolean {
    this.env.stats.txCreditViolations++;
    logger.warn(`vsock: guest sent ${len} bytes on ${this.describe()} with ${this.tx.length} already buffered: more than the advertised credit; resetting it`);
    this.kill();
    return false;
  }

  /** Once the guest will send nothing more and all it sent went out, the host peer gets EOF. */
  private maybeShutHostWrite(): void {
    if (!this.peerSendOff || this.hostWriteShut || this.tx.length > 0 || this._state === 'killed') return;
    this.hostWriteShut = true;
    libc.tryShutdown(this.fd, SHUT_WR);
  }

  /** Writes the host-initiated handshake's `OK <port>\n`; false (and the connection killed) when the socket does not take it whole. */
  sendAck(): boolean {
    const msg = new TextEncoder().encode(`OK ${this.localPort}\n`);
    const r = libc.trySend(this.fd, msg, SEND_FLAGS);
    if (r === msg.byteLength) return true;
    logger.warn(`vsock: could not acknowledge host connection ${this.describe()} (${r < 0 ? `errno ${-r}` : 'short write'}); resetting it`);
    this.kill();
    return false;
  }

  /** Events the host socket should be polled for (0: none, unregister it). */
  polledEvents(): number {
    if (this.connecting) return EPOLLOUT;
    let ev = this.tx.length > 0 ? EPOLLOUT : 0;
    const st = this._state;
    const mayRead = !(st === 'killed' || st === 'local-closed' || (st === 'peer-closed' && this.peerRecvOff));
    // No credit: wait for the guest's update. RW pending: wait for an rx buffer (polling would spin, epoll is level-triggered).
    if (mayRead && this.peerAvailCredit() > 0 && (this.pending & P_RW) === 0) ev |= EPOLLIN;
    return ev;
  }

  /** The host socket is ready (`events` from epoll). */
  notify(events: number): void {
    const m = this.env.metrics;
    if (this.connecting) {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      let err: number;
      try {
        err = libc.getsockoptInt(this.fd, SOL_SOCKET, SO_ERROR);
      } catch (e) {
        err = (e as libc.SysError).errno ?? -1;
      }
      this.connecting = false;
      if (err === 0) {
        this.pending |= P_RESPONSE;
      } else {
        this.env.stats.guestConnectsRefused++;
        this.kill();
      }
      return;
    }
    const interest = this.registered;
    if ((events & EPOLLIN) || ((events & (EPOLLERR | EPOLLHUP)) && (interest & EPOLLIN))) {
      // recv() will tell data, EOF or the error apart.
      this.pending |= P_RW;
    }
    if ((events & EPOLLOUT) || ((events & (EPOLLERR | EPOLLHUP)) && (interest & EPOLLOUT))) {
      if (this.tx.length === 0) {
        if (events & EPOLLOUT) m['conn_event_fails']++;
      } else {
        const r = this.tx.flushTo(this.fd);
        if (r < 0) {
          m['tx_flush_fails']++;
          logger.warn(`vsock: flushing to host socket of ${this.describe()} failed (errno ${-r}); resetting it`);
          this.kill();
          return;
        }
        this.fwdCnt = u32(this.fwdCnt + r);
        m['tx_bytes_count'] += r;
        if (this._state === 'peer-closed' && this.peerRecvOff && this.peerSendOff && this.tx.length === 0) {
          this.pending |= P_RST;
        } else if (this.peerNeedsCreditUpdate()) {
          this.pending |= P_CREDIT_UPDATE;
        }
        this.maybeShutHostWrite();
      }
    }
    if ((events & (EPOLLERR | EPOLLHUP)) && !(interest & (EPOLLIN | EPOLLOUT))) {
      m['conn_event_fails']++;
      this.kill();
    }
  }

  describe(): string {
    return `connection host port ${this.localPort} <-> guest ${this.peerCid}:${this.peerPort}`;
  }
}

/** The connection table key of (local port, peer port). */
export function connKey(localPort: number, peerPort: number): string {
  return `${localPort}:${peerPort}`;
}
