/**
 * virtio-net backend against a REAL TAP device, driven by the guest-driver
 * harness (tests/helpers/virtio_driver.ts) for the guest side and an
 * AF_PACKET socket on the same interface for the host side
 * (tests/helpers/tap_host.ts explains why that is the wire's other end).
 *
 * One persistent TAP (unique name) serves the whole file: each test attaches
 * a fresh backend (the TAP takes one fd at a time; closing it purges the
 * TAP's queue) and detaches it at the end. The TAP is deleted in after().
 * Without /dev/net/tun (or root) the suite FAILS, naming what is missing.
 *
 * Guest memory is a real host mapping (two adjacent regions, separately
 * mmapped) so frames go through the native readv/writev path, as in the
 * VMM; one test uses heap memory (the node:fs path).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_VERSION_1,
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
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  featureBit,
} from '../../src/generated/virtio.js';
import { O_RDONLY } from '../../src/generated/libc.js';
import { TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_UFO } from '../../src/generated/tun.js';
import type { GuestMemory } from '../../src/memory/guest_memory.js';
import * as libc from '../../src/sys/libc.js';
import { QueueError } from '../../src/virtio/queue/index.js';
import { EventManager } from '../../src/vmm/event_manager.js';
import {
  MAX_BUFFER_SIZE, NetBackend, Tap, TapError, checkTapName, tapOffloadFlags, type NetBackendOptions,
} from '../../src/vmm/devices/virtio/net/index.js';
import { RateLimiter } from '../../src/vmm/rate_limiter/index.js';
import { createTestMemory, MiB, VirtioDriver, type UsedElem } from '../helpers/virtio_driver.js';
import {
  PacketSocket, createHostMappedMemory, createTap, deleteTap, requireTun, tapExists, uniqueTapName, waitOperUp,
} from '../helpers/tap_host.js';

// ---------------------------------------------------------------------------
// Frames

const VNET = 12;
const GUEST_MAC = '02:00:00:00:00:01';
const GUEST_MAC_BYTES = Uint8Array.from([2, 0, 0, 0, 0, 1]);
/** IEEE 802 Local Experimental EtherType 1: nothing in the host stack handles it. */
const ETHERTYPE_TEST = 0x88b5;
const ETHERTYPE_ARP = 0x0806;
const TAP_MTU = 9000;

/** A test frame: broadcast, from the guest MAC, EtherType 0x88b5, a 32-bit marker, then a pattern. */
function testFrame(marker: number, size: number, src = GUEST_MAC_BYTES): Uint8Array {
  const f = new Uint8Array(size);
  f.fill(0xff, 0, 6);
  f.set(src, 6);
  const dv = new DataView(f.buffer);
  dv.setUint16(12, ETHERTYPE_TEST, false);
  dv.setUint32(14, marker, false);
  for (let i = 18; i < size; i++) f[i] = (i * 7 + marker) & 0xff;
  return f;
}

/** The marker of a test frame, or undefined for any other frame. */
function markerOf(f: Uint8Array): number | undefined {
  if (f.length < 18) return undefined;
  const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
  return dv.getUint16(12, false) === ETHERTYPE_TEST ? dv.getUint32(14, false) : undefined;
}

/** An ARP request "who has 127.0.0.2? tell 127.0.0.1" from the guest MAC (addresses that never leave the host). */
function arpRequest(): Uint8Array {
  const f = new Uint8Array(42);
  f.fill(0xff, 0, 6);
  f.set(GUEST_MAC_BYTES, 6);
  const dv = new DataView(f.buffer);
  dv.setUint16(12, ETHERTYPE_ARP, false);
  dv.setUint16(14, 1, false); // htype Ethernet
  dv.setUint16(16, 0x0800, false); // ptype IPv4
  f[18] = 6;
  f[19] = 4;
  dv.setUint16(20, 1, false); // request
  f.set(GUEST_MAC_BYTES, 22);
  f.set([127, 0, 0, 1], 28);
  f.set([127, 0, 0, 2], 38);
  return f;
}

const isArp = (f: Uint8Array): boolean => f.length >= 42 && f[12] === 0x08 && f[13] === 0x06 && f[38] === 127 && f[41] === 2;

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Rig: guest memory, two driver queues, an epoll loop, the backend

const f = featureBit;
const MRG = f(VIRTIO_NET_F_MRG_RXBUF);
const EVENT_IDX = f(VIRTIO_F_RING_EVENT_IDX);
const GUEST_OFFLOADS = f(VIRTIO_NET_F_GUEST_CSUM) | f(VIRTIO_NET_F_GUEST_TSO4) | f(VIRTIO_NET_F_GUEST_TSO6) | f(VIRTIO_NET_F_GUEST_UFO);
const BASE = f(VIRTIO_F_VERSION_1);

/** Low region [0, 2 MiB), high region [2 MiB, 4 MiB): adjacent in the guest, apart on the host. */
const REGION_SPLIT = 2 * MiB;
/** Where the harness allocates rx / tx buffers; [0x1f0000, 0x210000) around the boundary is left for buffers placed by hand. */
const RX_DATA = 0x100000;
const TX_DATA = 0x210000;
/** Free for fixed buffers. */
const SPARE = 0x380000;
let hostMem: { mem: GuestMemory; free: () => void } | undefined;

interface RxFrameSeen {
  heads: number[];
  lens: number[];
  hdr: Uint8Array;
  numBuffers: number;
  /** The frame without its vnet header. */
  frame: Uint8Array;
}

class Rig {
  readonly rxDrv: VirtioDriver;
  readonly txDrv: VirtioDriver;
  readonly loop = new EventManager();
  readonly dev: NetBackend;
  irqs = 0;
  private pendingUsed: UsedElem[] = [];

  /** `tap`: a TAP name to open a new backend on, or a backend to reuse (re-activation). */
  /** `rxRingBase`: where the rx queue's rings go (default 0x10000). */
  constructor(readonly mem: GuestMemory, tap: string | NetBackend, readonly features: bigint, opts: Partial<NetBackendOptions> = {}, rxRingBase = 0x10000) {
    const eventIdx = (features & EVENT_IDX) !== 0n;
    this.rxDrv = new VirtioDriver(mem, { size: 256, ringBase: rxRingBase, dataBase: RX_DATA, dataSize: 0xf0000, eventIdx, indirect: false });
    this.txDrv = new VirtioDriver(mem, { size: 256, ringBase: 0x20000, dataBase: TX_DATA, dataSize: 0x100000, eventIdx, indirect: false });
    this.dev = typeof tap === 'string' ? new NetBackend({ id: 'eth0', tapName: tap, ...opts }) : tap;
  }

  /** Activation as the device thread does it: activate, then process both queues once. */
  activate(): this {
    this.dev.activate({
      mem: this.mem,
      queues: [this.rxDrv.createQueue(), this.txDrv.createQueue()],
      ackedFeatures: this.features,
      interrupt: () => {
        this.irqs++;
      },
      events: { add: (fd, h, ev) => this.loop.add(fd, h, ev), remove: (fd) => this.loop.remove(fd) },
    });
    this.dev.processQueue(0);
    this.dev.processQueue(1);
    return this;
  }

  /** The guest posts `count` receive chains of `len` bytes (or the given buffer layouts), kicking if it must. */
  postRx(count: number, len: number): number[] {
    const heads: number[] = [];
    for (let i = 0; i < count; i++) heads.push(this.rxDrv.addChain([{ len, write: true }], { publish: false }));
    if (this.rxDrv.publish()) this.dev.processQueue(0);
    return heads;
  }

  /** The guest transmits each frame (vnet header + frame in one buffer), kicking if it must. */
  transmit(frames: Uint8Array[], hdr = new Uint8Array(VNET)): number[] {
    const heads = frames.map((fr) => this.txDrv.addChain([{ data: concat(hdr, fr) }], { publish: false }));
    if (this.txDrv.publish()) this.dev.processQueue(1);
    return heads;
  }

  /** Runs the epoll loop until `done()` or the timeout. */
  async pump(done: () => boolean, timeoutMs = 2000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!done() && Date.now() < end) {
      this.loop.runOnce(10);
      const t = this.dev.retryInMs();
      if (t !== undefined) {
        await sleep(t);
        this.dev.processQueue(0);
        this.dev.processQueue(1);
      } else {
        await sleep(0);
      }
    }
  }

  /** Used rx entries so far, grouped into frames by num_buffers (entries with length 0 are returned chains, listed apart). */
  rxFrames(): { frames: RxFrameSeen[]; returned: UsedElem[] } {
    this.pendingUsed.push(...this.rxDrv.drainUsed());
    const frames: RxFrameSeen[] = [];
    const returned: UsedElem[] = [];
    const q = this.pendingUsed;
    let i = 0;
    while (i < q.length) {
      const first = q[i]!;
      if (first.len === 0) {
        returned.push(first);
        i++;
        continue;
      }
      const hdr = this.readUsed(first).subarray(0, VNET);
      const numBuffers = new DataView(hdr.buffer, hdr.byteOffset).getUint16(10, true);
      if (i + numBuffers > q.length) break; // (never happens: a frame's entries are published together)
      const parts = q.slice(i, i + numBuffers);
      const bytes = concat(...parts.map((u) => this.readUsed(u)));
      frames.push({ heads: parts.map((u) => u.id), lens: parts.map((u) => u.len), hdr: hdr.slice(), numBuffers, frame: bytes.subarray(VNET) });
      i += numBuffers;
    }
    this.pendingUsed = q.slice(i);
    return { frames, returned };
  }

  private readUsed(u: UsedElem): Uint8Array {
    const parts: Uint8Array[] = [];
    let left = u.len;
    for (const b of u.buffers) {
      if (left === 0) break;
      const n = Math.min(left, b.len);
      parts.push(this.rxDrv.read(b.addr, n));
      left -= n;
    }
    return concat(...parts);
  }

  close(): void {
    this.dev.close();
    this.loop.close();
  }
}

// ---------------------------------------------------------------------------

describe('virtio-net over a real TAP', () => {
  const TAP = uniqueTapName();
  let host: PacketSocket;
  const rigs: Rig[] = [];

  before(() => {
    requireTun();
    createTap(TAP, TAP_MTU);
    host = new PacketSocket(TAP);
    hostMem = createHostMappedMemory([{ guestAddr: 0, size: REGION_SPLIT }, { guestAddr: REGION_SPLIT, size: REGION_SPLIT }]);
  });

  after(() => {
    for (const r of rigs) {
      try {
        r.close();
      } catch { /* already closed */ }
    }
    host?.close();
    deleteTap(TAP);
    assert.equal(tapExists(TAP), false, `TAP ${TAP} was not removed`);
  });

  /** A backend on the shared TAP, over a zeroed host-mapped memory, activated with `features`. */
  function rig(features: bigint, opts: Partial<NetBackendOptions> = {}, mem?: GuestMemory, rxRingBase?: number): Rig {
    for (const r of rigs.splice(0)) r.close();
    host.drain();
    const m = mem ?? hostMem!.mem;
    if (!mem) for (const r of m.regions) r.bytes.fill(0);
    const r = new Rig(m, TAP, features, opts, rxRingBase);
    rigs.push(r);
    r.activate();
    waitOperUp(TAP);
    return r;
  }

  // ---- TAP opening ------------------------------------------------------------

  test('TAP names are checked (IFNAMSIZ) and open errors are clear', () => {
    assert.throws(() => checkTapName('x'.repeat(16)), (e: unknown) => e instanceof TapError && e.kind === 'name' && /IFNAMSIZ 16/.test(e.message));
    assert.throws(() => checkTapName(''), (e: unknown) => e instanceof TapError && e.kind === 'name');
    assert.throws(() => checkTapName('tap%d'), (e: unknown) => e instanceof TapError && e.kind === 'name');
    assert.throws(() => checkTapName('a/b'), (e: unknown) => e instanceof TapError && e.kind === 'name');
    assert.doesNotThrow(() => checkTapName('x'.repeat(15)));
    assert.throws(() => new NetBackend({ id: 'n', tapName: 'x'.repeat(16) }), /at most 15 bytes/);
    // An existing interface that is not a TAP.
    assert.throws(() => Tap.open('lo'), (e: unknown) => e instanceof TapError && e.kind === 'not-tap' && /not a single-queue TAP/.test(e.message));
    // An fd that is not a TUN/TAP fd.
    const nullFd = libc.open('/dev/null', O_RDONLY);
    try {
      assert.throws(() => Tap.fromFd(nullFd), (e: unknown) => e instanceof TapError && e.kind === 'not-tap' && /not a TUN\/TAP fd/.test(e.message));
    } finally {
      libc.close(nullFd);
    }
    // /dev/net/tun opened but never attached.
    const tunFd = libc.open('/dev/net/tun', 2);
    try {
      assert.throws(() => Tap.fromFd(tunFd), (e: unknown) => e instanceof TapError && e.kind === 'not-tap' && /not attached/.test(e.message));
    } finally {
      libc.close(tunFd);
    }
    assert.throws(() => new NetBackend({ id: 'n' }), /exactly one of tapName and tapFd/);
    assert.throws(() => new NetBackend({ id: 'n', tapName: TAP, guestMac: '02:00:00:00:00' }), /invalid MAC/);
    assert.throws(() => new NetBackend({ id: 'n', tapName: TAP, mtu: 67 }), /MTU 67/);
  });

  test('a TAP in use is busy; an absent name creates a non-persistent TAP (as Firecracker)', () => {
    const r = rig(BASE);
    assert.throws(() => Tap.open(TAP), (e: unknown) => e instanceof TapError && e.kind === 'busy' && /already in use/.test(e.message));
    r.close();
    rigs.length = 0;

    const fresh = uniqueTapName('spn');
    const t = Tap.open(fresh);
    try {
      assert.equal(t.name, fresh);
      assert.equal(tapExists(fresh), true);
    } finally {
      t.close();
    }
    assert.equal(tapExists(fresh), false, 'a TAP the kernel created for the fd goes away with it');
  });

  test('an fd attached by someone else can be adopted (and is left open)', () => {
    for (const r of rigs.splice(0)) r.close();
    const fd = libc.open('/dev/net/tun', 2);
    try {
      const ifr = new Uint8Array(40);
      ifr.set(new TextEncoder().encode(TAP));
      new DataView(ifr.buffer).setUint16(16, 0x0002 | 0x1000 | 0x4000, true);
      libc.ioctl(fd, 0x400454ca, ifr, 'TUNSETIFF');
      const dev = new NetBackend({ id: 'n', tapFd: fd });
      assert.equal(dev.tap.name, TAP);
      assert.equal(dev.tap.ownsFd, false);
      assert.notEqual(libc.getFileFlags(fd) & 0o4000, 0, 'made non-blocking');
      dev.close();
      assert.doesNotThrow(() => libc.getFileFlags(fd), 'still open after close()');
    } finally {
      libc.close(fd);
    }
  });

  // ---- identity -----------------------------------------------------------------

  test("features, queues and config space are Firecracker's", () => {
    const plain = rig(BASE).dev;
    assert.equal(plain.deviceType, VIRTIO_ID_NET);
    assert.deepEqual(plain.queueMaxSizes, [256, 256]);
    const expected = f(VIRTIO_NET_F_CSUM) | f(VIRTIO_NET_F_GUEST_CSUM) | f(VIRTIO_NET_F_GUEST_TSO4) | f(VIRTIO_NET_F_GUEST_TSO6)
      | f(VIRTIO_NET_F_GUEST_UFO) | f(VIRTIO_NET_F_HOST_TSO4) | f(VIRTIO_NET_F_HOST_TSO6) | f(VIRTIO_NET_F_HOST_UFO)
      | f(VIRTIO_NET_F_MRG_RXBUF) | f(VIRTIO_F_RING_EVENT_IDX);
    assert.equal(plain.availFeatures, expected);
    assert.deepEqual([...plain.configSpace()], new Array(12).fill(0));

    const full = rig(BASE, { guestMac: '02:AB:cd:00:00:01', mtu: 9000 }).dev;
    assert.equal(full.availFeatures, expected | f(VIRTIO_NET_F_MAC) | f(VIRTIO_NET_F_MTU));
    assert.equal(full.guestMac, '02:ab:cd:00:00:01');
    assert.deepEqual([...full.configSpace()], [0x02, 0xab, 0xcd, 0, 0, 1, 0, 0, 0, 0, 9000 & 0xff, 9000 >> 8]);
  });

  test('activation sets the negotiated offloads on the TAP; a set the kernel refuses fails activation', () => {
    assert.equal(tapOffloadFlags(GUEST_OFFLOADS), TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO);
    assert.equal(tapOffloadFlags(f(VIRTIO_NET_F_HOST_TSO4) | f(VIRTIO_NET_F_CSUM)), 0, 'host-side features are not TAP offloads');
    const ok = rig(BASE | GUEST_OFFLOADS | MRG | EVENT_IDX);
    assert.equal(ok.dev.isActivated, true);
    assert.equal(ok.dev.metrics['activate_fails'], 0);

    // TSO without checksum offload is invalid (the spec forbids it; TUNSETOFFLOAD says EINVAL).
    for (const r of rigs.splice(0)) r.close();
    const bad = new Rig(hostMem!.mem, TAP, BASE | f(VIRTIO_NET_F_GUEST_TSO4));
    rigs.push(bad);
    assert.throws(() => bad.activate(), /TAP spk\w+: TUNSETOFFLOAD\(0x2\): EINVAL/);
    assert.equal(bad.dev.metrics['activate_fails'], 1);
    assert.equal(bad.dev.isActivated, false);
    assert.equal(bad.dev.tapRegistered, false);
  });

  test('the TAP offloads follow the negotiation: a partially checksummed host frame reaches the guest as NEEDS_CSUM only with GUEST_CSUM', async () => {
    // An IPv4/UDP frame (127.0.0.1 -> 127.0.0.2; it only ever travels from the packet socket into the TAP) whose UDP checksum is left to the "hardware".
    const udpPort = 0x88b5;
    const frame = new Uint8Array(14 + 20 + 8 + 64);
    frame.fill(0xff, 0, 6);
    frame.set([2, 0, 0, 0, 0, 2], 6);
    const dv = new DataView(frame.buffer);
    dv.setUint16(12, 0x0800, false);
    frame[14] = 0x45;
    dv.setUint16(16, 20 + 8 + 64, false);
    frame[22] = 64; // ttl
    frame[23] = 17; // UDP
    frame.set([127, 0, 0, 1], 26);
    frame.set([127, 0, 0, 2], 30);
    dv.setUint16(34, 40000, false);
    dv.setUint16(36, udpPort, false);
    dv.setUint16(38, 8 + 64, false);
    for (let i = 42; i < frame.length; i++) frame[i] = i;
    const vhdr = new Uint8Array(10);
    vhdr[0] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
    new DataView(vhdr.buffer).setUint16(6, 34, true); // csum_start: the UDP header
    new DataView(vhdr.buffer).setUint16(8, 6, true); // csum_offset: its checksum field
    const isOurs = (fr: Uint8Array): boolean => fr.length >= 42 && fr[12] === 0x08 && fr[13] === 0x00 && fr[36] === 0x88 && fr[37] === 0xb5;

    const vs = new PacketSocket(TAP, { vnetHdr: true });
    try {
      for (const [features, partial] of [[BASE | MRG, false], [BASE | MRG | GUEST_OFFLOADS, true], [BASE | MRG, false]] as const) {
        const r = rig(features);
        r.postRx(70, 1024);
        vs.send(concat(vhdr, frame));
        const seen: RxFrameSeen[] = [];
        await r.pump(() => {
          seen.push(...r.rxFrames().frames.filter((x) => isOurs(x.frame)));
          return seen.length >= 1;
        });
        assert.equal(seen.length, 1);
        const h = new DataView(seen[0]!.hdr.buffer, seen[0]!.hdr.byteOffset);
        const csum = new DataView(seen[0]!.frame.buffer, seen[0]!.frame.byteOffset).getUint16(40, false);
        if (partial) {
          assert.equal(h.getUint8(0), 1, 'NEEDS_CSUM: the TAP may hand the guest unchecksummed frames');
          assert.equal(h.getUint16(6, true), 34);
          assert.equal(h.getUint16(8, true), 6);
          assert.equal(csum, 0, 'left for the guest to complete');
        } else {
          assert.equal(h.getUint8(0), 0, 'without GUEST_CSUM the host completed the checksum');
          assert.notEqual(csum, 0);
        }
      }
    } finally {
      vs.close();
    }
  });

  // ---- TX -----------------------------------------------------------------------

  test('TX: frames from the guest come out of the TAP unchanged, one writev each', async () => {
    const r = rig(BASE | EVENT_IDX);
    const arp = arpRequest();
    const big = testFrame(2, 1514);
    const hdr = new Uint8Array(VNET);
    // 1. header and ARP frame in one buffer.
    r.txDrv.addChain([{ data: concat(hdr, arp) }], { publish: false });
    // 2. header alone, then the frame in two buffers, one of them across the 2 MiB region boundary.
    const spanAddr = REGION_SPLIT - 700; // [2 MiB - 700, 2 MiB + 714): left free by the harness
    r.txDrv.addChain([{ data: hdr }, { data: big.subarray(0, 100) }, { addr: spanAddr, data: big.subarray(100) }], { publish: false });
    // 3. a minimal frame.
    const small = testFrame(3, 60);
    r.txDrv.addChain([{ data: hdr.subarray(0, 5) }, { data: concat(hdr.subarray(5), small) }], { publish: false });
    assert.equal(r.txDrv.publish(), true);
    r.dev.processQueue(1);

    const used = r.txDrv.drainUsed();
    assert.equal(used.length, 3);
    assert.ok(used.every((u) => u.len === 0), 'tx chains are returned with length 0');
    assert.ok(r.irqs >= 1);

    const got = await host.recvMatching((fr) => isArp(fr) || markerOf(fr) !== undefined, 3);
    assert.equal(got.length, 3, 'three frames on the host side');
    assert.deepEqual(got[0], arp);
    assert.deepEqual(got[1], big);
    assert.deepEqual(got[2], small);
    const m = r.dev.metrics;
    assert.equal(m['tx_packets_count'], 3);
    assert.equal(m['tx_count'], 3);
    assert.equal(m['tx_bytes_count'], 3 * VNET + arp.length + big.length + small.length);
    assert.equal(m['tap_write_fails'], 0);
    assert.ok(m['tap_write_agg.sum_us']! >= 0 && m['tap_write_agg.max_us']! >= m['tap_write_agg.min_us']!);
  });

  test('TX with EVENT_IDX: batch after batch, a guest that kicks only when avail_event says so gets every frame out', async () => {
    // After each drain the device must ask for the next kick (avail_event = its next_avail) with the ring
    // seen empty after that: otherwise the driver's next publish does not step over avail_event, it does
    // not kick, and its frames sit on the ring for good (a guest's TCP stalls with no error anywhere).
    const r = rig(BASE | EVENT_IDX);
    const batches = 40;
    for (let b = 0; b < batches; b++) {
      r.transmit([0, 1, 2].map((i) => testFrame(5000 + 3 * b + i, 80)));
      r.txDrv.drainUsed();
    }
    const got = await host.recvMatching((fr) => (markerOf(fr) ?? 0) >= 5000, 3 * batches);
    assert.deepEqual(got.map(markerOf), Array.from({ length: 3 * batches }, (_, i) => 5000 + i));
    assert.equal(r.txDrv.kicks, batches, 'one kick per batch: each publish stepped over the avail_event the device had just written');
    assert.equal(r.dev.metrics['tx_packets_count'], 3 * batches);
  });

  test('TX: a frame whose source is not the guest MAC is counted as spoofed, and still sent', async () => {
    const r = rig(BASE, { guestMac: GUEST_MAC });
    r.transmit([testFrame(10, 64), testFrame(11, 64, Uint8Array.from([2, 0, 0, 0, 0, 9]))]);
    const got = await host.recvMatching((fr) => markerOf(fr) !== undefined, 2);
    assert.deepEqual(got.map(markerOf), [10, 11]);
    assert.equal(r.dev.metrics['tx_spoofed_mac_count'], 1);
  });

  test('TX: hostile chains are counted and returned with length 0; nothing reaches the TAP', async () => {
    const r = rig(BASE);
    const d = r.txDrv;
    const shortHead = d.addChain([{ data: new Uint8Array(5) }], { publish: false });
    const writable = d.addChain([{ data: concat(new Uint8Array(VNET), testFrame(20, 60)) }, { len: 64, write: true }], { publish: false });
    const tooBig = d.addChain([{ len: MAX_BUFFER_SIZE + 1 }], { publish: false });
    // A descriptor loop: 200 -> 201 -> 200.
    d.writeDescriptor(200, { addr: SPARE, len: 64, flags: VIRTQ_DESC_F_NEXT, next: 201 });
    d.writeDescriptor(201, { addr: SPARE + 0x100, len: 64, flags: VIRTQ_DESC_F_NEXT, next: 200 });
    d.addRawChain(200, [200, 201], { publish: false });
    // INDIRECT was not negotiated (Firecracker does not offer it).
    const indirect = d.addIndirectChain([{ data: concat(new Uint8Array(VNET), testFrame(21, 60)) }], { publish: false });
    const good = d.addChain([{ data: concat(new Uint8Array(VNET), testFrame(22, 60)) }], { publish: false });
    d.publish();
    r.dev.processQueue(1);

    const used = d.drainUsed();
    assert.deepEqual(used.map((u) => u.id), [shortHead, writable, tooBig, 200, indirect, good]);
    assert.ok(used.every((u) => u.len === 0));
    const m = r.dev.metrics;
    assert.equal(m['tx_malformed_frames'], 2, 'shorter than the header, longer than MAX_BUFFER_SIZE');
    assert.equal(m['tx_fails'], 3, 'device-writable descriptor, descriptor loop, INDIRECT not negotiated');
    assert.equal(m['tx_packets_count'], 1);
    const got = await host.recvMatching((fr) => markerOf(fr) !== undefined, 3, 300);
    assert.deepEqual(got.map(markerOf), [22], 'only the good frame is sent');

    // A ring the guest broke (avail.idx far ahead) is a QueueError for the device thread (NEEDS_RESET).
    d.setAvailIdx(d.availIdx + 1000);
    assert.throws(() => r.dev.processQueue(1), (e: unknown) => e instanceof QueueError && e.kind === 'avail-idx');
  });

  test('TX: the rate limiter (ops) spaces the frames out; refused chains stay on the ring', async () => {
    const r = rig(BASE, { txRateLimiter: new RateLimiter({ ops: { size: 2, refill_time: 100 } }) });
    const t0 = performance.now();
    r.transmit([0, 1, 2, 3, 4, 5].map((i) => testFrame(100 + i, 100)));
    assert.equal(r.txDrv.drainUsed().length, 2, 'the bucket holds two frames');
    assert.ok(r.dev.metrics['tx_rate_limiter_throttled']! >= 1);
    const wait = r.dev.retryInMs();
    assert.ok(wait !== undefined && wait > 0 && wait <= 100, `retryInMs ${wait}`);
    let sent = 2;
    await r.pump(() => {
      sent += r.txDrv.drainUsed().length;
      return sent === 6;
    }, 3000);
    const elapsed = performance.now() - t0;
    assert.equal(sent, 6);
    assert.ok(elapsed >= 150, `6 frames at 2 per 100 ms took ${elapsed.toFixed(0)} ms`);
    const got = await host.recvMatching((fr) => markerOf(fr) !== undefined, 6);
    assert.deepEqual(got.map(markerOf), [100, 101, 102, 103, 104, 105], 'in order, none lost');
    assert.equal(r.dev.metrics['tx_packets_count'], 6);
    assert.equal(r.dev.retryInMs(), undefined);
  });

  test('TX: updateRateLimiters (PATCH /network-interfaces) sets a limiter live, and a zero-sized bucket lifts it at once', async () => {
    const r = rig(BASE);
    r.transmit([0, 1, 2].map((i) => testFrame(110 + i, 100)));
    assert.equal(r.txDrv.drainUsed().length, 3, 'no limiter yet: every frame goes');
    // tx ops: 1 frame per 10 s. rx untouched (undefined leaves a bucket as it is).
    r.dev.updateRateLimiters(undefined, undefined, undefined, { size: 1, refill_time: 10_000 });
    r.transmit([3, 4, 5].map((i) => testFrame(110 + i, 100)));
    assert.equal(r.txDrv.drainUsed().length, 1, 'the new bucket holds one frame');
    assert.ok(r.dev.retryInMs() !== undefined, 'the device waits for tokens');
    r.dev.updateRateLimiters(undefined, undefined, undefined, { size: 0, refill_time: 0 });
    r.dev.processQueue(1);
    assert.equal(r.txDrv.drainUsed().length, 2, 'the held frames go as soon as the limiter is disabled');
    const got = await host.recvMatching((fr) => markerOf(fr) !== undefined, 6);
    assert.deepEqual(got.map(markerOf), [110, 111, 112, 113, 114, 115], 'in order, none lost');
  });

  // ---- RX -----------------------------------------------------------------------

  test('RX without MRG_RXBUF: each frame lands in one chain with its vnet header (num_buffers 1)', async () => {
    const r = rig(BASE);
    // One chain with the header in a descriptor of its own, then plain chains.
    const split = r.rxDrv.addChain([{ len: VNET, write: true }, { len: 1514, write: true }]);
    r.dev.processQueue(0);
    r.postRx(3, 1526);
    const frames = [testFrame(1, 60), testFrame(2, 1514), testFrame(3, 600)];
    for (const fr of frames) host.send(fr);
    const seen = await receiveFrames(r, 3);
    assert.equal(seen.length, 3);
    assert.equal(seen[0]!.heads[0], split);
    seen.forEach((s, i) => {
      assert.deepEqual(s.frame, frames[i]);
      assert.equal(s.numBuffers, 1);
      assert.deepEqual(s.lens, [VNET + frames[i]!.length]);
      assert.deepEqual([...s.hdr.subarray(0, 10)], new Array(10).fill(0), 'no checksum / GSO information for a plain frame');
    });
    const m = r.dev.metrics;
    assert.ok(m['rx_packets_count']! >= 3);
    assert.ok(m['rx_bytes_count']! >= 3 * VNET + 60 + 1514 + 600);
    assert.ok(m['rx_tap_event_count']! >= 1);
    assert.ok(r.irqs >= 1);
    assert.equal(r.dev.tapRegistered, true, 'buffers left: the TAP stays in the loop');
  });

  test('RX with MRG_RXBUF: a large frame spans several chains, num_buffers says how many, published together', async () => {
    const r = rig(BASE | MRG | EVENT_IDX);
    // First chain straddles the 2 MiB boundary (two host mappings): readv gets two iovecs for it.
    const first = r.rxDrv.addChain([{ addr: REGION_SPLIT - 512, len: 1024, write: true }], { publish: false });
    const rest: number[] = [];
    for (let i = 0; i < 69; i++) rest.push(r.rxDrv.addChain([{ len: 1024, write: true }], { publish: false }));
    if (r.rxDrv.publish()) r.dev.processQueue(0);
    const bigFrame = testFrame(7, 5000);
    const smallFrame = testFrame(8, 100);
    host.send(bigFrame);
    host.send(smallFrame);
    const seen = await receiveFrames(r, 2);
    assert.equal(seen.length, 2);
    const [a, b] = seen as [RxFrameSeen, RxFrameSeen];
    assert.equal(a.numBuffers, 5, '5012 bytes in chains of 1024');
    assert.deepEqual(a.lens, [1024, 1024, 1024, 1024, 5012 - 4 * 1024]);
    assert.deepEqual(a.heads, [first, ...rest.slice(0, 4)], 'chains used in ring order');
    assert.deepEqual(a.frame, bigFrame);
    assert.equal(b.numBuffers, 1);
    assert.deepEqual(b.frame, smallFrame);
    assert.equal(r.dev.metrics['rx_fails'], 0);
  });

  /**
   * The guest keeps its ring full of `chainLen`-byte chains while the host
   * sends `total` frames of the given sizes in bursts; every frame must
   * arrive whole, in order, in as many chains as it needs.
   */
  /** Our test frames (those with a marker) among `frames`. */
  const ours = (frames: RxFrameSeen[]): RxFrameSeen[] => frames.filter((x) => markerOf(x.frame) !== undefined);
  /** Our test frames the guest has received since the last call. */
  const ourFrames = (r: Rig): RxFrameSeen[] => ours(r.rxFrames().frames);

  /**
   * Runs the loop until `n` of our test frames arrived and `also()` holds;
   * returns them, in order. Chains the device gave back unused meanwhile go
   * to `returned`, when given.
   */
  async function receiveFrames(r: Rig, n: number, also: () => boolean = () => true, returned?: UsedElem[]): Promise<RxFrameSeen[]> {
    const seen: RxFrameSeen[] = [];
    await r.pump(() => {
      const x = r.rxFrames();
      seen.push(...ours(x.frames));
      returned?.push(...x.returned);
      return seen.length >= n && also();
    });
    return seen;
  }

  /**
   * The host sends `total` frames in bursts of 8; the guest refills its ring whenever at least
   * `refillAt` descriptors are free (1: at once; Linux waits for a batch, so the device runs dry).
   */
  async function rxStream(r: Rig, total: number, sizes: readonly number[], chainLen: number, refillAt = 1): Promise<RxFrameSeen[]> {
    const seen: RxFrameSeen[] = [];
    const refill = (): void => {
      if (r.rxDrv.freeDescriptors >= refillAt) r.postRx(r.rxDrv.freeDescriptors, chainLen);
    };
    refill();
    for (let sent = 0; sent < total;) {
      const burst = Math.min(8, total - sent);
      for (let i = 0; i < burst; i++, sent++) host.send(testFrame(1000 + sent, sizes[sent % sizes.length]!));
      await r.pump(() => {
        seen.push(...ourFrames(r));
        refill();
        return seen.length >= sent;
      });
      assert.equal(seen.length, sent, `frames ${seen.length} of ${sent} arrived`);
    }
    seen.forEach((s, i) => {
      const size = sizes[i % sizes.length]!;
      assert.equal(markerOf(s.frame), 1000 + i, 'in order');
      assert.deepEqual(s.frame, testFrame(1000 + i, size));
      const chains = Math.ceil((VNET + size) / chainLen);
      assert.equal(s.numBuffers, chains, `num_buffers of frame ${i} (${size} bytes)`);
      assert.deepEqual(s.lens, [...new Array<number>(chains - 1).fill(chainLen), VNET + size - (chains - 1) * chainLen]);
    });
    return seen;
  }

  test('RX with MRG_RXBUF: a long stream of mixed frames through recycled chains arrives whole and in order', async () => {
    // ~5000 chains in all: the device's ring of held chains wraps several times and its iovec array is compacted.
    const r = rig(BASE | MRG | EVENT_IDX | GUEST_OFFLOADS);
    const sizes = [60, 1514, 2999, 4500, TAP_MTU + 14, 700, 8000];
    await rxStream(r, 1200, sizes, 1024);
    const m = r.dev.metrics;
    assert.equal(m['rx_packets_count'], 1200);
    assert.equal(m['rx_fails'], 0);
    assert.equal(r.dev.hasDeferredRxFrame, false);
    assert.ok(r.dev.heldRxChains * 1024 >= MAX_BUFFER_SIZE, 'still holding a whole frame of buffers');
  });

  test('RX with MRG_RXBUF and EVENT_IDX: a guest that refills in batches lets the device run dry again and again, and each refill wakes it', async () => {
    // 256 chains of 1024 bytes, 65 of which the device holds to take any frame: refilling only once 192
    // are free leaves the ring empty under the device many times. Each time it must have asked for a
    // kick (avail_event = its next_avail, after taking the last entries straight off the ring), and the
    // guest's next refill must step over it: a missed kick stalls the stream, as a lost RX kick would
    // stall a guest's TCP for good.
    const r = rig(BASE | MRG | EVENT_IDX | GUEST_OFFLOADS);
    await rxStream(r, 1500, [60, 1514, 9000, 4000], 1024, 192);
    const m = r.dev.metrics;
    assert.equal(m['rx_packets_count'], 1500);
    assert.ok(m['no_rx_avail_buffer'] > 20, `the device ran dry ${m['no_rx_avail_buffer']} times`);
    assert.ok(m['rx_queue_event_count'] >= m['no_rx_avail_buffer'] - 1, 'and was kicked after each');
    assert.equal(m['rx_fails'], 0);
  });

  test('RX with MRG_RXBUF: rings that straddle two host mappings work the same (through the queue and a GuestView)', async () => {
    // The descriptor table crosses the 2 MiB boundary: no typed-array views of the rings.
    const r = rig(BASE | MRG | EVENT_IDX, {}, undefined, REGION_SPLIT - 0x800);
    await rxStream(r, 200, [60, 1514, 5000, 9000], 1024);
    assert.equal(r.dev.metrics['rx_packets_count'], 200);
    assert.equal(r.dev.metrics['rx_fails'], 0);
  });

  test('RX with MRG_RXBUF: num_buffers reaches a header split across descriptors or straddling two host mappings', async () => {
    const r = rig(BASE | MRG | EVENT_IDX);
    const d = r.rxDrv;
    // Chain A: the header is 8 + 4 bytes over two descriptors (num_buffers in the second).
    const a = d.addChain([{ len: 8, write: true }, { len: 1016, write: true }], { publish: false });
    const p1 = d.addChain([{ len: 1024, write: true }], { publish: false });
    const p2 = d.addChain([{ len: 1024, write: true }], { publish: false });
    // Chain B: num_buffers' two bytes on either side of the 2 MiB boundary (two separate host mappings).
    const b = d.addChain([{ addr: REGION_SPLIT - VNET + 1, len: 1024, write: true }], { publish: false });
    const p3 = d.addChain([{ len: 1024, write: true }], { publish: false });
    for (let i = 0; i < 70; i++) d.addChain([{ len: 1024, write: true }], { publish: false });
    if (d.publish()) r.dev.processQueue(0);
    const f1 = testFrame(21, 3000); // 3012 bytes: A, P1, P2
    const f2 = testFrame(22, 1500); // 1512 bytes: B, P3
    host.send(f1);
    host.send(f2);
    const seen = await receiveFrames(r, 2);
    assert.equal(seen.length, 2);
    assert.deepEqual(seen[0]!.heads, [a, p1, p2]);
    assert.equal(seen[0]!.numBuffers, 3);
    assert.deepEqual(seen[0]!.frame, f1);
    assert.deepEqual(seen[1]!.heads, [b, p3]);
    assert.equal(seen[1]!.numBuffers, 2);
    assert.deepEqual(seen[1]!.frame, f2);
    assert.equal(r.dev.metrics['rx_fails'], 0);
  });

  test('RX: without guest buffers frames wait in the TAP (not dropped, no spinning) and arrive once buffers are added', async () => {
    const r = rig(BASE | MRG | EVENT_IDX);
    // Activation found no buffers: the TAP is out of the loop.
    assert.equal(r.dev.tapRegistered, false);
    assert.equal(r.dev.metrics['no_rx_avail_buffer'], 1);
    const frames = [testFrame(31, 200), testFrame(32, 3000), testFrame(33, 80)];
    for (const fr of frames) host.send(fr);
    for (let i = 0; i < 5; i++) assert.equal(r.loop.runOnce(20), 0, 'nothing wakes the loop while there are no buffers');
    assert.equal(r.dev.metrics['rx_packets_count'], 0);

    // Too little space for a 64 KiB frame is still "no buffers" with MRG_RXBUF (as Firecracker).
    r.postRx(10, 2048);
    assert.equal(r.dev.tapRegistered, false);
    assert.equal(r.dev.metrics['no_rx_avail_buffer'], 2);
    assert.equal(r.dev.heldRxChains, 10);

    r.postRx(40, 2048);
    // processQueue(0) read them at once.
    const seen = r.rxFrames().frames.filter((x) => markerOf(x.frame) !== undefined);
    assert.deepEqual(seen.map((s) => markerOf(s.frame)), [31, 32, 33], 'all three, in order');
    seen.forEach((s, i) => assert.deepEqual(s.frame, frames[i]));
    assert.equal(seen[1]!.numBuffers, 2);
    assert.equal(r.dev.tapRegistered, true, 'back in the loop');
    assert.equal(r.dev.metrics['rx_fails'], 0);
  });

  test('RX without MRG_RXBUF: the guest running out of buffers mid-stream pauses the TAP, adding one resumes it', async () => {
    const r = rig(BASE);
    r.postRx(1, 1526);
    const frames = [41, 42, 43].map((m) => testFrame(m, 300));
    for (const fr of frames) host.send(fr);
    const seen = await receiveFrames(r, 1, () => !r.dev.tapRegistered);
    assert.deepEqual(seen.map((s) => markerOf(s.frame)), [41]);
    assert.equal(r.dev.tapRegistered, false);
    assert.equal(r.loop.runOnce(30), 0, 'no spinning on the readable TAP');
    r.postRx(2, 1526);
    seen.push(...ourFrames(r));
    assert.deepEqual(seen.map((s) => markerOf(s.frame)), [41, 42, 43]);
  });

  test('RX: a frame larger than the buffers is dropped and counted; the next one uses the same chain', async () => {
    const r = rig(BASE);
    const [head] = r.postRx(1, 1526);
    host.send(testFrame(51, 3000)); // fits the 9000 MTU, not a 1526-byte buffer
    host.send(testFrame(52, 100));
    const seen = await receiveFrames(r, 1);
    assert.deepEqual(seen.map((s) => markerOf(s.frame)), [52]);
    assert.equal(seen[0]!.heads[0], head);
    assert.deepEqual(seen[0]!.frame, testFrame(52, 100));
    assert.equal(r.dev.metrics['rx_fails'], 1);
  });

  test('RX: hostile chains are counted and returned with length 0; a broken ring is a QueueError', async () => {
    const r = rig(BASE);
    const d = r.rxDrv;
    const readable = d.addChain([{ len: 16 }, { len: 1600, write: true }], { publish: false });
    const tooSmall = d.addChain([{ len: 100, write: true }], { publish: false });
    d.writeDescriptor(220, { addr: SPARE, len: 2000, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 999 });
    d.addRawChain(220, [220], { publish: false });
    const good = d.addChain([{ len: 1526, write: true }], { publish: false });
    if (d.publish()) r.dev.processQueue(0);
    host.send(testFrame(61, 64));
    const returned: UsedElem[] = [];
    const seen = await receiveFrames(r, 1, undefined, returned);
    assert.deepEqual(returned.map((u) => u.id), [readable, tooSmall, 220]);
    assert.equal(seen[0]!.heads[0], good);
    assert.equal(r.dev.metrics['rx_fails'], 3);

    d.setAvailIdx(d.availIdx + 1000);
    assert.throws(() => r.dev.processQueue(0), (e: unknown) => e instanceof QueueError && e.kind === 'avail-idx');
  });

  test('RX with MRG_RXBUF: plain single-buffer chains mixed with every other kind: each is used or refused as the queue says', async () => {
    // The device takes plain one-descriptor chains straight off the ring; anything else goes through the queue's full validation.
    const r = rig(BASE | MRG | EVENT_IDX);
    const d = r.rxDrv;
    const g1 = d.addChain([{ len: 1024, write: true }], { publish: false });
    d.writeDescriptor(250, { addr: 64 * MiB, len: 1024, flags: VIRTQ_DESC_F_WRITE, next: 0 }); // not RAM
    d.addRawChain(250, [250], { publish: false });
    const g2 = d.addChain([{ len: 1024, write: true }], { publish: false });
    d.writeDescriptor(g2, { ...d.readDescriptor(g2), flags: VIRTQ_DESC_F_WRITE | 0x8 }); // an unknown flag bit: ignored
    const readable = d.addChain([{ len: 1024 }], { publish: false });
    const tiny = d.addChain([{ len: VNET - 4, write: true }], { publish: false }); // shorter than the vnet header
    const g3 = d.addChain([{ len: 512, write: true }, { len: 512, write: true }], { publish: false });
    d.writeDescriptor(251, { addr: SPARE, len: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 }); // INDIRECT was not negotiated
    d.addRawChain(251, [251], { publish: false });
    for (let i = 0; i < 70; i++) d.addChain([{ len: 1024, write: true }], { publish: false });
    if (d.publish()) r.dev.processQueue(0);
    const fr = testFrame(25, 3000); // 3012 bytes: g1, g2, g3
    host.send(fr);
    const returned: UsedElem[] = [];
    const seen = await receiveFrames(r, 1, undefined, returned);
    assert.deepEqual(returned.map((u) => u.id), [250, readable, tiny, 251], 'refused in ring order, length 0');
    assert.equal(r.dev.metrics['rx_fails'], 4);
    assert.deepEqual(seen[0]!.heads, [g1, g2, g3]);
    assert.equal(seen[0]!.numBuffers, 3);
    assert.deepEqual(seen[0]!.lens, [1024, 1024, 3012 - 2048]);
    assert.deepEqual(seen[0]!.frame, fr);
  });

  test('RX: a head outside the descriptor table is a broken ring (QueueError), whichever way the device pops', () => {
    const r = rig(BASE);
    r.rxDrv.pushAvail(300);
    r.rxDrv.publish();
    assert.throws(() => r.dev.processQueue(0), (e: unknown) => e instanceof QueueError && e.kind === 'head-out-of-range');
    assert.equal(r.dev.heldRxChains, 0);
  });

  test('RX: the rate limiter holds a received frame in the guest buffers until tokens are back', async () => {
    const r = rig(BASE | MRG, { rxRateLimiter: new RateLimiter({ ops: { size: 1, refill_time: 100 } }) });
    r.postRx(80, 1024);
    const t0 = performance.now();
    for (const m of [71, 72, 73]) host.send(testFrame(m, 200));
    for (let i = 0; i < 200 && !r.dev.hasDeferredRxFrame; i++) r.loop.runOnce(10);
    assert.deepEqual(r.rxFrames().frames.map((s) => markerOf(s.frame)).filter((x) => x !== undefined), [71]);
    assert.equal(r.dev.tapRegistered, false, 'no reading while throttled');
    assert.ok(r.dev.metrics['rx_rate_limiter_throttled']! >= 1);
    const wait = r.dev.retryInMs();
    assert.ok(wait !== undefined && wait > 0 && wait <= 100, `retryInMs ${wait}`);
    const seen: number[] = [71];
    await r.pump(() => {
      seen.push(...r.rxFrames().frames.map((s) => markerOf(s.frame)).filter((x): x is number => x !== undefined));
      return seen.length >= 3;
    }, 3000);
    assert.deepEqual(seen, [71, 72, 73]);
    assert.ok(performance.now() - t0 >= 150, 'one frame per 100 ms');
    assert.ok(r.dev.metrics['rx_event_rate_limiter_count']! >= 1);
  });

  test('reset takes the TAP out of the loop (frames keep waiting); re-activation delivers them', async () => {
    const r = rig(BASE);
    r.postRx(1, 1526);
    assert.equal(r.dev.tapRegistered, true);
    r.dev.reset();
    assert.equal(r.dev.tapRegistered, false);
    assert.equal(r.dev.isActivated, false);
    host.send(testFrame(81, 90));
    assert.equal(r.loop.runOnce(30), 0);
    // The driver starts over with fresh rings, on the same backend.
    for (const reg of r.mem.regions) reg.bytes.fill(0);
    const r2 = new Rig(r.mem, r.dev, BASE);
    rigs.push(r2);
    r2.activate();
    r2.postRx(1, 1526);
    const seen = r2.rxFrames().frames.filter((x) => markerOf(x.frame) !== undefined);
    assert.deepEqual(seen.map((s) => markerOf(s.frame)), [81], 'the frame sent while the device was reset');
  });

  test('a ring error takes the TAP out of the loop (the device thread then sets NEEDS_RESET)', () => {
    const r = rig(BASE);
    r.postRx(1, 1526);
    assert.equal(r.dev.tapRegistered, true);
    r.txDrv.setAvailIdx(r.txDrv.availIdx + 1000);
    assert.throws(() => r.dev.processQueue(1), (e: unknown) => e instanceof QueueError);
    assert.equal(r.dev.tapRegistered, false, 'no one would serve a readable TAP any more: it must not stay in a level-triggered loop');
    host.send(testFrame(85, 64));
    assert.equal(r.loop.runOnce(30), 0);
  });

  test('a TAP deleted under the device: reads and writes fail, are counted, and the loop does not spin', async () => {
    for (const r of rigs.splice(0)) r.close();
    const name = uniqueTapName('spd');
    createTap(name);
    const r = new Rig(hostMem!.mem, name, BASE | MRG);
    rigs.push(r);
    try {
      for (const reg of r.mem.regions) reg.bytes.fill(0);
      r.activate();
      r.postRx(70, 1024);
      assert.equal(r.dev.tapRegistered, true);
      deleteTap(name);
      let events = 0;
      const end = Date.now() + 500;
      while (Date.now() < end) {
        events += r.loop.runOnce(10);
        const t = r.dev.retryInMs();
        if (t === 0) r.dev.processQueue(0);
        await sleep(1);
      }
      assert.ok(r.dev.metrics['tap_read_fails']! >= 1, 'the failed read is counted');
      assert.ok(events <= 10, `${events} wake-ups in 500 ms: reads back off after an error`);
      r.transmit([testFrame(86, 64)]);
      assert.equal(r.dev.metrics['tap_write_fails'], 1);
      assert.equal(r.txDrv.drainUsed().length, 1, 'the chain is still returned');
    } finally {
      deleteTap(name);
    }
  });

  test('heap (not host-mapped) guest memory goes through node:fs readv/writev', async () => {
    const mem = createTestMemory([{ guestAddr: 0, size: 4 * MiB }]);
    const r = rig(BASE | MRG, {}, mem);
    r.postRx(70, 1024);
    r.transmit([testFrame(91, 1000)]);
    const got = await host.recvMatching((fr) => markerOf(fr) === 91, 1);
    assert.deepEqual(got[0], testFrame(91, 1000));
    host.send(testFrame(92, 2500));
    const seen = await receiveFrames(r, 1);
    assert.deepEqual(seen[0]!.frame, testFrame(92, 2500));
    assert.equal(seen[0]!.numBuffers, 3);
    assert.equal(r.dev.metrics['rx_fails'], 0);
    // A stream long enough for the held views to be consumed and trimmed many times over.
    r.rxFrames();
    await rxStream(r, 300, [1514, 60, 5000], 1024);
    assert.equal(r.dev.metrics['rx_fails'], 0);
  });

  test('throughput through the harness (printed, not asserted)', () => {
    const r = rig(BASE | EVENT_IDX);
    const frameLen = 1514;
    const chainLen = VNET + frameLen;
    const addr = SPARE;
    const buf = concat(new Uint8Array(VNET), testFrame(1000, frameLen));
    r.mem.write(addr, buf);
    const total = 128 * 470;
    const batch = 128;
    let inDevice = 0;
    const t0 = performance.now();
    for (let sent = 0; sent < total; sent += batch) {
      for (let i = 0; i < batch; i++) r.txDrv.addChain([{ addr, len: chainLen }], { publish: false });
      const td = performance.now();
      if (r.txDrv.publish()) r.dev.processQueue(1);
      inDevice += performance.now() - td;
      r.txDrv.drainUsed();
    }
    const s = (performance.now() - t0) / 1000;
    assert.equal(r.dev.metrics['tx_packets_count'], total);
    const mb = (total * frameLen) / 1e6;
    console.log(`virtio-net TX: ${total} frames of ${frameLen} B in ${(s * 1000).toFixed(0)} ms: ${(mb / s).toFixed(1)} MB/s, ${(total / s / 1000).toFixed(0)} kpps with the harness; `
      + `the device's share ${inDevice.toFixed(0)} ms: ${(mb / (inDevice / 1000)).toFixed(1)} MB/s`);

    // RX the other way: the host sends, the guest receives (MRG, buffers recycled by the harness).
    const rx = rig(BASE | MRG | EVENT_IDX);
    rx.postRx(128, 2048);
    const frame = testFrame(2000, frameLen);
    const rxTotal = 20_000;
    let got = 0;
    const t1 = performance.now();
    const deadline = Date.now() + 20_000;
    while (got < rxTotal && Date.now() < deadline) {
      const burst = Math.min(64, rxTotal - got);
      for (let i = 0; i < burst; i++) host.send(frame);
      let n = 0;
      while (n < burst && Date.now() < deadline) {
        rx.loop.runOnce(50);
        const used = rx.rxDrv.drainUsed();
        n += used.length;
        if (used.length > 0) rx.postRx(used.length, 2048);
      }
      got += n;
    }
    const s1 = (performance.now() - t1) / 1000;
    console.log(`virtio-net RX (host sends through AF_PACKET, included): ${got} frames of ${frameLen} B in ${(s1 * 1000).toFixed(0)} ms: ${((got * frameLen) / 1e6 / s1).toFixed(1)} MB/s`);
  });
});
