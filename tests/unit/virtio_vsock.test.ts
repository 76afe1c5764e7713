/**
 * virtio-vsock backend: the driver harness plays the guest's virtio_vsock
 * (rx, tx and event queues on test memory), a real EventManager stands in
 * for the device thread's epoll loop (pumped with runOnce), and the host
 * side is real Unix sockets in a temp dir: node:net peers (pumped between
 * awaits) and, where the test must control exactly when the host reads,
 * raw non-blocking sockets through libc.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import {
  AF_UNIX, EADDRINUSE, EAGAIN, MSG_DONTWAIT, MSG_NOSIGNAL, SOCK_NONBLOCK, SOCK_STREAM,
} from '../../src/generated/libc.js';
import { VIRTIO_F_IN_ORDER, VIRTIO_F_RING_EVENT_IDX, VIRTIO_ID_VSOCK, featureBit } from '../../src/generated/virtio.js';
import {
  VIRTIO_VSOCK_HDR_SIZE,
  VIRTIO_VSOCK_OP_CREDIT_REQUEST,
  VIRTIO_VSOCK_OP_CREDIT_UPDATE,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RESPONSE,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_OP_RW,
  VIRTIO_VSOCK_OP_SHUTDOWN,
  VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE,
  VIRTIO_VSOCK_SHUTDOWN_F_SEND,
  VIRTIO_VSOCK_TYPE_SEQPACKET,
  VIRTIO_VSOCK_TYPE_STREAM,
} from '../../src/generated/vsock.js';
import * as libc from '../../src/sys/libc.js';
import type { Queue } from '../../src/virtio/queue/index.js';
import { EventManager } from '../../src/vmm/event_manager.js';
import {
  decodeHeader,
  encodeHeader,
  listenUnix,
  VSOCK_CONN_REQUEST_TIMEOUT_MS,
  VSOCK_CONN_TX_BUF_SIZE,
  VsockBackend,
  type VsockBackendOptions,
  type VsockHeader,
} from '../../src/vmm/devices/virtio/vsock/index.js';
import { createTestMemory, VirtioDriver } from '../helpers/virtio_driver.js';

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-vsock-'));
after(() => fs.rmSync(tmpDir, { recursive: true, force: true }));

let sockNo = 0;
const udsPath = (): string => path.join(tmpDir, `v${sockNo++}.sock`);

const GUEST_CID = 3;
const HOST_CID = 2;
const RX_BUF = 4096;

/** The device thread's epoll loop, recording which fds the backend registered. */
class TestLoop {
  readonly em = new EventManager();
  readonly fds = new Set<number>();
  add(fd: number, handler: (events: number) => void, events?: number): void {
    this.em.add(fd, handler, events);
    this.fds.add(fd);
  }
  remove(fd: number): void {
    this.em.remove(fd);
    this.fds.delete(fd);
  }
  pump(ms = 0): number {
    return this.em.runOnce(ms);
  }
}

interface Pkt {
  hdr: VsockHeader;
  data: Uint8Array;
}

function header(over: Partial<VsockHeader>): VsockHeader {
  return {
    srcCid: BigInt(GUEST_CID), dstCid: BigInt(HOST_CID), srcPort: 0, dstPort: 0, len: 0,
    type: VIRTIO_VSOCK_TYPE_STREAM, op: VIRTIO_VSOCK_OP_RW, flags: 0, bufAlloc: 256 * 1024, fwdCnt: 0, ...over,
  };
}

/** The guest: its three virtqueues, and the device under test wired to a TestLoop. */
class Guest {
  readonly mem = createTestMemory();
  rx!: VirtioDriver;
  tx!: VirtioDriver;
  ev!: VirtioDriver;
  queues!: Queue[];
  readonly loop = new TestLoop();
  readonly backend: VsockBackend;
  readonly inbox: Pkt[] = [];
  interrupts = 0;
  /** Give back a fresh rx buffer for each one used. */
  autoRefill = true;
  /** rx buffers as header + data descriptors (older Linux) instead of one. */
  splitRx = false;

  constructor(readonly uds: string, opts: Partial<VsockBackendOptions> = {}) {
    this.backend = new VsockBackend({ guestCid: GUEST_CID, udsPath: uds, ...opts });
    this.initRings();
  }

  /** Fresh rings and device-side queues (what the driver sets up before DRIVER_OK). */
  initRings(eventIdx = false): void {
    this.rx = new VirtioDriver(this.mem, { size: 256, ringBase: 0x10000, dataBase: 0x40000, dataSize: 0x40000, eventIdx });
    this.tx = new VirtioDriver(this.mem, { size: 256, ringBase: 0x18000, dataBase: 0x80000, dataSize: 0x60000, eventIdx });
    this.ev = new VirtioDriver(this.mem, { size: 16, ringBase: 0x20000, dataBase: 0xe0000, dataSize: 0x10000, eventIdx });
    this.queues = [this.rx.createQueue(), this.tx.createQueue(), this.ev.createQueue()];
    this.inbox.length = 0;
  }

  activate(rxBuffers = 16, ackedFeatures = 0n): this {
    this.backend.activate({
      mem: this.mem,
      queues: this.queues,
      ackedFeatures,
      interrupt: () => { this.interrupts++; },
      events: this.loop,
    });
    this.provideRx(rxBuffers);
    return this;
  }

  provideRx(n: number, size = RX_BUF + VIRTIO_VSOCK_HDR_SIZE): void {
    for (let i = 0; i < n; i++) {
      if (this.splitRx && size > VIRTIO_VSOCK_HDR_SIZE) {
        this.rx.addChain([{ len: VIRTIO_VSOCK_HDR_SIZE, write: true }, { len: size - VIRTIO_VSOCK_HDR_SIZE, write: true }], { publish: false });
      } else {
        this.rx.addChain([{ len: size, write: true }], { publish: false });
      }
    }
    this.rx.publish();
    this.backend.processQueue(0);
  }

  /** Puts one packet on the tx queue and kicks. Returns the used length (always 0) once the device took it. */
  send(h: Partial<VsockHeader>, data: Uint8Array = new Uint8Array(0)): void {
    const hdr = header({ len: data.length, ...h });
    const bytes = new Uint8Array(VIRTIO_VSOCK_HDR_SIZE + data.length);
    bytes.set(encodeHeader(hdr));
    bytes.set(data, VIRTIO_VSOCK_HDR_SIZE);
    this.tx.addChain([{ data: bytes }]);
    this.backend.processQueue(1);
    for (const u of this.tx.drainUsed()) assert.equal(u.len, 0, 'tx chains are returned with length 0');
  }

  /** Moves used rx buffers into the inbox (refilling the ring); returns the inbox. */
  poll(): Pkt[] {
    let used = 0;
    for (let u = this.rx.popUsed(); u; u = this.rx.popUsed()) {
      used++;
      const all = new Uint8Array(u.buffers.reduce((n, b) => n + b.len, 0));
      let at = 0;
      for (const b of u.buffers) {
        all.set(this.rx.read(b.addr, b.len), at);
        at += b.len;
      }
      if (u.len === 0) continue; // an unusable buffer handed back
      assert.ok(u.len >= VIRTIO_VSOCK_HDR_SIZE, `used length ${u.len} holds a header`);
      const hdr = decodeHeader(all.subarray(0, VIRTIO_VSOCK_HDR_SIZE));
      assert.equal(u.len, VIRTIO_VSOCK_HDR_SIZE + hdr.len, 'used length = header + payload');
      this.inbox.push({ hdr, data: all.slice(VIRTIO_VSOCK_HDR_SIZE, u.len) });
    }
    if (used > 0 && this.autoRefill) this.provideRx(used);
    return this.inbox;
  }

  /** Removes and returns the inbox's packets matching `pred`. */
  take(pred: (p: Pkt) => boolean = () => true): Pkt[] {
    this.poll();
    const out: Pkt[] = [];
    for (let i = 0; i < this.inbox.length;) {
      if (pred(this.inbox[i]!)) out.push(...this.inbox.splice(i, 1));
      else i++;
    }
    return out;
  }

  close(): void {
    this.backend.close();
    this.loop.em.close();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Pumps the device loop (and lets Node's own loop run) until `cond` holds. */
async function until(g: Guest, cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    g.loop.pump(0);
    g.poll();
    if (cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; inbox: ${JSON.stringify(g.inbox.map((p) => [p.hdr.op, p.hdr.srcPort, p.hdr.dstPort, p.hdr.len]))}`);
    await sleep(2);
  }
}

/** Pumps for a while: for asserting that something does NOT happen. */
async function settle(g: Guest, ms = 60): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    g.loop.pump(0);
    g.poll();
    await sleep(2);
  }
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const opIs = (op: number) => (p: Pkt): boolean => p.hdr.op === op;

/** A node:net client of the muxer's listener collecting what it reads. */
function hostClient(uds: string): { sock: net.Socket; got: () => string; closed: () => boolean } {
  const sock = net.createConnection(uds);
  const chunks: Buffer[] = [];
  let closed = false;
  sock.on('data', (d) => chunks.push(d));
  sock.on('close', () => { closed = true; });
  sock.on('error', () => { /* ECONNRESET when the device closes: fine */ });
  return { sock, got: () => Buffer.concat(chunks).toString(), closed: () => closed };
}

/** Host-initiated connection through to an established stream: returns the client, the guest's view and the local port. */
async function hostConnect(g: Guest, guestPort: number, extra = ''): Promise<{ c: ReturnType<typeof hostClient>; localPort: number }> {
  const c = hostClient(g.uds);
  c.sock.write(`CONNECT ${guestPort}\n${extra}`);
  await until(g, () => g.inbox.some((p) => p.hdr.op === VIRTIO_VSOCK_OP_REQUEST && p.hdr.dstPort === guestPort), 'REQUEST');
  const [req] = g.take((p) => p.hdr.op === VIRTIO_VSOCK_OP_REQUEST && p.hdr.dstPort === guestPort);
  const localPort = req!.hdr.srcPort;
  g.send({ op: VIRTIO_VSOCK_OP_RESPONSE, srcPort: guestPort, dstPort: localPort });
  await until(g, () => c.got().includes('\n'), 'OK line');
  assert.equal(c.got(), `OK ${localPort}\n`);
  return { c, localPort };
}

/** A raw non-blocking host listener at `<uds>_<port>` whose accepted socket the test reads and writes by hand. */
class RawListener {
  readonly fd: number;
  constructor(readonly path: string) {
    this.fd = listenUnix(path);
  }
  accept(): number {
    const fd = libc.tryAccept4(this.fd, SOCK_NONBLOCK);
    assert.ok(fd >= 0, `accept: errno ${-fd}`);
    return fd;
  }
  close(): void {
    libc.close(this.fd);
    fs.rmSync(this.path, { force: true });
  }
}

function readAll(fd: number, max = 1 << 20): { data: Uint8Array; eof: boolean } {
  const out: Uint8Array[] = [];
  let total = 0;
  let eof = false;
  const buf = new Uint8Array(64 * 1024);
  while (total < max) {
    const r = libc.tryRecv(fd, buf, MSG_DONTWAIT);
    if (r === -EAGAIN) break;
    if (r <= 0) {
      eof = true;
      break;
    }
    out.push(buf.slice(0, r));
    total += r;
  }
  return { data: Buffer.concat(out), eof };
}

// ---------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------

test('device identity: type 19, three queues of 256, EVENT_IDX + IN_ORDER, le64 guest_cid', () => {
  const uds = udsPath();
  const b = new VsockBackend({ guestCid: 0x1_0000_0000n - 1n, udsPath: uds });
  try {
    assert.equal(b.deviceType, VIRTIO_ID_VSOCK);
    assert.deepEqual([...b.queueMaxSizes], [256, 256, 256]);
    assert.equal(b.availFeatures, featureBit(VIRTIO_F_RING_EVENT_IDX) | featureBit(VIRTIO_F_IN_ORDER));
    assert.deepEqual([...b.configSpace()], [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    assert.ok(fs.statSync(uds).isSocket(), 'listening at uds_path');
    // Firecracker's bind: the path must not exist.
    assert.throws(() => new VsockBackend({ guestCid: 3, udsPath: uds }), (e: unknown) => e instanceof libc.SysError && e.errno === EADDRINUSE);
  } finally {
    b.close();
  }
  assert.ok(!fs.existsSync(uds), 'close() removes the socket it bound');
  assert.throws(() => new VsockBackend({ guestCid: 2, udsPath: udsPath() }), RangeError);
  assert.throws(() => new VsockBackend({ guestCid: 2 ** 32, udsPath: udsPath() }), RangeError);
  const c = new VsockBackend({ guestCid: 3, udsPath: udsPath() });
  assert.deepEqual([...c.configSpace()], [3, 0, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => c.activate({ mem: createTestMemory(), queues: [], ackedFeatures: 0n, interrupt: () => {} }));
  assert.equal(c.metrics['activate_fails'], 1);
  c.close();
});

test('a listening socket made elsewhere (listenFd) is used and left in place', () => {
  const uds = udsPath();
  const fd = listenUnix(uds);
  const b = new VsockBackend({ guestCid: 3, udsPath: uds, listenFd: fd });
  b.close();
  assert.ok(fs.existsSync(uds));
  fs.rmSync(uds);
});

// ---------------------------------------------------------------------------
// Host-initiated connections
// ---------------------------------------------------------------------------

test('host-initiated: CONNECT/REQUEST/RESPONSE/OK, data both ways, host close → SHUTDOWN, guest RST → cleanup', async () => {
  const g = new Guest(udsPath()).activate();
  g.splitRx = true; // header and data in separate descriptors, as older Linux guests post them
  try {
    const c = hostClient(g.uds);
    c.sock.write('CONNECT 1234\n');
    await until(g, () => g.inbox.length > 0, 'REQUEST');
    const [req] = g.take();
    assert.equal(req!.hdr.op, VIRTIO_VSOCK_OP_REQUEST);
    assert.equal(req!.hdr.srcCid, BigInt(HOST_CID));
    assert.equal(req!.hdr.dstCid, BigInt(GUEST_CID));
    assert.equal(req!.hdr.dstPort, 1234);
    assert.ok(req!.hdr.srcPort >= 2 ** 30 && req!.hdr.srcPort < 2 ** 31, `local port ${req!.hdr.srcPort} in [2^30, 2^31)`);
    assert.equal(req!.hdr.type, VIRTIO_VSOCK_TYPE_STREAM);
    assert.equal(req!.hdr.bufAlloc, VSOCK_CONN_TX_BUF_SIZE);
    assert.equal(req!.hdr.len, 0);
    const lp = req!.hdr.srcPort;
    assert.equal(g.backend.connectionCount, 1);
    assert.ok(g.interrupts > 0, 'the rx interrupt was raised');

    // Host data sent before the guest accepted waits in the socket: no credit yet.
    c.sock.write('early ');
    await settle(g);
    assert.equal(g.inbox.length, 0);

    g.send({ op: VIRTIO_VSOCK_OP_RESPONSE, srcPort: 1234, dstPort: lp });
    await until(g, () => c.got().length > 0 && g.inbox.length > 0, 'OK and the early data');
    assert.equal(c.got(), `OK ${lp}\n`);
    c.sock.write('bird');
    await until(g, () => g.inbox.map((p) => dec(p.data)).join('') === 'early bird', 'host data at the guest');
    for (const p of g.take()) {
      assert.equal(p.hdr.op, VIRTIO_VSOCK_OP_RW);
      assert.equal(p.hdr.srcPort, lp);
      assert.equal(p.hdr.dstPort, 1234);
    }

    g.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 1234, dstPort: lp }, enc('hello from the guest'));
    await until(g, () => c.got().endsWith('hello from the guest'), 'guest data at the host');

    c.sock.end();
    await until(g, () => g.inbox.some(opIs(VIRTIO_VSOCK_OP_SHUTDOWN)), 'SHUTDOWN');
    const [sd] = g.take(opIs(VIRTIO_VSOCK_OP_SHUTDOWN));
    assert.equal(sd!.hdr.flags, VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE | VIRTIO_VSOCK_SHUTDOWN_F_SEND);
    g.send({ op: VIRTIO_VSOCK_OP_RST, srcPort: 1234, dstPort: lp });
    assert.equal(g.backend.connectionCount, 0);
    await until(g, () => c.closed(), 'host socket closed');
    assert.equal(g.loop.fds.size, 1, 'no fds left but the listener');
    assert.equal(g.backend.registeredFds, 1);
    const m = g.backend.metrics;
    assert.equal(m['conns_added'], 1);
    assert.equal(m['conns_removed'], 1);
    assert.equal(m['rx_bytes_count'], 'early bird'.length);
    assert.equal(m['tx_bytes_count'], 'hello from the guest'.length);
    assert.ok(m['rx_packets_count']! >= 4 && m['tx_packets_count']! === 3);
  } finally {
    g.close();
  }
});

test('host-initiated: data right behind the CONNECT line is stream data, not part of the command', async () => {
  const g = new Guest(udsPath()).activate();
  try {
    const c = hostClient(g.uds);
    c.sock.write('connect 77\r\nearly bytes');
    await until(g, () => g.inbox.some(opIs(VIRTIO_VSOCK_OP_REQUEST)), 'REQUEST');
    const [req] = g.take();
    assert.equal(req!.hdr.dstPort, 77);
    g.send({ op: VIRTIO_VSOCK_OP_RESPONSE, srcPort: 77, dstPort: req!.hdr.srcPort });
    await until(g, () => g.inbox.some(opIs(VIRTIO_VSOCK_OP_RW)) && c.got().length > 0, 'RW and OK');
    assert.equal(dec(g.take(opIs(VIRTIO_VSOCK_OP_RW))[0]!.data), 'early bytes');
    assert.equal(c.got(), `OK ${req!.hdr.srcPort}\n`);
    c.sock.destroy();
  } finally {
    g.close();
  }
});

test('host-initiated: the guest refuses (RST) → host socket closed; two connections get distinct ports', async () => {
  const g = new Guest(udsPath()).activate();
  try {
    const a = hostClient(g.uds);
    const b = hostClient(g.uds);
    a.sock.write('CONNECT 9\n');
    b.sock.write('CONNECT 9\n');
    await until(g, () => g.inbox.filter(opIs(VIRTIO_VSOCK_OP_REQUEST)).length === 2, 'two REQUESTs');
    const reqs = g.take();
    assert.notEqual(reqs[0]!.hdr.srcPort, reqs[1]!.hdr.srcPort);
    for (const r of reqs) g.send({ op: VIRTIO_VSOCK_OP_RST, srcPort: 9, dstPort: r.hdr.srcPort });
    await until(g, () => a.closed() && b.closed(), 'host sockets closed');
    assert.equal(a.got(), '', 'no OK for a refused connection');
    assert.equal(g.backend.connectionCount, 0);
    assert.equal(g.backend.registeredFds, 1);
  } finally {
    g.close();
  }
});

test('host-initiated: a REQUEST the guest does not answer is reset after 2 s (retryInMs drives the timer)', async () => {
  let now = 1000;
  const g = new Guest(udsPath(), { now: () => now }).activate();
  try {
    assert.equal(g.backend.retryInMs(), undefined);
    const c = hostClient(g.uds);
    c.sock.write('CONNECT 4\n');
    await until(g, () => g.inbox.some(opIs(VIRTIO_VSOCK_OP_REQUEST)), 'REQUEST');
    const [req] = g.take();
    assert.equal(g.backend.retryInMs(), VSOCK_CONN_REQUEST_TIMEOUT_MS);
    now += VSOCK_CONN_REQUEST_TIMEOUT_MS - 1;
    g.backend.processQueue(0);
    assert.equal(g.take().length, 0, 'not yet');
    assert.equal(g.backend.retryInMs(), 1);
    now += 1;
    assert.equal(g.backend.retryInMs(), 0);
    // What the device thread does when a retry is due.
    for (let i = 0; i < 3; i++) g.backend.processQueue(i);
    const [rst] = g.take();
    assert.equal(rst!.hdr.op, VIRTIO_VSOCK_OP_RST);
    assert.equal(rst!.hdr.srcPort, req!.hdr.srcPort);
    assert.equal(rst!.hdr.dstPort, 4);
    assert.equal(g.backend.retryInMs(), undefined);
    assert.equal(g.backend.metrics['conns_killed'], 1);
    await until(g, () => c.closed(), 'host socket closed');
    // A late RESPONSE finds no connection: RST.
    g.send({ op: VIRTIO_VSOCK_OP_RESPONSE, srcPort: 4, dstPort: req!.hdr.srcPort });
    assert.equal(g.take(opIs(VIRTIO_VSOCK_OP_RST)).length, 1);
  } finally {
    g.close();
  }
});

test('host-initiated: bad commands, EOF before CONNECT and overlong lines close the host socket', async () => {
  const g = new Guest(udsPath()).activate();
  try {
    const bad = ['HELLO 5\n', 'CONNECT\n', 'CONNECT x\n', 'CONNECT 4294967296\n', 'CONNECT 5 6\n', 'x'.repeat(40)];
    const clients = bad.map((line) => {
      const c = hostClient(g.uds);
      c.sock.write(line);
      return c;
    });
    const eof = hostClient(g.uds);
    eof.sock.end();
    await until(g, () => clients.every((c) => c.closed()) && eof.closed(), 'all host sockets closed');
    assert.equal(g.backend.stats.hostConnectsRefused, bad.length + 1);
    assert.equal(g.backend.connectionCount, 0);
    assert.equal(g.backend.pendingHostConnections, 0);
    assert.equal(g.inbox.length, 0, 'the guest saw nothing');
    assert.equal(g.backend.registeredFds, 1);
    // A command split over several writes is fine.
    const slow = hostClient(g.uds);
    slow.sock.write('CONN');
    await settle(g, 20);
    assert.equal(g.backend.pendingHostConnections, 1);
    slow.sock.write('ECT 8\n');
    await until(g, () => g.inbox.some(opIs(VIRTIO_VSOCK_OP_REQUEST)), 'REQUEST');
    assert.equal(g.take()[0]!.hdr.dstPort, 8);
    slow.sock.destroy();
  } finally {
    g.close();
  }
});

// ---------------------------------------------------------------------------
// Guest-initiated connections
// ---------------------------------------------------------------------------

test('guest-initiated: REQUEST → connect to <uds>_<port>, RESPONSE, data both ways, SHUTDOWN → RST and cleanup', async () => {
  const g = new Guest(udsPath()).activate();
  const server = net.createServer();
  const accepted: net.Socket[] = [];
  let received = '';
  let ended = false;
  server.on('connection', (s) => {
    accepted.push(s);
    s.on('data', (d) => { received += d.toString(); });
    s.on('end', () => { ended = true; });
  });
  await new Promise<void>((r) => server.listen(`${g.uds}_5000`, r));
  try {
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, srcPort: 7000, dstPort: 5000, bufAlloc: 65536 });
    const [resp] = g.take();
    assert.equal(resp!.hdr.op, VIRTIO_VSOCK_OP_RESPONSE, 'connected synchronously, RESPONSE at once');
    assert.equal(resp!.hdr.srcPort, 5000);
    assert.equal(resp!.hdr.dstPort, 7000);
    assert.equal(resp!.hdr.srcCid, BigInt(HOST_CID));
    assert.equal(resp!.hdr.bufAlloc, VSOCK_CONN_TX_BUF_SIZE);
    await until(g, () => accepted.length === 1, 'server accepted');

    g.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 7000, dstPort: 5000 }, enc('ping'));
    await until(g, () => received === 'ping', 'guest data at the server');
    accepted[0]!.write('pong');
    await until(g, () => g.inbox.some(opIs(VIRTIO_VSOCK_OP_RW)), 'RW');
    const [rw] = g.take();
    assert.equal(dec(rw!.data), 'pong');
    assert.equal(rw!.hdr.fwdCnt, 4, 'fwd_cnt counts what reached the host socket');

    g.send({ op: VIRTIO_VSOCK_OP_SHUTDOWN, srcPort: 7000, dstPort: 5000, flags: VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE | VIRTIO_VSOCK_SHUTDOWN_F_SEND });
    const [rst] = g.take();
    assert.equal(rst!.hdr.op, VIRTIO_VSOCK_OP_RST);
    assert.equal(g.backend.connectionCount, 0);
    await until(g, () => ended, 'server sees EOF');
    assert.equal(g.backend.registeredFds, 1);
  } finally {
    for (const s of accepted) s.destroy();
    server.close();
    g.close();
  }
});

test('guest-initiated: nobody listening (no socket file, or a stale one) → RST', async () => {
  const g = new Guest(udsPath()).activate();
  try {
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, srcPort: 7001, dstPort: 5001 });
    let [rst] = g.take();
    assert.equal(rst!.hdr.op, VIRTIO_VSOCK_OP_RST);
    assert.equal(rst!.hdr.srcPort, 5001);
    assert.equal(rst!.hdr.dstPort, 7001);
    assert.equal(rst!.hdr.dstCid, BigInt(GUEST_CID));

    // A socket file nobody listens on any more: ECONNREFUSED.
    const stale = new RawListener(`${g.uds}_5002`);
    libc.close(stale.fd);
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, srcPort: 7002, dstPort: 5002 });
    [rst] = g.take();
    assert.equal(rst!.hdr.op, VIRTIO_VSOCK_OP_RST);
    fs.rmSync(stale.path);

    assert.equal(g.backend.stats.guestConnectsRefused, 2);
    assert.equal(g.backend.connectionCount, 0);
    assert.equal(g.backend.metrics['conns_added'], 0);
  } finally {
    g.close();
  }
});

test('guest half-close: SHUTDOWN(SEND) gives the host EOF, the host can still answer', async () => {
  const g = new Guest(udsPath()).activate();
  const l = new RawListener(`${g.uds}_6000`);
  try {
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, srcPort: 1, dstPort: 6000 });
    assert.equal(g.take()[0]!.hdr.op, VIRTIO_VSOCK_OP_RESPONSE);
    const h = l.accept();
    g.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 1, dstPort: 6000 }, enc('request'));
    g.send({ op: VIRTIO_VSOCK_OP_SHUTDOWN, srcPort: 1, dstPort: 6000, flags: VIRTIO_VSOCK_SHUTDOWN_F_SEND });
    const got = readAll(h);
    assert.equal(dec(got.data), 'request');
    assert.ok(got.eof, 'host sees EOF after the guest stopped sending');
    assert.equal(libc.trySend(h, enc('reply'), MSG_NOSIGNAL), 5);
    await until(g, () => g.inbox.some(opIs(VIRTIO_VSOCK_OP_RW)), 'reply');
    assert.equal(dec(g.take()[0]!.data), 'reply');
    // Data after SHUTDOWN(SEND) is not valid any more: dropped.
    g.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 1, dstPort: 6000 }, enc('late'));
    assert.equal(g.backend.stats.txInvalidForState, 1);
    libc.close(h);
    await until(g, () => g.inbox.some(opIs(VIRTIO_VSOCK_OP_SHUTDOWN)), 'SHUTDOWN after host close');
    g.send({ op: VIRTIO_VSOCK_OP_RST, srcPort: 1, dstPort: 6000 });
    assert.equal(g.backend.connectionCount, 0);
  } finally {
    l.close();
    g.close();
  }
});

// ---------------------------------------------------------------------------
// Credit flow control
// ---------------------------------------------------------------------------

test('credit, host → guest: never more than the guest\'s buf_alloc; CREDIT_REQUEST when out; CREDIT_UPDATE resumes', async () => {
  const g = new Guest(udsPath()).activate(32);
  const l = new RawListener(`${g.uds}_6001`);
  try {
    const BUF = 1000;
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, srcPort: 2, dstPort: 6001, bufAlloc: BUF });
    g.take();
    const h = l.accept();
    const data = randomBytes(5000);
    assert.equal(libc.trySend(h, data, MSG_NOSIGNAL), data.length);
    const got: Uint8Array[] = [];
    let consumed = 0;
    let round = 0;
    while (consumed < data.length) {
      await until(g, () => g.inbox.some(opIs(VIRTIO_VSOCK_OP_CREDIT_REQUEST)) || consumed + g.inbox.reduce((n, p) => n + p.hdr.len, 0) === data.length, `round ${round}`);
      await settle(g, 20);
      const pkts = g.take();
      const bytes = pkts.filter(opIs(VIRTIO_VSOCK_OP_RW)).reduce((n, p) => n + p.hdr.len, 0);
      assert.ok(bytes <= BUF, `round ${round}: ${bytes} bytes sent against a credit of ${BUF}`);
      for (const p of pkts) if (p.hdr.op === VIRTIO_VSOCK_OP_RW) got.push(p.data);
      consumed += bytes;
      if (consumed < data.length) {
        assert.equal(bytes, BUF, 'the whole credit was used');
        assert.equal(pkts.at(-1)!.hdr.op, VIRTIO_VSOCK_OP_CREDIT_REQUEST);
        assert.equal(pkts.filter(opIs(VIRTIO_VSOCK_OP_CREDIT_REQUEST)).length, 1, 'one CREDIT_REQUEST, then silence');
        await settle(g, 30);
        assert.equal(g.inbox.length, 0, 'nothing more until the guest updates its credit');
        // The guest consumed everything: fwd_cnt = bytes received so far.
        g.send({ op: VIRTIO_VSOCK_OP_CREDIT_UPDATE, srcPort: 2, dstPort: 6001, bufAlloc: BUF, fwdCnt: consumed });
      }
      round++;
    }
    assert.deepEqual(Buffer.concat(got), data);
    assert.equal(round, 5);
    libc.close(h);
  } finally {
    l.close();
    g.close();
  }
});

test('credit, guest → host: a slow host socket stalls the guest within its credit; reading resumes it; data intact', async () => {
  const g = new Guest(udsPath()).activate(64);
  const l = new RawListener(`${g.uds}_6002`);
  try {
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, srcPort: 3, dstPort: 6002 });
    const [resp] = g.take();
    let peerBufAlloc = resp!.hdr.bufAlloc;
    let peerFwdCnt = resp!.hdr.fwdCnt;
    const h = l.accept();

    const total = 1024 * 1024;
    const data = randomBytes(total);
    let sent = 0;
    const PKT = 16 * 1024;
    const hostGot: Uint8Array[] = [];
    let stalls = 0;
    const credit = (): number => peerBufAlloc - (sent - peerFwdCnt);
    const absorb = (): void => {
      for (const p of g.take()) {
        assert.ok(p.hdr.op === VIRTIO_VSOCK_OP_CREDIT_UPDATE || p.hdr.op === VIRTIO_VSOCK_OP_RW, `op ${p.hdr.op}`);
        peerBufAlloc = p.hdr.bufAlloc;
        peerFwdCnt = p.hdr.fwdCnt;
      }
    };
    while (sent < total) {
      absorb();
      const n = Math.min(PKT, total - sent, credit());
      if (n > 0) {
        g.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 3, dstPort: 6002, fwdCnt: 0 }, data.subarray(sent, sent + n));
        sent += n;
        continue;
      }
      // Out of credit: the host is not reading; the device buffers at most what it advertised.
      await settle(g, 10);
      absorb();
      if (credit() > 0) continue;
      stalls++;
      assert.equal(g.backend.connectionCount, 1, 'the guest respects the credit: no reset');
      assert.ok(sent - peerFwdCnt <= VSOCK_CONN_TX_BUF_SIZE);
      hostGot.push(readAll(h).data);
      await until(g, () => g.inbox.length > 0, 'CREDIT_UPDATE after the host read');
    }
    // Drain the rest.
    for (let got = hostGot.reduce((n, b) => n + b.length, 0); got < total;) {
      g.loop.pump(5);
      const d = readAll(h).data;
      hostGot.push(d);
      got += d.length;
    }
    assert.ok(stalls > 0, 'the host socket did fill up');
    assert.equal(createHash('sha256').update(Buffer.concat(hostGot)).digest('hex'), createHash('sha256').update(data).digest('hex'));
    assert.equal(g.backend.metrics['tx_bytes_count'], total);
    assert.equal(g.backend.stats.txCreditViolations, 0);
    libc.close(h);
  } finally {
    l.close();
    g.close();
  }
});

test('credit, guest → host: a guest that ignores the credit is reset, its buffer bounded', async () => {
  const g = new Guest(udsPath()).activate();
  const l = new RawListener(`${g.uds}_6003`);
  try {
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, srcPort: 4, dstPort: 6003 });
    g.take();
    const h = l.accept();
    const chunk = randomBytes(60 * 1024);
    let packets = 0;
    while (!g.inbox.some(opIs(VIRTIO_VSOCK_OP_RST))) {
      assert.ok(packets++ < 200, 'the device reset the connection');
      g.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 4, dstPort: 6003 }, chunk);
      g.poll();
    }
    assert.equal(g.backend.stats.txCreditViolations, 1);
    assert.equal(g.backend.metrics['conns_killed'], 1);
    assert.equal(g.backend.connectionCount, 0);
    assert.ok(g.backend.metrics['tx_bytes_count']! <= packets * chunk.length);
    // The host gets what was written before the reset, then EOF.
    for (let r = readAll(h); !r.eof; r = readAll(h)) await sleep(1);
    libc.close(h);
  } finally {
    l.close();
    g.close();
  }
});

test('host data with no guest rx buffers waits without spinning the event loop', async () => {
  const g = new Guest(udsPath()).activate(0);
  g.autoRefill = false;
  const l = new RawListener(`${g.uds}_6007`);
  try {
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, srcPort: 5, dstPort: 6007 });
    g.provideRx(1);
    assert.equal(g.take()[0]!.hdr.op, VIRTIO_VSOCK_OP_RESPONSE);
    const h = l.accept();
    assert.equal(libc.trySend(h, enc('waiting'), MSG_NOSIGNAL), 7);
    assert.equal(g.loop.pump(50), 1, 'EPOLLIN once');
    for (let i = 0; i < 5; i++) assert.equal(g.loop.pump(0), 0, 'the fd is not polled while its data waits for an rx buffer');
    g.provideRx(1);
    assert.equal(dec(g.take()[0]!.data), 'waiting');
    // Polled again: more data arrives as an event.
    libc.trySend(h, enc('more'), MSG_NOSIGNAL);
    g.provideRx(1);
    await until(g, () => g.inbox.length > 0, 'more');
    assert.equal(dec(g.take()[0]!.data), 'more');
    libc.close(h);
  } finally {
    l.close();
    g.close();
  }
});

// ---------------------------------------------------------------------------
// Malformed and misdirected packets
// ---------------------------------------------------------------------------

test('malformed tx packets are dropped (or answered with RST) without harm', () => {
  const g = new Guest(udsPath()).activate();
  try {
    const m = g.backend.metrics;
    const s = g.backend.stats;
    // A chain too short for the header.
    g.tx.addChain([{ data: new Uint8Array(20) }]);
    g.backend.processQueue(1);
    assert.deepEqual(g.tx.drainUsed().map((u) => u.len), [0]);
    assert.equal(s.txShortHeader, 1);
    // A header split over two descriptors is fine (an RW for nobody: RST).
    const hdr = encodeHeader(header({ op: VIRTIO_VSOCK_OP_RW, srcPort: 10, dstPort: 11, len: 3 }));
    g.tx.addChain([{ data: hdr.subarray(0, 10) }, { data: hdr.subarray(10) }, { data: enc('abc') }]);
    g.backend.processQueue(1);
    g.tx.drainUsed();
    let rst = g.take();
    assert.equal(rst.length, 1);
    assert.equal(rst[0]!.hdr.op, VIRTIO_VSOCK_OP_RST);
    assert.deepEqual([rst[0]!.hdr.srcPort, rst[0]!.hdr.dstPort], [11, 10]);
    assert.equal(s.txUnroutable, 1);
    // len larger than the buffer, and larger than 64 KiB.
    const big = encodeHeader(header({ op: VIRTIO_VSOCK_OP_RW, srcPort: 12, dstPort: 13, len: 100 }));
    g.tx.addChain([{ data: Buffer.concat([big, new Uint8Array(10)]) }]);
    g.backend.processQueue(1);
    g.tx.addChain([{ data: encodeHeader(header({ op: VIRTIO_VSOCK_OP_RW, srcPort: 12, dstPort: 13, len: 0x10001 })) }]);
    g.backend.processQueue(1);
    assert.equal(s.txBadLen, 2);
    assert.equal(g.take(opIs(VIRTIO_VSOCK_OP_RST)).length, 2);
    // Unknown type: RST; an RST of an unknown type: nothing.
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, type: VIRTIO_VSOCK_TYPE_SEQPACKET, srcPort: 14, dstPort: 15 });
    g.send({ op: VIRTIO_VSOCK_OP_RST, type: 7, srcPort: 14, dstPort: 15 });
    assert.equal(s.txBadType, 2);
    rst = g.take();
    assert.equal(rst.length, 1);
    assert.equal(rst[0]!.hdr.op, VIRTIO_VSOCK_OP_RST);
    // Wrong source CID (spoofing) and another destination CID: dropped silently.
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, srcCid: 4n, srcPort: 16, dstPort: 17 });
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, dstCid: 5n, srcPort: 16, dstPort: 17 });
    assert.equal(s.txBadSrcCid, 1);
    assert.equal(s.txBadDstCid, 1);
    // An RST for no connection is not answered (no RST ping-pong).
    g.send({ op: VIRTIO_VSOCK_OP_RST, srcPort: 18, dstPort: 19 });
    // Device-writable buffers in a tx chain.
    g.tx.addChain([{ data: encodeHeader(header({ op: VIRTIO_VSOCK_OP_REQUEST, srcPort: 20, dstPort: 21 })) }, { len: 8, write: true }]);
    g.backend.processQueue(1);
    assert.equal(g.take().length, 0);
    assert.equal(m['tx_queue_event_fails'], 4);
    assert.equal(g.backend.connectionCount, 0);
    // A raw chain pointing outside guest RAM comes back with length 0.
    g.tx.writeDescriptor(200, { addr: 0x7000_0000, len: 64, flags: 0, next: 0 });
    g.tx.addRawChain(200);
    g.backend.processQueue(1);
    assert.deepEqual(g.tx.drainUsed().filter((u) => u.id === 200).map((u) => u.len), [0]);
    assert.equal(m['tx_queue_event_fails'], 5);
  } finally {
    g.close();
  }
});

test('rx buffers too small for a header, or device-readable, are handed back unused', () => {
  const g = new Guest(udsPath()).activate(0);
  g.autoRefill = false;
  try {
    g.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 30, dstPort: 31 }, enc('x')); // → an RST is due
    g.rx.addChain([{ len: 20, write: true }], { publish: false });
    g.rx.addChain([{ data: new Uint8Array(64) }], { publish: false });
    g.rx.addChain([{ len: VIRTIO_VSOCK_HDR_SIZE, write: true }]);
    g.backend.processQueue(0);
    const used = g.rx.drainUsed();
    assert.deepEqual(used.map((u) => u.len), [0, 0, VIRTIO_VSOCK_HDR_SIZE], 'an RST fits a header-only buffer');
    assert.equal(g.backend.metrics['rx_queue_event_fails'], 2);
  } finally {
    g.close();
  }
});

test('many RSTs for unknown connections: bounded, the excess is dropped', () => {
  const g = new Guest(udsPath()).activate(0);
  try {
    for (let i = 0; i < 300; i++) g.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 1000 + i, dstPort: 40 }, enc('x'));
    assert.equal(g.backend.stats.rstDropped, 300 - 256);
    g.autoRefill = false;
    g.provideRx(200);
    assert.equal(g.take(opIs(VIRTIO_VSOCK_OP_RST)).length, 200);
    g.provideRx(100);
    assert.equal(g.take(opIs(VIRTIO_VSOCK_OP_RST)).length, 56);
    assert.ok(!g.rx.usedIdx() || g.take().length === 0, 'nothing more');
  } finally {
    g.close();
  }
});

// ---------------------------------------------------------------------------
// Limits, reset, transport reset
// ---------------------------------------------------------------------------

test('connection limit: guest REQUESTs and host connections beyond it are refused', async () => {
  const g = new Guest(udsPath(), { maxConnections: 2 }).activate();
  const l = new RawListener(`${g.uds}_6004`);
  try {
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, srcPort: 50, dstPort: 6004 });
    const { c } = await hostConnect(g, 51);
    g.take();
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, srcPort: 52, dstPort: 6004 });
    const [rst] = g.take();
    assert.equal(rst!.hdr.op, VIRTIO_VSOCK_OP_RST);
    assert.equal(rst!.hdr.dstPort, 52);
    const extra = hostClient(g.uds);
    extra.sock.write('CONNECT 53\n');
    await until(g, () => extra.closed(), 'extra host connection closed');
    assert.equal(g.backend.connectionCount, 2);
    assert.equal(g.backend.stats.guestConnectsRefused, 1);
    assert.equal(g.backend.stats.hostConnectsRefused, 1);
    c.sock.destroy();
  } finally {
    l.close();
    g.close();
  }
});

test('reset() closes every host socket and unregisters every fd; the device works again after re-activation', async () => {
  const g = new Guest(udsPath()).activate();
  const l = new RawListener(`${g.uds}_6005`);
  try {
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, srcPort: 60, dstPort: 6005 });
    const h = l.accept();
    const { c } = await hostConnect(g, 61);
    const waiting = hostClient(g.uds); // accepted, no CONNECT yet
    await until(g, () => g.backend.pendingHostConnections === 1, 'pending host connection');
    g.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 60, dstPort: 6005 }, enc('x'));
    assert.ok(g.loop.fds.size >= 3);

    g.backend.reset();
    assert.equal(g.loop.fds.size, 0, 'no fd left in the event loop');
    assert.equal(g.backend.registeredFds, 0);
    assert.equal(g.backend.connectionCount, 0);
    assert.equal(g.backend.pendingHostConnections, 0);
    assert.equal(g.backend.metrics['conns_removed'], 2);
    assert.equal(dec(readAll(h).data), 'x');
    assert.ok(readAll(h).eof, 'guest-initiated host socket closed');
    await until(g, () => c.closed() && waiting.closed(), 'host-initiated sockets closed');
    g.backend.processQueue(1); // not active: ignored
    libc.close(h);

    // The driver sets the device up again: the listener is back.
    g.initRings();
    g.activate();
    assert.equal(g.loop.fds.size, 1);
    const again = hostClient(g.uds);
    again.sock.write('CONNECT 62\n');
    await until(g, () => g.inbox.some(opIs(VIRTIO_VSOCK_OP_REQUEST)), 'REQUEST after re-activation');
    again.sock.destroy();
  } finally {
    l.close();
    g.close();
  }
});

test('sendTransportReset: TRANSPORT_RESET event on the event queue, connections dropped', async () => {
  const g = new Guest(udsPath()).activate();
  try {
    const { c } = await hostConnect(g, 70);
    assert.equal(g.backend.sendTransportReset(), false, 'no event buffer yet');
    g.ev.addChain([{ len: 8, write: true }]);
    g.backend.processQueue(2);
    assert.equal(g.ev.drainUsed().length, 0, 'event buffers are kept for events');
    assert.equal(g.backend.sendTransportReset(), true);
    const [u] = g.ev.drainUsed();
    assert.equal(u!.len, 4);
    assert.deepEqual([...g.ev.read(u!.buffers[0]!.addr, 4)], [0, 0, 0, 0]);
    assert.equal(g.backend.connectionCount, 0);
    await until(g, () => c.closed(), 'host socket closed');
    assert.equal(g.loop.fds.size, 1, 'the listener is still served');
  } finally {
    g.close();
  }
});

test('EVENT_IDX and IN_ORDER negotiated: rx/tx still flow with notification suppression', async () => {
  const g = new Guest(udsPath());
  g.initRings(true);
  g.activate(4, g.backend.availFeatures);
  const srv = new RawListener(`${g.uds}_6006`);
  try {
    g.send({ op: VIRTIO_VSOCK_OP_REQUEST, srcPort: 80, dstPort: 6006 });
    assert.equal(g.take()[0]!.hdr.op, VIRTIO_VSOCK_OP_RESPONSE);
    const irqs = g.interrupts;
    assert.ok(irqs >= 1);
    const h = srv.accept();
    for (let i = 0; i < 20; i++) {
      libc.trySend(h, enc(`m${i};`), MSG_NOSIGNAL);
      await until(g, () => g.inbox.length > 0, `message ${i}`);
      assert.equal(dec(g.take()[0]!.data), `m${i};`);
      g.rx.setUsedEvent(g.rx.usedIdx()); // as virtqueue_enable_cb does: interrupt me for the next one
    }
    assert.ok(g.interrupts > irqs, 'interrupts keep coming as the driver moves used_event along');
    g.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 80, dstPort: 6006 }, enc('done'));
    assert.equal(dec(readAll(h).data), 'done');
    libc.close(h);
  } finally {
    srv.close();
    g.close();
  }
});

test('libc sockets: connect to a listening path, EAGAIN on an empty non-blocking socket, ENAMETOOLONG', () => {
  const p = udsPath();
  const l = listenUnix(p);
  const c = libc.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK);
  try {
    assert.equal(libc.tryConnectUnix(c, p), 0);
    const s = libc.tryAccept4(l, SOCK_NONBLOCK);
    assert.ok(s >= 0);
    assert.equal(libc.tryRecv(s, new Uint8Array(8), 0), -EAGAIN);
    assert.equal(libc.trySend(c, enc('abc'), MSG_NOSIGNAL), 3);
    const buf = new Uint8Array(8);
    assert.equal(libc.tryRecv(s, buf.subarray(2), 0), 3);
    assert.deepEqual([...buf.subarray(2, 5)], [...enc('abc')], 'views at an offset are honoured');
    assert.equal(libc.tryAccept4(l, SOCK_NONBLOCK), -EAGAIN);
    libc.close(s);
    assert.ok(libc.tryConnectUnix(c, `/${'x'.repeat(200)}`) < 0);
  } finally {
    libc.close(c);
    libc.close(l);
    fs.rmSync(p);
  }
});
