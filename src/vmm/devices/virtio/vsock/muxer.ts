/**
 * The Unix-socket side of the vsock device: Firecracker's VsockMuxer
 * (devices/virtio/vsock/unix/muxer.rs) behaviour, on non-blocking fds that
 * the device thread's epoll loop serves.
 *
 *  - Host-initiated connections: the muxer listens on `udsPath`. A host
 *    process connects and writes `CONNECT <port>\n` (case-insensitive
 *    "connect", decimal u32 port); the muxer gives the connection a local
 *    port, round-robin in [2^30, 2^31), and sends the guest a REQUEST from
 *    (host CID 2, that port) to (guest CID, port). The guest's RESPONSE makes
 *    the muxer write `OK <local port>\n` to the host socket; from then on the
 *    socket carries the stream. An RST (or no answer within 2 s) closes it. A
 *    malformed command, or EOF before it, closes the host socket.
 *  - Guest-initiated connections: a REQUEST to host port P connects to
 *    `<udsPath>_<P>`; success → RESPONSE, failure → RST.
 *  - Packets for no connection are answered with RST (never an RST for an
 *    RST), packets of an unknown type with RST, packets for another CID or
 *    from a CID other than the guest's are dropped.
 *
 * Bounds (whatever the guest or host processes do): at most
 * `maxConnections` connections (counting host sockets still waiting for
 * their CONNECT line); a connection buffers at most 64 KiB of guest data and
 * at most one of each pending control packet; at most VSOCK_MAX_PENDING_RSTS
 * RSTs for unknown connections wait for rx buffers (more are dropped).
 *
 * The muxer is driven by the device (VsockBackend): sendPkt() for each tx
 * packet, recvPkt() for each rx buffer, sweep() for timers; host socket
 * events arrive through the event loop and end with `onActivity()` so the
 * device can deliver what they produced.
 */
import {
  AF_UNIX,
  EAGAIN,
  ECONNABORTED,
  EINPROGRESS,
  EPOLLIN,
  MSG_DONTWAIT,
  MSG_PEEK,
  SOCK_NONBLOCK,
  SOCK_STREAM,
} from '../../../../generated/libc.js';
import {
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_TYPE_STREAM,
  VMADDR_CID_HOST,
} from '../../../../generated/vsock.js';
import { logger } from '../../../../logger/logger.js';
import * as libc from '../../../../sys/libc.js';
import type { BackendEvents } from '../backend.js';
import { connKey, VsockConnection, type ConnectionEnv } from './connection.js';
import type { VsockMetrics, VsockStats } from './metrics.js';
import { describeHeader, type VsockHeader } from './packet.js';

/** Firecracker's MAX_CONNECTIONS. */
export const VSOCK_MAX_CONNECTIONS = 1023;
/** Firecracker's MUXER_RXQ_SIZE, here the bound on RSTs for unknown connections waiting for rx buffers. */
export const VSOCK_MAX_PENDING_RSTS = 256;
/** Longest `CONNECT <port>\n` line read from a host socket. */
export const VSOCK_CONNECT_LINE_MAX = 32;
/** Backlog of the listening socket. */
export const VSOCK_LISTEN_BACKLOG = 128;
/** Host-initiated connections get local ports in [2^30, 2^31). */
const LOCAL_PORT_BASE = 0x40000000;

const BIG_HOST_CID = BigInt(VMADDR_CID_HOST);
const CONNECT_RE = /^\s*connect\s+(\d{1,10})\s*$/i;

/** A Unix stream socket bound to `path` and listening (non-blocking, close-on-exec); throws SysError (EADDRINUSE when the path exists). */
export function listenUnix(path: string, backlog = VSOCK_LISTEN_BACKLOG): number {
  const fd = libc.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK);
  try {
    libc.bindUnix(fd, path);
    libc.listen(fd, backlog);
  } catch (e) {
    libc.close(fd);
    throw e;
  }
  return fd;
}

/** A host socket accepted on the listener, waiting for its `CONNECT <port>\n`. */
interface LocalStream {
  readonly fd: number;
  readonly line: Uint8Array;
  len: number;
}

export interface VsockMuxerOptions {
  guestCid: bigint;
  udsPath: string;
  /** Listening socket (non-blocking). */
  listenFd: number;
  maxConnections: number;
  metrics: VsockMetrics;
  stats: VsockStats;
  now: () => number;
}

export class VsockMuxer {
  readonly guestCid: bigint;
  readonly udsPath: string;
  private readonly maxConnections: number;
  private readonly metrics: VsockMetrics;
  private readonly stats: VsockStats;
  private readonly env: ConnectionEnv;
  private listenFd: number;

  private events: BackendEvents | undefined;
  private listening = false;
  /** accept() failed with something other than EAGAIN (EMFILE...): the listener is unregistered until an fd is freed. */
  private listenerPaused = false;
  private readonly conns = new Map<string, VsockConnection>();
  private readonly localStreams = new Map<number, LocalStream>();
  /** Connections with packets for the guest, served round-robin (a Set keeps insertion order). */
  private readonly pendingRx = new Set<VsockConnection>();
  /** Connections with a timer running. */
  private readonly expiring = new Set<VsockConnection>();
  private readonly rsts: Array<{ localPort: number; peerPort: number }> = [];
  private readonly localPorts = new Set<number>();
  private localPortLast = LOCAL_PORT_BASE - 1;

  /** Called at the end of each host socket event, so the device can deliver rx packets. */
  onActivity: () => void = () => {};

  constructor(opts: VsockMuxerOptions) {
    this.guestCid = opts.guestCid;
    this.udsPath = opts.udsPath;
    this.listenFd = opts.listenFd;
    this.maxConnections = opts.maxConnections;
    this.metrics = opts.metrics;
    this.stats = opts.stats;
    this.env = { metrics: opts.metrics, stats: opts.stats, now: opts.now };
  }

  /** Connections in the table (host sockets waiting for their CONNECT line not included). */
  get connectionCount(): number {
    return this.conns.size;
  }

  /** Host sockets accepted and waiting for their CONNECT line. */
  get localStreamCount(): number {
    return this.localStreams.size;
  }

  /** Fds the muxer has registered in the event loop. */
  get registeredFds(): number {
    let n = this.listening ? 1 : 0;
    n += this.localStreams.size;
    for (const c of this.conns.values()) if (c.registered) n++;
    return n;
  }

  /** Starts serving the listening socket. */
  activate(events: BackendEvents): void {
    this.events = events;
    this.listenerPaused = false;
    this.registerListener();
  }

  /** Drops every connection (closing its host socket) and unregisters every fd; the listening socket stays open. */
  reset(): void {
    for (const c of [...this.conns.values()]) this.removeConnection(c);
    for (const fd of [...this.localStreams.keys()]) this.dropLocalStream(fd);
    if (this.listening) {
      this.events?.remove(this.listenFd);
      this.listening = false;
    }
    this.listenerPaused = false;
    this.events = undefined;
    this.pendingRx.clear();
    this.expiring.clear();
    this.rsts.length = 0;
    this.localPorts.clear();
    this.localPortLast = LOCAL_PORT_BASE - 1;
  }

  /** reset(), then closes the listening socket. */
  close(): void {
    this.reset();
    if (this.listenFd >= 0) {
      libc.close(this.listenFd);
      this.listenFd = -1;
    }
  }

  hasPendingRx(): boolean {
    return this.rsts.length > 0 || this.pendingRx.size > 0;
  }

  // ---- guest → host -----------------------------------------------------------

  /** A well-formed tx packet from the guest; `payload(len)` gives views of its data. */
  sendPkt(h: VsockHeader, payload: (len: number) => Uint8Array[]): void {
    if (logger.isEnabled('Debug')) logger.debug(`vsock: tx ${describeHeader(h)}`);
    if (h.srcCid !== this.guestCid) {
      this.stats.txBadSrcCid++;
      logger.warn(`vsock: dropping a packet from CID ${h.srcCid}, not the guest's ${this.guestCid}`);
      return;
    }
    if (h.type !== VIRTIO_VSOCK_TYPE_STREAM) {
      this.stats.txBadType++;
      if (h.op !== VIRTIO_VSOCK_OP_RST) this.enqueueRst(h.dstPort, h.srcPort);
      return;
    }
    if (h.dstCid !== BIG_HOST_CID) {
      this.stats.txBadDstCid++;
      logger.info(`vsock: dropping a packet for unknown CID ${h.dstCid}`);
      return;
    }
    const conn = this.conns.get(connKey(h.dstPort, h.srcPort));
    if (!conn) {
      if (h.op === VIRTIO_VSOCK_OP_REQUEST) this.handlePeerRequest(h);
      else if (h.op !== VIRTIO_VSOCK_OP_RST) {
        this.stats.txUnroutable++;
        this.enqueueRst(h.dstPort, h.srcPort);
      }
      return;
    }
    if (h.op === VIRTIO_VSOCK_OP_RST) {
      this.removeConnection(conn);
      return;
    }
    this.mutate(conn, () => conn.sendPkt(h, payload));
  }

  /**
   * The connection named by a tx packet whose payload could not be read (a
   * `len` beyond its buffer): reset it, as the stream lost data. An unknown
   * connection gets an RST.
   */
  resetFor(h: VsockHeader): void {
    if (h.op === VIRTIO_VSOCK_OP_RST || h.srcCid !== this.guestCid || h.dstCid !== BIG_HOST_CID) return;
    const conn = this.conns.get(connKey(h.dstPort, h.srcPort));
    if (conn) this.killConnection(conn);
    else this.enqueueRst(h.dstPort, h.srcPort);
  }

  private handlePeerRequest(h: VsockHeader): void {
    if (this.conns.size + this.localStreams.size >= this.maxConnections) {
      this.stats.guestConnectsRefused++;
      logger.info(`vsock: connection limit (${this.maxConnections}) reached; refusing guest connection to port ${h.dstPort}`);
      this.enqueueRst(h.dstPort, h.srcPort);
      return;
    }
    const path = `${this.udsPath}_${h.dstPort}`;
    let fd: number;
    try {
      fd = libc.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK);
    } catch (e) {
      this.stats.guestConnectsRefused++;
      logger.warn(`vsock: cannot create a socket for guest connection to port ${h.dstPort}: ${(e as Error).message}`);
      this.enqueueRst(h.dstPort, h.srcPort);
      return;
    }
    // Non-blocking: a listener with a full backlog (EAGAIN) refuses rather than stalling the device thread.
    const r = libc.tryConnectUnix(fd, path);
    if (r !== 0 && r !== -EINPROGRESS) {
      libc.close(fd);
      this.stats.guestConnectsRefused++;
      if (logger.isEnabled('Debug')) logger.debug(`vsock: guest connection to ${path} failed (errno ${-r})`);
      this.enqueueRst(h.dstPort, h.srcPort);
      return;
    }
    this.addConnection(VsockConnection.peerInit(fd, h.dstPort, h.srcPort, this.guestCid, h.bufAlloc, this.env, r !== 0));
  }

  private enqueueRst(localPort: number, peerPort: number): void {
    if (this.rsts.length >= VSOCK_MAX_PENDING_RSTS) {
      this.stats.rstDropped++;
      logger.warn(`vsock: too many RSTs pending; dropping the one for host port ${localPort} <-> guest port ${peerPort}`);
      return;
    }
    this.rsts.push({ localPort, peerPort });
  }

  // ---- host → guest -----------------------------------------------------------

  /**
   * Fills `h` with the next packet for the guest (payload, for RW, through
   * `dataViews`, `cap` bytes of room). Returns false when nothing is due.
   */
  recvPkt(h: VsockHeader, cap: number, dataViews: (max: number) => Uint8Array[]): boolean {
    const rst = this.rsts.shift();
    if (rst) {
      h.srcCid = BIG_HOST_CID;
      h.dstCid = this.guestCid;
      h.srcPort = rst.localPort;
      h.dstPort = rst.peerPort;
      h.len = 0;
      h.type = VIRTIO_VSOCK_TYPE_STREAM;
      h.op = VIRTIO_VSOCK_OP_RST;
      h.flags = 0;
      h.bufAlloc = 0;
      h.fwdCnt = 0;
      return true;
    }
    for (let tries = this.pendingRx.size; tries > 0; tries--) {
      const conn = this.pendingRx.values().next().value as VsockConnection;
      this.pendingRx.delete(conn);
      let produced = false;
      this.mutate(conn, () => {
        produced = conn.recvPkt(h, cap, dataViews);
      });
      if (!produced) continue;
      if (h.op === VIRTIO_VSOCK_OP_RST) this.removeConnection(conn);
      return true;
    }
    return false;
  }

  // ---- timers -------------------------------------------------------------------

  /** Resets the connections whose timer has expired. */
  sweep(now: number): void {
    for (const c of [...this.expiring]) {
      if (c.expiry === undefined) this.expiring.delete(c);
      else if (c.expiry <= now) {
        this.expiring.delete(c);
        logger.info(`vsock: ${c.describe()} timed out in state ${c.state}; resetting it`);
        this.killConnection(c);
      }
    }
  }

  /** The earliest running timer (monotonic ms), if any. */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const c of this.expiring) {
      if (c.expiry === undefined) continue;
      if (next === undefined || c.expiry < next) next = c.expiry;
    }
    return next;
  }

  // ---- connections ----------------------------------------------------------------

  private addConnection(conn: VsockConnection): void {
    this.conns.set(conn.key, conn);
    if (conn.hostInitiated) this.localPorts.add(conn.localPort);
    this.metrics['conns_added']++;
    this.afterMutation(conn);
  }

  private removeConnection(conn: VsockConnection): void {
    if (this.conns.get(conn.key) !== conn) return;
    this.conns.delete(conn.key);
    this.pendingRx.delete(conn);
    this.expiring.delete(conn);
    if (conn.hostInitiated) this.localPorts.delete(conn.localPort);
    this.setInterest(conn, 0);
    libc.close(conn.fd);
    this.metrics['conns_removed']++;
    this.resumeListener();
  }

  private killConnection(conn: VsockConnection): void {
    this.mutate(conn, () => conn.kill());
  }

  /**
   * Runs `fn` on a connection, then does what its new state calls for
   * (Firecracker's apply_conn_mutation): the `OK <port>\n` of a host-initiated
   * connection the guest accepted, rx scheduling, the timer, the fd's
   * registration for the events it now wants.
   */
  private mutate(conn: VsockConnection, fn: () => void): void {
    const prev = conn.state;
    fn();
    if (this.conns.get(conn.key) !== conn) return;
    if (prev === 'local-init' && conn.state === 'established') conn.sendAck();
    if (prev !== 'killed' && conn.state === 'killed') this.metrics['conns_killed']++;
    this.afterMutation(conn);
  }

  private afterMutation(conn: VsockConnection): void {
    if (conn.hasPendingRx) this.pendingRx.add(conn);
    if (conn.expiry !== undefined) this.expiring.add(conn);
    this.setInterest(conn, conn.polledEvents());
  }

  /** (Re)registers a connection's fd for `want` (0: unregistered). The event loop has no modify, so a change is remove + add. */
  private setInterest(conn: VsockConnection, want: number): void {
    if (conn.registered === want) return;
    const ev = this.events;
    if (!ev) {
      conn.registered = 0;
      return;
    }
    if (conn.registered !== 0) {
      ev.remove(conn.fd);
      conn.registered = 0;
    }
    if (want === 0) return;
    conn.handler ??= (events: number): void => this.onConnEvent(conn, events);
    try {
      ev.add(conn.fd, conn.handler, want);
      conn.registered = want;
    } catch (e) {
      this.metrics['muxer_event_fails']++;
      logger.error(`vsock: cannot poll the host socket of ${conn.describe()}: ${(e as Error).message}; resetting it`);
      this.metrics['conns_killed']++;
      conn.kill();
      this.pendingRx.add(conn);
    }
  }

  private onConnEvent(conn: VsockConnection, events: number): void {
    if (this.conns.get(conn.key) !== conn) return;
    this.mutate(conn, () => conn.notify(events));
    this.onActivity();
  }

  // ---- host-initiated connections ------------------------------------------------

  private registerListener(): void {
    if (!this.events || this.listening || this.listenFd < 0) return;
    try {
      this.events.add(this.listenFd, () => this.onListenerEvent(), EPOLLIN);
      this.listening = true;
    } catch (e) {
      this.metrics['muxer_event_fails']++;
      logger.error(`vsock: cannot poll the listening socket ${this.udsPath}: ${(e as Error).message}`);
    }
  }

  /** After an fd was freed: poll the listener again if accept() had run out of fds. */
  private resumeListener(): void {
    if (!this.listenerPaused) return;
    this.listenerPaused = false;
    this.registerListener();
  }

  private onListenerEvent(): void {
    // Bounded per event, so a flood of host connections cannot monopolize the device thread.
    for (let i = 0; i < 64; i++) {
      const fd = libc.tryAccept4(this.listenFd, SOCK_NONBLOCK);
      if (fd < 0) {
        if (fd === -EAGAIN || fd === -ECONNABORTED) break;
        this.metrics['muxer_event_fails']++;
        logger.warn(`vsock: accept on ${this.udsPath} failed (errno ${-fd}); not accepting until a connection closes`);
        // Level-triggered: leaving it registered would spin on EMFILE/ENFILE.
        if (this.listening) {
          this.events?.remove(this.listenFd);
          this.listening = false;
          this.listenerPaused = true;
        }
        break;
      }
      if (this.conns.size + this.localStreams.size >= this.maxConnections) {
        this.stats.hostConnectsRefused++;
        logger.warn(`vsock: connection limit (${this.maxConnections}) reached; refusing a host connection`);
        libc.close(fd);
        continue;
      }
      const st: LocalStream = { fd, line: new Uint8Array(VSOCK_CONNECT_LINE_MAX), len: 0 };
      try {
        this.events!.add(fd, () => this.onLocalStreamEvent(st), EPOLLIN);
      } catch (e) {
        this.metrics['muxer_event_fails']++;
        logger.error(`vsock: cannot poll an accepted host socket: ${(e as Error).message}`);
        libc.close(fd);
        continue;
      }
      this.localStreams.set(fd, st);
    }
  }

  /** Reads the `CONNECT <port>\n` line, never past its newline (what follows is stream data). */
  private onLocalStreamEvent(st: LocalStream): void {
    if (this.localStreams.get(st.fd) !== st) return;
    const room = st.line.subarray(st.len);
    const peeked = libc.tryRecv(st.fd, room, MSG_PEEK | MSG_DONTWAIT);
    if (peeked === -EAGAIN) return;
    if (peeked <= 0) {
      this.refuseLocalStream(st, peeked === 0 ? 'EOF before CONNECT' : `read failed (errno ${-peeked})`);
      return;
    }
    const nl = room.subarray(0, peeked).indexOf(0x0a);
    const take = nl >= 0 ? nl + 1 : peeked;
    const r = libc.tryRecv(st.fd, room.subarray(0, take), MSG_DONTWAIT);
    if (r !== take) {
      this.refuseLocalStream(st, `read failed (${r < 0 ? `errno ${-r}` : 'short read'})`);
      return;
    }
    st.len += take;
    if (nl < 0) {
      if (st.len >= st.line.byteLength) this.refuseLocalStream(st, 'no newline in the first 32 bytes');
      return;
    }
    const text = new TextDecoder('utf-8', { fatal: false }).decode(st.line.subarray(0, st.len));
    const m = CONNECT_RE.exec(text);
    const port = m ? Number(m[1]) : NaN;
    if (!m || port > 0xffffffff) {
      this.refuseLocalStream(st, `bad command ${JSON.stringify(text.trimEnd())}`);
      return;
    }
    this.localStreams.delete(st.fd);
    this.events?.remove(st.fd);
    const localPort = this.allocateLocalPort(port);
    this.addConnection(VsockConnection.localInit(st.fd, localPort, port, this.guestCid, this.env));
    this.onActivity();
  }

  private refuseLocalStream(st: LocalStream, why: string): void {
    this.stats.hostConnectsRefused++;
    logger.info(`vsock: closing host connection on ${this.udsPath}: ${why}`);
    this.dropLocalStream(st.fd);
  }

  private dropLocalStream(fd: number): void {
    if (!this.localStreams.delete(fd)) return;
    this.events?.remove(fd);
    libc.close(fd);
    this.resumeListener();
  }

  /** The next free local port in [2^30, 2^31), round-robin. */
  private allocateLocalPort(peerPort: number): number {
    for (;;) {
      this.localPortLast = ((this.localPortLast + 1) & 0x7fffffff) | LOCAL_PORT_BASE;
      const p = this.localPortLast;
      if (!this.localPorts.has(p) && !this.conns.has(connKey(p, peerPort))) return p;
    }
  }
}
