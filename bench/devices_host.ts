/**
 * bench/devices --host: the device models' own throughput on this host, with
 * no guest: the guest-driver harness (tests/helpers/virtio_driver.ts) plays
 * the guest's virtio ring, as in the printed throughput tests of
 * tests/unit/virtio_block.test.ts and tests/unit/virtio_net.test.ts (the same
 * helpers, the same request shapes, repeated and summarised here).
 *
 *  - virtio-blk: a page-cached scratch file, guest RAM in an anonymous host
 *    mapping (the backend's pread/pwrite-on-host-address path, as in the
 *    VMM), batches of requests published at once, then one processQueue.
 *    "device" counts processQueue alone, "end to end" the harness too; the
 *    raw preadTo/pwriteFrom loop of the same size is the syscall floor, so
 *    device µs/req minus raw µs/req is the JS cost per request.
 *  - virtio-net: a TAP (created here, deleted after), TX of 1514-byte frames
 *    from the harness's ring (the device's share timed apart), RX of frames
 *    the host sends through an AF_PACKET socket on the TAP (host send
 *    included). Needs root and /dev/net/tun.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_VERSION_1,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  featureBit,
} from '../src/generated/virtio.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../src/generated/libc.js';
import { GuestMemory } from '../src/memory/guest_memory.js';
import * as libc from '../src/sys/libc.js';
import { BlockBackend } from '../src/vmm/devices/virtio/block/index.js';
import { IoVecArray } from '../src/vmm/devices/virtio/iovec.js';
import { NetBackend } from '../src/vmm/devices/virtio/net/index.js';
import { EventManager } from '../src/vmm/event_manager.js';
import { MiB, VirtioDriver } from '../tests/helpers/virtio_driver.js';
import { PacketSocket, createHostMappedMemory, createTap, deleteTap, requireTun, uniqueTapName, waitOperUp } from '../tests/helpers/tap_host.js';
import { median } from './boot_shared.js';

export interface HostRow {
  name: string;
  /** Bytes moved per request (per frame for net). */
  bytesPerReq: number;
  /** Requests per second of each repetition (device-only timing where the row says so). */
  reqPerS: number[];
  note: string;
}

export interface HostResults {
  reps: number;
  seconds: number;
  block: HostRow[];
  net: HostRow[];
  netError: string | null;
  /** JS cost per 4 KiB read: device µs/req − raw preadTo µs/req (medians). */
  jsCostUsPer4kRead: number | null;
}

export interface HostOptions {
  reps: number;
  /** Seconds per block measurement. */
  seconds: number;
  log: (s: string) => void;
}

const f = featureBit;

// ---------------------------------------------------------------- virtio-blk

interface BlkCase {
  name: string;
  type: number;
  bytes: number;
  batch: number;
  random: boolean;
  /** Data descriptors per request (default 1): a guest's scattered pages, one descriptor each. */
  segs?: number;
}

function blockBench(o: HostOptions): { rows: HostRow[]; jsCost: number | null } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-devbench-host-'));
  const diskSize = 64 * MiB;
  const file = path.join(dir, 'disk.img');
  // Known, non-zero contents, then page-cached by the writes themselves.
  const chunk = Buffer.alloc(MiB);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + 3) & 0xff;
  const wfd = fs.openSync(file, 'w');
  for (let i = 0; i < diskSize / MiB; i++) fs.writeSync(wfd, chunk);
  fs.closeSync(wfd);
  const fd = fs.openSync(file, 'r+');
  const memSize = 80 * MiB;
  const hostAddr = libc.mmap(memSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const mem = new GuestMemory([{ guestAddr: 0, size: memSize, hostAddr, bytes: new Uint8Array(libc.view(hostAddr, memSize)) }]);
  try {
    const cases: BlkCase[] = [
      // The unit test's measurement: 4 KiB reads at consecutive 4 KiB offsets, batches of 64.
      { name: 'virtio-blk 4 KiB reads, sequential (as tests/unit/virtio_block)', type: VIRTIO_BLK_T_IN, bytes: 4096, batch: 64, random: false },
      { name: 'virtio-blk 4 KiB reads, random offsets', type: VIRTIO_BLK_T_IN, bytes: 4096, batch: 64, random: true },
      { name: 'virtio-blk 4 KiB writes, sequential', type: VIRTIO_BLK_T_OUT, bytes: 4096, batch: 64, random: false },
      { name: 'virtio-blk 4 KiB reads, one request per batch (QD1)', type: VIRTIO_BLK_T_IN, bytes: 4096, batch: 1, random: true },
      { name: 'virtio-blk 1 MiB reads (one data descriptor)', type: VIRTIO_BLK_T_IN, bytes: MiB, batch: 16, random: false },
      { name: 'virtio-blk 1 MiB writes (one data descriptor)', type: VIRTIO_BLK_T_OUT, bytes: MiB, batch: 16, random: false },
      // What Linux sends for a 1 MiB O_DIRECT transfer from a user buffer of scattered pages: 256 segments, in an indirect table.
      { name: 'virtio-blk 1 MiB reads as 256 × 4 KiB segments (indirect)', type: VIRTIO_BLK_T_IN, bytes: MiB, batch: 1, random: false, segs: 256 },
      { name: 'virtio-blk 1 MiB writes as 256 × 4 KiB segments (indirect)', type: VIRTIO_BLK_T_OUT, bytes: MiB, batch: 1, random: false, segs: 256 },
    ];
    const rows: HostRow[] = [];
    let jsCost: number | null = null;
    for (const c of cases) {
      const dev: number[] = [];
      const e2e: number[] = [];
      const raw: number[] = [];
      for (let rep = 0; rep < o.reps; rep++) {
        const r = blockCase(mem, fd, diskSize, c, o.seconds);
        dev.push(r.reqs / (r.devMs / 1000));
        e2e.push(r.reqs / (r.wallMs / 1000));
        raw.push(rawLoop(fd, mem.hostAddress(0x100000, c.bytes), c, diskSize, Math.min(0.5, o.seconds)));
      }
      const tag = c.batch === 1 ? 'one request, one processQueue' : `batches of ${c.batch}`;
      rows.push({ name: `${c.name}: device (processQueue)`, bytesPerReq: c.bytes, reqPerS: dev, note: tag });
      rows.push({ name: '  end to end (harness included)', bytesPerReq: c.bytes, reqPerS: e2e, note: '' });
      const rawName = c.segs ? `${c.type === VIRTIO_BLK_T_IN ? 'preadv' : 'pwritev'} of ${c.segs} iovecs` : c.type === VIRTIO_BLK_T_IN ? 'preadTo' : 'pwriteFrom';
      rows.push({ name: `  raw ${rawName} loop, same size (syscall floor)`, bytesPerReq: c.bytes, reqPerS: raw, note: '' });
      if (c.random && c.batch > 1 && c.type === VIRTIO_BLK_T_IN && c.bytes === 4096) {
        const d = median(dev);
        const b = median(raw);
        if (d && b) jsCost = 1e6 / d - 1e6 / b;
      }
      o.log(`host: ${c.name}: device ${(median(dev)! / 1000).toFixed(1)} k req/s, raw ${(median(raw)! / 1000).toFixed(1)} k req/s`);
    }
    return { rows, jsCost };
  } finally {
    fs.closeSync(fd);
    libc.munmap(hostAddr, memSize);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One timed run of a case (after a short warm-up), as in tests/unit/virtio_block.test.ts. */
function blockCase(mem: GuestMemory, fd: number, diskSize: number, c: BlkCase, seconds: number): { reqs: number; wallMs: number; devMs: number } {
  const QS = 256;
  const drv = new VirtioDriver(mem, { size: QS, eventIdx: true, indirect: c.segs !== undefined, dataBase: 0x100000, dataSize: 76 * MiB });
  const q = drv.createQueue(QS);
  const dev = new BlockBackend({ fd, sizeBytes: diskSize, readOnly: false, cacheType: 'Unsafe', driveId: 'bench' });
  dev.activate({ mem, queues: [q], ackedFeatures: dev.availFeatures | featureBit(VIRTIO_F_VERSION_1), interrupt: () => {} });
  const bad = (): number => (dev.metrics['invalid_reqs_count'] ?? 0) + (dev.metrics['execute_fails'] ?? 0);
  // Fixed buffers per slot, reused (as a guest's request pool would be).
  const slots = Array.from({ length: c.batch }, () => ({ hdr: drv.alloc(16), data: drv.alloc(c.bytes, 4096), status: drv.alloc(1) }));
  // Segmented cases: one indirect table per slot, written once (as Linux's request pool reuses its tables); batch 1, head 0.
  const write = c.type === VIRTIO_BLK_T_IN ? VIRTQ_DESC_F_WRITE : 0;
  const tables = c.segs === undefined ? [] : slots.map((s) => {
    const segLen = c.bytes / c.segs!;
    const descs = [
      { addr: s.hdr, len: 16, flags: 0 },
      ...Array.from({ length: c.segs! }, (_, i) => ({ addr: s.data + i * segLen, len: segLen, flags: write })),
      { addr: s.status, len: 1, flags: VIRTQ_DESC_F_WRITE },
    ].map((d, i, all) => ({ ...d, flags: d.flags | (i < all.length - 1 ? VIRTQ_DESC_F_NEXT : 0), next: i < all.length - 1 ? i + 1 : 0 }));
    const table = drv.alloc(descs.length * VIRTQ_DESC_SIZE, 16);
    drv.writeTable(descs, table);
    return { table, len: descs.length * VIRTQ_DESC_SIZE };
  });
  if (tables.length > 1) throw new Error(`${c.name}: segmented cases run one request per batch`);
  if (c.type === VIRTIO_BLK_T_OUT) for (const s of slots) drv.write(s.data, new Uint8Array(c.bytes).fill(0x5a));
  const sectors = diskSize / 512;
  const step = c.bytes / 512;
  const blocks = sectors / step;
  let sector = 0;
  const h = new Uint8Array(16);
  const hv = new DataView(h.buffer);
  hv.setUint32(0, c.type, true);
  const run = (ms: number): { reqs: number; wallMs: number; devMs: number } => {
    let reqs = 0;
    let devMs = 0;
    const start = performance.now();
    while (performance.now() - start < ms) {
      for (const s of slots) {
        if (c.random) sector = Math.floor(Math.random() * blocks) * step;
        else sector = (sector + step) % sectors;
        hv.setBigUint64(8, BigInt(sector), true);
        drv.write(s.hdr, h);
        const t = tables[0];
        if (t) {
          drv.writeTable([{ addr: t.table, len: t.len, flags: VIRTQ_DESC_F_INDIRECT, next: 0 }]);
          drv.addRawChain(0, [0], { publish: false });
        } else {
          drv.addChain([{ addr: s.hdr, len: 16 }, { addr: s.data, len: c.bytes, write: c.type === VIRTIO_BLK_T_IN }, { addr: s.status, len: 1, write: true }], { publish: false });
        }
      }
      drv.publish();
      const t0 = performance.now();
      dev.processQueue(0);
      devMs += performance.now() - t0;
      reqs += drv.drainUsed().length;
    }
    return { reqs, wallMs: performance.now() - start, devMs };
  };
  run(200); // warm-up (JIT, page cache)
  const r = run(seconds * 1000);
  if (bad()) throw new Error(`${c.name}: ${bad()} failed requests`);
  return r;
}

/**
 * Requests per second of the bare syscall loop of the same size and pattern,
 * as the device issues it: one pread/pwrite, or for a segmented case one
 * preadv/pwritev of one iovec per segment.
 */
function rawLoop(fd: number, host: bigint, c: BlkCase, diskSize: number, seconds: number): number {
  const blocks = diskSize / c.bytes;
  const segs = c.segs ?? 1;
  const segLen = c.bytes / segs;
  const iov = new IoVecArray(segs);
  for (let j = 0; j < segs; j++) iov.set(j, Number(host) + j * segLen, segLen);
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < seconds * 1000) {
    for (let i = 0; i < 64; i++) {
      const off = (c.random ? Math.floor(Math.random() * blocks) : n % blocks) * c.bytes;
      const got = c.segs === undefined
        ? (c.type === VIRTIO_BLK_T_IN ? libc.preadTo(fd, host, segLen, off) : libc.pwriteFrom(fd, host, segLen, off))
        : (c.type === VIRTIO_BLK_T_IN ? libc.tryPreadv(fd, iov.bytes, segs, off) : libc.tryPwritev(fd, iov.bytes, segs, off));
      if (got !== c.bytes) throw new Error(`${c.name}: raw transfer moved ${got} of ${c.bytes} bytes`);
      n++;
    }
    t = performance.now();
  }
  return n / ((t - t0) / 1000);
}

// ---------------------------------------------------------------- virtio-net

const VNET = 12;
const ETHERTYPE_TEST = 0x88b5; // IEEE 802 Local Experimental: nothing in the host stack handles it

function testFrame(marker: number, size: number): Uint8Array {
  const fr = new Uint8Array(size);
  fr.fill(0xff, 0, 6);
  fr.set([2, 0, 0, 0, 0, 1], 6);
  const dv = new DataView(fr.buffer);
  dv.setUint16(12, ETHERTYPE_TEST, false);
  dv.setUint32(14, marker, false);
  for (let i = 18; i < size; i++) fr[i] = (i * 7 + marker) & 0xff;
  return fr;
}

/** The unit test's rig, reduced: two driver queues on host-mapped memory, an epoll loop, the backend on a TAP. */
function netRig(mem: GuestMemory, tap: string, features: bigint): { rxDrv: VirtioDriver; txDrv: VirtioDriver; loop: EventManager; dev: NetBackend; close(): void } {
  const eventIdx = (features & f(VIRTIO_F_RING_EVENT_IDX)) !== 0n;
  for (const r of mem.regions) r.bytes.fill(0);
  const rxDrv = new VirtioDriver(mem, { size: 256, ringBase: 0x10000, dataBase: 0x100000, dataSize: 0xf0000, eventIdx, indirect: false });
  const txDrv = new VirtioDriver(mem, { size: 256, ringBase: 0x20000, dataBase: 0x210000, dataSize: 0x100000, eventIdx, indirect: false });
  const loop = new EventManager();
  const dev = new NetBackend({ id: 'eth0', tapName: tap });
  dev.activate({
    mem,
    queues: [rxDrv.createQueue(), txDrv.createQueue()],
    ackedFeatures: features,
    interrupt: () => {},
    events: { add: (fd, h, ev) => loop.add(fd, h, ev), remove: (fd) => loop.remove(fd) },
  });
  dev.processQueue(0);
  dev.processQueue(1);
  waitOperUp(tap);
  return { rxDrv, txDrv, loop, dev, close: () => { dev.close(); loop.close(); } };
}

function netBench(o: HostOptions): HostRow[] {
  requireTun();
  const tap = uniqueTapName('spkb');
  createTap(tap, 9000);
  const host = new PacketSocket(tap);
  const hm = createHostMappedMemory([{ guestAddr: 0, size: 2 * MiB }, { guestAddr: 2 * MiB, size: 2 * MiB }]);
  const frameLen = 1514;
  const tx: number[] = [];
  const txDev: number[] = [];
  const rx: number[] = [];
  try {
    for (let rep = 0; rep < o.reps; rep++) {
      // TX, as the unit test: 128 × 470 frames from one buffer, batches of 128.
      const t = netRig(hm.mem, tap, f(VIRTIO_F_VERSION_1) | f(VIRTIO_F_RING_EVENT_IDX));
      try {
        const addr = 0x380000;
        const buf = new Uint8Array(VNET + frameLen);
        buf.set(testFrame(1000, frameLen), VNET);
        t.txDrv.write(addr, buf);
        const total = 128 * 470;
        let inDevice = 0;
        const t0 = performance.now();
        for (let sent = 0; sent < total; sent += 128) {
          for (let i = 0; i < 128; i++) t.txDrv.addChain([{ addr, len: buf.length }], { publish: false });
          const td = performance.now();
          if (t.txDrv.publish()) t.dev.processQueue(1);
          inDevice += performance.now() - td;
          t.txDrv.drainUsed();
        }
        const s = (performance.now() - t0) / 1000;
        if (t.dev.metrics['tx_packets_count'] !== total) throw new Error(`TX: ${t.dev.metrics['tx_packets_count']} of ${total} frames sent`);
        tx.push(total / s);
        txDev.push(total / (inDevice / 1000));
      } finally {
        t.close();
      }
      host.drain();
      // RX: the host sends bursts of 64 frames through AF_PACKET, the guest recycles its buffers (MRG_RXBUF).
      const r = netRig(hm.mem, tap, f(VIRTIO_F_VERSION_1) | f(VIRTIO_NET_F_MRG_RXBUF) | f(VIRTIO_F_RING_EVENT_IDX));
      try {
        const post = (n: number): void => {
          for (let i = 0; i < n; i++) r.rxDrv.addChain([{ len: 2048, write: true }], { publish: false });
          if (r.rxDrv.publish()) r.dev.processQueue(0);
        };
        post(128);
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
            r.loop.runOnce(50);
            const used = r.rxDrv.drainUsed();
            n += used.length;
            if (used.length > 0) post(used.length);
          }
          got += n;
        }
        if (got < rxTotal) throw new Error(`RX: ${got} of ${rxTotal} frames arrived in 20 s`);
        rx.push(got / ((performance.now() - t1) / 1000));
      } finally {
        r.close();
      }
      host.drain();
    }
    o.log(`host: virtio-net TX ${(median(tx)! / 1000).toFixed(0)} kpps, RX ${(median(rx)! / 1000).toFixed(0)} kpps`);
  } finally {
    host.close();
    hm.free();
    deleteTap(tap);
  }
  return [
    { name: 'virtio-net TX, 1514 B frames (as tests/unit/virtio_net): end to end (harness included)', bytesPerReq: frameLen, reqPerS: tx, note: 'batches of 128, writev to the TAP' },
    { name: '  the device\'s share (publish + processQueue)', bytesPerReq: frameLen, reqPerS: txDev, note: '' },
    { name: 'virtio-net RX, 1514 B frames, host sends through AF_PACKET (its sends included)', bytesPerReq: frameLen, reqPerS: rx, note: 'bursts of 64, MRG_RXBUF, epoll loop' },
  ];
}

export async function hostBench(o: HostOptions): Promise<HostResults> {
  const b = blockBench(o);
  let net: HostRow[] = [];
  let netError: string | null = null;
  try {
    net = netBench(o);
  } catch (e) {
    netError = (e as Error).message;
    o.log(`host: virtio-net part failed: ${netError}`);
  }
  return { reps: o.reps, seconds: o.seconds, block: b.rows, net, netError, jsCostUsPer4kRead: b.jsCost };
}
