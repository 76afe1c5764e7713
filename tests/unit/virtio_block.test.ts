/**
 * virtio-blk backend, driven by the guest-driver harness against a real
 * temporary file. Most tests use guest memory backed by a real anonymous
 * mmap (so requests go through libc pread/pwrite on host addresses, as in
 * the VMM); a few use heap test memory (node:fs on the region views).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { GuestMemory } from '../../src/memory/guest_memory.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/generated/libc.js';
import {
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_VERSION_1,
  VIRTIO_ID_BLOCK,
  VIRTQ_DESC_F_NEXT,
  featureBit,
  hasFeature,
  virtqUsedRingSize, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_BLK_F_SEG_MAX } from '../../src/generated/virtio.js';
import * as libc from '../../src/sys/libc.js';
import { QueueError } from '../../src/virtio/queue/index.js';
import { BLOCK_SEG_MAX, BlockBackend, type CacheType } from '../../src/vmm/devices/virtio/block/index.js';
import { RateLimiter, type RateLimiterConfig } from '../../src/vmm/rate_limiter/index.js';
import { EventManager } from '../../src/vmm/event_manager.js';
import { createTestMemory, KiB, MiB, TEST_HIGH_RAM_BASE, VirtioDriver, type BufferSpec, type UsedElem } from '../helpers/virtio_driver.js';

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-blk-'));
const mappings: Array<{ addr: bigint; size: number }> = [];
const openFds: number[] = [];
after(() => {
  for (const fd of openFds) fs.closeSync(fd);
  for (const m of mappings) libc.munmap(m.addr, m.size);
  fs.rmSync(tmpDir, { recursive: true, force: true });
});

/** Guest RAM at [0, size) backed by an anonymous host mapping: the backend's pread/pwrite path. */
function mmapMemory(size: number): GuestMemory {
  const addr = libc.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  mappings.push({ addr, size });
  return new GuestMemory([{ guestAddr: 0, size, hostAddr: addr, bytes: new Uint8Array(libc.view(addr, size)) }]);
}

const MMAP_RAM = 2 * MiB;
const sharedMem = mmapMemory(MMAP_RAM);

/** Known disk contents: a function of the byte offset that differs between sectors. */
const patternByte = (off: number): number => (off * 31 + Math.floor(off / 512) * 7 + 3) & 0xff;
function pattern(off: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = patternByte(off + i);
  return out;
}

let fileNo = 0;
/** A temp file of `size` bytes with the pattern; returns its path and an fd (read-write unless told). */
function diskFile(size: number, mode: 'r' | 'r+' = 'r+'): { file: string; fd: number } {
  const file = path.join(tmpDir, `disk${fileNo++}.img`);
  fs.writeFileSync(file, pattern(0, size));
  const fd = fs.openSync(file, mode);
  openFds.push(fd);
  return { file, fd };
}

/** Byte-wise equality of any two byte arrays (Buffer vs Uint8Array included). */
function bytesEq(actual: Uint8Array, expected: Uint8Array, msg?: string): void {
  assert.deepEqual(Buffer.from(actual), Buffer.from(expected), msg);
}

const sha = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

interface SetupOpts {
  size?: number;
  readOnly?: boolean;
  cacheType?: CacheType;
  rateLimiter?: RateLimiter;
  mem?: GuestMemory;
  eventIdx?: boolean;
  queueSize?: number;
  driveId?: string;
  fileMode?: 'r' | 'r+';
  dataBase?: number;
  dataSize?: number;
  /** Async: the backend gets `loop` (an epoll event manager) for its io_uring completions. */
  ioEngine?: 'Sync' | 'Async';
}

function setup(opts: SetupOpts = {}) {
  const size = opts.size ?? 1 * MiB;
  const { file, fd } = diskFile(size, opts.fileMode ?? 'r+');
  const mem = opts.mem ?? sharedMem;
  const eventIdx = opts.eventIdx ?? true;
  const drv = new VirtioDriver(mem, {
    size: opts.queueSize ?? 16, eventIdx, indirect: false,
    ...(opts.dataBase !== undefined ? { dataBase: opts.dataBase } : {}),
    ...(opts.dataSize !== undefined ? { dataSize: opts.dataSize } : {}),
  });
  const q = drv.createQueue(opts.queueSize ?? 16);
  const dev = new BlockBackend({
    fd, sizeBytes: size, readOnly: opts.readOnly ?? false, cacheType: opts.cacheType ?? 'Writeback',
    driveId: opts.driveId ?? 'rootfs', ...(opts.rateLimiter ? { rateLimiter: opts.rateLimiter } : {}),
    ioEngine: opts.ioEngine ?? 'Sync',
  });
  let acked = featureBit(VIRTIO_F_VERSION_1) | dev.availFeatures;
  if (!eventIdx) acked &= ~featureBit(VIRTIO_F_RING_EVENT_IDX);
  const irq = { count: 0 };
  const loop = new EventManager();
  loops.push(loop);
  dev.activate({ mem, queues: [q], ackedFeatures: acked, interrupt: () => { irq.count++; }, events: loop });
  return { file, fd, mem, drv, q, dev, irq, loop };
}

const loops: EventManager[] = [];
after(() => {
  for (const l of loops) l.close();
});

/** Async engine: runs the event loop until `n` used entries are back (or 5 s pass); returns them. */
function completions(drv: VirtioDriver, loop: EventManager, n: number): UsedElem[] {
  const out: UsedElem[] = [];
  const end = Date.now() + 5000;
  while (out.length < n && Date.now() < end) {
    loop.runOnce(100);
    out.push(...drv.drainUsed());
  }
  return out;
}

function hdr(type: number, sector: bigint | number = 0): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, type, true);
  dv.setBigUint64(8, BigInt(sector), true);
  return b;
}

const FILL = 0xaa;
const filled = (len: number, v = FILL): Uint8Array => new Uint8Array(len).fill(v);

/** IN: header, writable data (pre-filled with 0xaa), writable status (pre-filled with 0xee). */
function readChain(drv: VirtioDriver, sector: number | bigint, dataLens: number[]): number {
  return drv.addChain([
    { data: hdr(VIRTIO_BLK_T_IN, sector) },
    ...dataLens.map((len) => ({ data: filled(len), write: true })),
    { data: filled(1, 0xee), write: true },
  ]);
}

function writeChain(drv: VirtioDriver, sector: number | bigint, data: Uint8Array[]): number {
  return drv.addChain([
    { data: hdr(VIRTIO_BLK_T_OUT, sector) },
    ...data.map((d) => ({ data: d })),
    { data: filled(1, 0xee), write: true },
  ]);
}

/** The single used entry after processing. */
function usedOne(drv: VirtioDriver): UsedElem {
  const u = drv.drainUsed();
  assert.equal(u.length, 1, `expected one used entry, got ${u.length}`);
  return u[0]!;
}

/** Status byte of a used chain built by the harness (the last buffer). */
function statusOf(drv: VirtioDriver, u: UsedElem): number {
  const s = u.buffers[u.buffers.length - 1]!;
  return drv.read(s.addr + s.len - 1, 1)[0]!;
}

/** Concatenated contents of the chain's writable data buffers (all writable buffers but the status one). */
function dataOf(drv: VirtioDriver, u: UsedElem): Uint8Array {
  const bufs = u.buffers.filter((b) => b.write).slice(0, -1);
  return Buffer.concat(bufs.map((b) => drv.read(b.addr, b.len)));
}

function readFile(fd: number, off: number, len: number): Uint8Array {
  const b = Buffer.alloc(len);
  assert.equal(fs.readSync(fd, b, 0, len, off), len);
  return b;
}

/** Byte offsets (first few) where `after` differs from `before` outside the allowed [start, end) ranges. */
function changedOutside(before: Uint8Array, after: Uint8Array, allowed: Array<[number, number]>): number[] {
  const out: number[] = [];
  for (let i = 0; i < before.length && out.length < 8; i++) {
    if (before[i] !== after[i] && !allowed.some(([s, e]) => i >= s && i < e)) out.push(i);
  }
  return out;
}

function usedRingRange(drv: VirtioDriver): [number, number] {
  return [drv.usedRing, drv.usedRing + virtqUsedRingSize(drv.size)];
}

// ---------------------------------------------------------------------------
// Identity: features, config space
// ---------------------------------------------------------------------------

test('identity: device type, one queue of 512, features by cache type and read-only, capacity config', () => {
  const { fd } = diskFile(4096);
  const wb = new BlockBackend({ fd, sizeBytes: 3 * MiB + 100, readOnly: false, cacheType: 'Writeback', driveId: 'a' });
  assert.equal(wb.deviceType, VIRTIO_ID_BLOCK);
  assert.deepEqual([...wb.queueMaxSizes], [512]);
  const base = featureBit(VIRTIO_F_RING_EVENT_IDX) | featureBit(VIRTIO_F_RING_INDIRECT_DESC) | featureBit(VIRTIO_BLK_F_SEG_MAX);
  assert.equal(wb.availFeatures, base | featureBit(VIRTIO_BLK_F_FLUSH));
  assert.ok(!hasFeature(wb.availFeatures, VIRTIO_F_VERSION_1), 'the transport adds VERSION_1');
  const cfg = wb.configSpace();
  assert.equal(cfg.length, 16);
  assert.equal(new DataView(cfg.buffer).getBigUint64(0, true), BigInt((3 * MiB) / 512), 'capacity in sectors, tail bytes hidden');
  assert.equal(new DataView(cfg.buffer).getUint32(12, true), 510, 'seg_max: requests of up to 510 segments (queue size - 2)');

  const unsafe = new BlockBackend({ fd, sizeBytes: 4096, readOnly: false, cacheType: 'Unsafe', driveId: 'b' });
  assert.equal(unsafe.availFeatures, base, 'Unsafe: no FLUSH');
  const ro = new BlockBackend({ fd, sizeBytes: 4096, readOnly: true, cacheType: 'Unsafe', driveId: 'c' });
  assert.equal(ro.availFeatures, base | featureBit(VIRTIO_BLK_F_RO));

  assert.throws(() => new BlockBackend({ fd, sizeBytes: -1, readOnly: false, cacheType: 'Unsafe', driveId: 'x' }), RangeError);
  assert.throws(() => new BlockBackend({ fd, sizeBytes: 1, readOnly: false, cacheType: 'Bogus' as CacheType, driveId: 'x' }), RangeError);
});

test('processQueue before activate does nothing; activate with the wrong queue count fails', () => {
  const { fd } = diskFile(4096);
  const dev = new BlockBackend({ fd, sizeBytes: 4096, readOnly: false, cacheType: 'Unsafe', driveId: 'x' });
  dev.processQueue(0);
  assert.throws(() => dev.activate({ mem: sharedMem, queues: [], ackedFeatures: 0n, interrupt: () => {} }));
  assert.equal(dev.metrics['activate_fails'], 1);
});

// ---------------------------------------------------------------------------
// Reads and writes
// ---------------------------------------------------------------------------

test('IN: reads the file contents at sector offsets into guest memory (pread straight into RAM)', () => {
  const { drv, dev, irq } = setup();
  const cases: Array<{ sector: number; lens: number[] }> = [
    { sector: 0, lens: [512] },
    { sector: 1, lens: [512] },
    { sector: 7, lens: [4096] },
    { sector: 100, lens: [1000, 24, 512] }, // data split over descriptors at odd boundaries
    { sector: 2047, lens: [512] }, // last sector of the 1 MiB disk
  ];
  for (const c of cases) {
    readChain(drv, c.sector, c.lens);
    dev.processQueue(0);
    const u = usedOne(drv);
    const total = c.lens.reduce((a, b) => a + b, 0);
    assert.equal(statusOf(drv, u), VIRTIO_BLK_S_OK, `sector ${c.sector}`);
    assert.equal(u.len, total + 1, 'used length = data read + status byte');
    bytesEq(dataOf(drv, u), Buffer.from(pattern(c.sector * 512, total)), `contents of sector ${c.sector}`);
  }
  assert.equal(dev.metrics['read_count'], cases.length);
  assert.equal(dev.metrics['read_bytes'], 512 + 512 + 4096 + 1536 + 512);
  assert.equal(dev.metrics['invalid_reqs_count'], 0);
  assert.equal(dev.metrics['execute_fails'], 0);
  assert.ok(irq.count >= 1);
});

test('OUT then IN: a write round trip through guest memory and the file', () => {
  const { drv, dev, fd } = setup();
  const data = new Uint8Array(randomBytes(8 * KiB));
  writeChain(drv, 10, [data.subarray(0, 3000), data.subarray(3000)]);
  dev.processQueue(0);
  const w = usedOne(drv);
  assert.equal(statusOf(drv, w), VIRTIO_BLK_S_OK);
  assert.equal(w.len, 1, 'a write puts only the status byte in guest memory');
  bytesEq(readFile(fd, 10 * 512, data.length), Buffer.from(data), 'the file has the data');
  bytesEq(readFile(fd, 9 * 512, 512), Buffer.from(pattern(9 * 512, 512)), 'sector before untouched');
  bytesEq(readFile(fd, 26 * 512, 512), Buffer.from(pattern(26 * 512, 512)), 'sector after untouched');

  readChain(drv, 10, [8 * KiB]);
  dev.processQueue(0);
  const r = usedOne(drv);
  assert.equal(statusOf(drv, r), VIRTIO_BLK_S_OK);
  bytesEq(dataOf(drv, r), Buffer.from(data), 'read back what was written');
  assert.equal(dev.metrics['write_count'], 1);
  assert.equal(dev.metrics['write_bytes'], 8 * KiB);
  assert.ok(dev.metrics['write_agg.sum_us']! >= 0 && dev.metrics['read_agg.max_us']! >= dev.metrics['read_agg.min_us']!);
});

test('heap test memory (node:fs path): buffers in high RAM above 4 GiB and across adjacent regions', () => {
  // Two adjacent regions [0, 1M) [1M, 2M), plus high RAM at 4 GiB.
  const mem = GuestMemory.forTest([
    { guestAddr: 0, size: MiB }, { guestAddr: MiB, size: MiB }, { guestAddr: TEST_HIGH_RAM_BASE, size: MiB },
  ]);
  const { drv, dev, fd } = setup({ mem });
  const data = new Uint8Array(randomBytes(1024));
  const span = MiB - 300; // straddles the region boundary
  drv.addChain([{ data: hdr(VIRTIO_BLK_T_OUT, 4) }, { addr: span, data }, { len: 1, write: true }]);
  dev.processQueue(0);
  assert.equal(statusOf(drv, usedOne(drv)), VIRTIO_BLK_S_OK);
  bytesEq(readFile(fd, 4 * 512, 1024), Buffer.from(data));

  const high = TEST_HIGH_RAM_BASE + 0x1000;
  drv.addChain([{ data: hdr(VIRTIO_BLK_T_IN, 4) }, { addr: high, len: 512, write: true }, { addr: span, len: 1024, write: true }, { len: 1, write: true }]);
  dev.processQueue(0);
  const u = usedOne(drv);
  assert.equal(statusOf(drv, u), VIRTIO_BLK_S_OK);
  assert.equal(u.len, 1537);
  bytesEq(drv.read(high, 512), Buffer.from(data.subarray(0, 512)));
  bytesEq(drv.read(span, 512), Buffer.from(data.subarray(512)));
  bytesEq(drv.read(span + 512, 512), Buffer.from(pattern(6 * 512, 512)));
});

test('a chain with the header split over two descriptors is parsed on bytes, not descriptors', () => {
  const { drv, dev } = setup();
  const h = hdr(VIRTIO_BLK_T_IN, 3);
  drv.addChain([{ data: h.subarray(0, 4) }, { data: h.subarray(4) }, { data: filled(512), write: true }, { len: 1, write: true }]);
  dev.processQueue(0);
  const u = usedOne(drv);
  assert.equal(statusOf(drv, u), VIRTIO_BLK_S_OK);
  bytesEq(drv.read(u.buffers[2]!.addr, 512), Buffer.from(pattern(3 * 512, 512)));
});

test('2 MiB requests of 510 segments (SEG_MAX) in an indirect table, in host-mapped RAM split into two adjacent regions', () => {
  // One mapping seen as two regions meeting at 3 MiB, as the VMM splits large RAM: segments cross the seam.
  const size = 16 * MiB;
  const addr = libc.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  mappings.push({ addr, size });
  const whole = new Uint8Array(libc.view(addr, size));
  const seam = 3 * MiB;
  const mem = new GuestMemory([
    { guestAddr: 0, size: seam, hostAddr: addr, bytes: whole.subarray(0, seam) },
    { guestAddr: seam, size: size - seam, hostAddr: addr + BigInt(seam), bytes: whole.subarray(seam) },
  ]);
  const { drv, dev, fd } = setup({ mem, size: 4 * MiB, queueSize: 16, dataBase: 2 * MiB, dataSize: 12 * MiB });
  const SEGS = BLOCK_SEG_MAX;
  assert.equal(SEGS, 510);
  const seg = 4096;
  // OUT: the header and the first 512 data bytes share the first descriptor.
  const data = new Uint8Array(randomBytes(512 + SEGS * seg));
  const first = new Uint8Array(16 + 512);
  first.set(hdr(VIRTIO_BLK_T_OUT, 8));
  first.set(data.subarray(0, 512), 16);
  drv.addIndirectChain([
    { data: first },
    ...Array.from({ length: SEGS }, (_, i) => ({ data: data.subarray(512 + i * seg, 512 + (i + 1) * seg) })),
    { data: filled(1, 0xee), write: true },
  ]);
  dev.processQueue(0);
  assert.equal(statusOf(drv, usedOne(drv)), VIRTIO_BLK_S_OK);
  bytesEq(readFile(fd, 8 * 512, data.length), Buffer.from(data), 'the file has every segment, in order');

  // IN of the same extent into SEGS segments, then the status in its own descriptor.
  drv.addIndirectChain([
    { data: hdr(VIRTIO_BLK_T_IN, 9) },
    ...Array.from({ length: SEGS }, () => ({ data: filled(seg), write: true })),
    { data: filled(1, 0xee), write: true },
  ]);
  dev.processQueue(0);
  const u = usedOne(drv);
  assert.equal(statusOf(drv, u), VIRTIO_BLK_S_OK);
  assert.equal(u.len, SEGS * seg + 1);
  bytesEq(dataOf(drv, u), Buffer.from(data.subarray(512)), 'read back from sector 9');
  assert.ok(u.buffers.some((b) => b.addr < seam && b.addr + b.len > seam) || u.buffers.some((b) => b.addr >= seam), 'the data reached the second region');
  assert.equal(dev.metrics['read_count'], 1);
  assert.equal(dev.metrics['write_count'], 1);
});

// ---------------------------------------------------------------------------
// Read-only, FLUSH, GET_ID, unsupported, out of range
// ---------------------------------------------------------------------------

test('read-only drive: OUT is refused with IOERR and the file stays byte-identical (even on a writable fd); reads work', () => {
  // The fd is opened read-write on purpose: only the backend's own check stands between the guest and the file.
  const { drv, dev, file } = setup({ readOnly: true, fileMode: 'r+' });
  const before = sha(file);
  const sizeBefore = fs.statSync(file).size;
  writeChain(drv, 0, [filled(4096, 0x55)]);
  writeChain(drv, 2040, [filled(512, 0x66)]);
  dev.processQueue(0);
  const used = drv.drainUsed();
  assert.equal(used.length, 2);
  for (const u of used) {
    assert.equal(statusOf(drv, u), VIRTIO_BLK_S_IOERR);
    assert.equal(u.len, 1);
  }
  assert.equal(sha(file), before, 'file contents unchanged');
  assert.equal(fs.statSync(file).size, sizeBefore);
  assert.equal(dev.metrics['write_count'], 0);
  assert.equal(dev.metrics['write_bytes'], 0);
  assert.equal(dev.metrics['invalid_reqs_count'], 2);

  readChain(drv, 1, [512]);
  dev.processQueue(0);
  const r = usedOne(drv);
  assert.equal(statusOf(drv, r), VIRTIO_BLK_S_OK);
  bytesEq(dataOf(drv, r), Buffer.from(pattern(512, 512)));
});

test('FLUSH: Writeback syncs (flush_count), Unsafe does not offer it and completes OK without syncing', () => {
  const wb = setup({ cacheType: 'Writeback' });
  wb.drv.addChain([{ data: hdr(VIRTIO_BLK_T_FLUSH) }, { data: filled(1, 0xee), write: true }]);
  wb.dev.processQueue(0);
  let u = usedOne(wb.drv);
  assert.equal(statusOf(wb.drv, u), VIRTIO_BLK_S_OK);
  assert.equal(u.len, 1);
  assert.equal(wb.dev.metrics['flush_count'], 1, 'Writeback: fsync performed');

  const un = setup({ cacheType: 'Unsafe' });
  assert.ok(!hasFeature(un.dev.availFeatures, VIRTIO_BLK_F_FLUSH), 'Unsafe: FLUSH not offered');
  un.drv.addChain([{ data: hdr(VIRTIO_BLK_T_FLUSH) }, { data: filled(1, 0xee), write: true }]);
  un.dev.processQueue(0);
  u = usedOne(un.drv);
  assert.equal(statusOf(un.drv, u), VIRTIO_BLK_S_OK);
  assert.equal(un.dev.metrics['flush_count'], 0, 'Unsafe: no sync');

  // A closed fd makes fsync fail: IOERR, not a crash.
  const { fd } = diskFile(4096);
  const broken = new BlockBackend({ fd, sizeBytes: 4096, readOnly: false, cacheType: 'Writeback', driveId: 'x' });
  const drv = new VirtioDriver(sharedMem, { size: 16, eventIdx: true });
  broken.activate({ mem: sharedMem, queues: [drv.createQueue()], ackedFeatures: broken.availFeatures, interrupt: () => {} });
  broken.updateDisk(1_000_000, 4096); // not an open fd
  drv.addChain([{ data: hdr(VIRTIO_BLK_T_FLUSH) }, { len: 1, write: true }]);
  broken.processQueue(0);
  assert.equal(statusOf(drv, usedOne(drv)), VIRTIO_BLK_S_IOERR);
  assert.equal(broken.metrics['invalid_reqs_count'], 1);
});

test('GET_ID: the drive id, zero-padded to 20 bytes; truncated when longer; short buffer → IOERR', () => {
  const { drv, dev } = setup({ driveId: 'rootfs' });
  drv.addChain([{ data: hdr(VIRTIO_BLK_T_GET_ID) }, { data: filled(32), write: true }, { len: 1, write: true }]);
  dev.processQueue(0);
  let u = usedOne(drv);
  assert.equal(statusOf(drv, u), VIRTIO_BLK_S_OK);
  assert.equal(u.len, 21);
  const got = drv.read(u.buffers[1]!.addr, 32);
  bytesEq(got.subarray(0, 20), Buffer.concat([Buffer.from('rootfs'), Buffer.alloc(14)]));
  bytesEq(got.subarray(20), Buffer.from(filled(12)), 'nothing written past the 20 id bytes');

  const long = setup({ driveId: 'a-very-long-drive-identifier' });
  long.drv.addChain([{ data: hdr(VIRTIO_BLK_T_GET_ID) }, { len: 20, write: true }, { len: 1, write: true }]);
  long.dev.processQueue(0);
  u = usedOne(long.drv);
  assert.equal(statusOf(long.drv, u), VIRTIO_BLK_S_OK);
  assert.equal(Buffer.from(long.drv.read(u.buffers[1]!.addr, 20)).toString(), 'a-very-long-drive-id');

  drv.addChain([{ data: hdr(VIRTIO_BLK_T_GET_ID) }, { data: filled(19), write: true }, { len: 1, write: true }]);
  dev.processQueue(0);
  u = usedOne(drv);
  assert.equal(statusOf(drv, u), VIRTIO_BLK_S_IOERR);
  assert.equal(u.len, 1);
  bytesEq(drv.read(u.buffers[1]!.addr, 19), Buffer.from(filled(19)));
});

test('unsupported request types → UNSUPP, used length 1', () => {
  const { drv, dev } = setup();
  for (const t of [11 /* DISCARD */, 13 /* WRITE_ZEROES */, 0xdeadbeef]) {
    drv.addChain([{ data: hdr(t) }, { data: filled(512) }, { len: 1, write: true }]);
  }
  dev.processQueue(0);
  const used = drv.drainUsed();
  assert.equal(used.length, 3);
  for (const u of used) {
    assert.equal(statusOf(drv, u), VIRTIO_BLK_S_UNSUPP);
    assert.equal(u.len, 1);
  }
  assert.equal(dev.metrics['invalid_reqs_count'], 3);
});

test('out-of-range and badly sized requests → IOERR, no data transferred, file untouched', () => {
  const { drv, dev, file } = setup(); // 2048 sectors
  const before = sha(file);
  const cases: Array<{ build: () => void; what: string }> = [
    { what: 'IN straddling the end', build: () => readChain(drv, 2047, [1024]) },
    { what: 'IN at capacity', build: () => readChain(drv, 2048, [512]) },
    { what: 'IN at sector 2^64-1 (overflow)', build: () => readChain(drv, 0xffffffffffffffffn, [512]) },
    { what: 'IN of 100 bytes', build: () => readChain(drv, 0, [100]) },
    { what: 'OUT straddling the end', build: () => writeChain(drv, 2047, [filled(1024)]) },
    { what: 'OUT at sector 2^63', build: () => writeChain(drv, 1n << 63n, [filled(512)]) },
    { what: 'OUT of 513 bytes', build: () => writeChain(drv, 0, [filled(513)]) },
  ];
  for (const c of cases) {
    c.build();
    dev.processQueue(0);
    const u = usedOne(drv);
    assert.equal(statusOf(drv, u), VIRTIO_BLK_S_IOERR, c.what);
    assert.equal(u.len, 1, c.what);
    const bufs = u.buffers.filter((b) => b.write).slice(0, -1);
    for (const b of bufs) bytesEq(drv.read(b.addr, b.len), Buffer.from(filled(b.len)), `${c.what}: data buffer untouched`);
  }
  assert.equal(sha(file), before);
  assert.equal(dev.metrics['execute_fails'], cases.length);
  assert.equal(dev.metrics['read_bytes'] + dev.metrics['write_bytes'], 0);
});

test('IN past the end of a file shorter than the configured size: IOERR with the bytes read counted', () => {
  const { drv, dev, fd } = setup({ size: 4096 });
  dev.updateDisk(fd, 8192); // claims 16 sectors; the file has 8
  readChain(drv, 6, [2048]);
  dev.processQueue(0);
  const u = usedOne(drv);
  assert.equal(statusOf(drv, u), VIRTIO_BLK_S_IOERR);
  assert.equal(u.len, 1024 + 1, 'used length counts the 1024 bytes that were read');
  bytesEq(dataOf(drv, u).subarray(0, 1024), Buffer.from(pattern(6 * 512, 1024)));
  assert.equal(dev.metrics['read_count'], 0);
  assert.equal(dev.metrics['invalid_reqs_count'], 1);
});

test('updateDisk: new file and capacity in the config space; reads beyond the old capacity now succeed', () => {
  const { drv, dev } = setup({ size: 4096 });
  readChain(drv, 8, [512]);
  dev.processQueue(0);
  assert.equal(statusOf(drv, usedOne(drv)), VIRTIO_BLK_S_IOERR);
  const { fd: fd2 } = diskFile(64 * KiB);
  dev.updateDisk(fd2, 64 * KiB);
  assert.equal(new DataView(dev.configSpace().buffer).getBigUint64(0, true), 128n);
  assert.equal(dev.fd, fd2);
  assert.equal(dev.metrics['update_count'], 1);
  readChain(drv, 8, [512]);
  dev.processQueue(0);
  const u = usedOne(drv);
  assert.equal(statusOf(drv, u), VIRTIO_BLK_S_OK);
  bytesEq(dataOf(drv, u), Buffer.from(pattern(8 * 512, 512)));
  assert.throws(() => dev.updateDisk(fd2, -5), RangeError);
  assert.equal(dev.metrics['update_fails'], 1);
});

// ---------------------------------------------------------------------------
// Hostile chains
// ---------------------------------------------------------------------------

/** Runs one hostile chain; asserts nothing in guest memory changed but the used ring and `allowed`, and the file is intact. */
function hostile(
  name: string,
  build: (drv: VirtioDriver) => void,
  check: (u: UsedElem, drv: VirtioDriver) => void,
  allowed: (drv: VirtioDriver) => Array<[number, number]> = () => [],
): void {
  const { drv, dev, file, mem, irq } = setup();
  const fileBefore = sha(file);
  build(drv);
  const memBefore = mem.regions[0]!.bytes.slice();
  dev.processQueue(0);
  const u = usedOne(drv);
  check(u, drv);
  const changed = changedOutside(memBefore, mem.regions[0]!.bytes, [usedRingRange(drv), ...allowed(drv)]);
  assert.deepEqual(changed, [], `${name}: guest memory changed outside the used ring at ${changed.map((a) => '0x' + a.toString(16)).join(', ')}`);
  assert.equal(sha(file), fileBefore, `${name}: file untouched`);
  assert.equal(irq.count, 1, `${name}: the driver is told`);
  // The device carries on: a good request still works.
  readChain(drv, 5, [512]);
  dev.processQueue(0);
  const ok = usedOne(drv);
  assert.equal(statusOf(drv, ok), VIRTIO_BLK_S_OK, `${name}: later requests still served`);
  bytesEq(dataOf(drv, ok), Buffer.from(pattern(5 * 512, 512)));
}

test('hostile: missing status descriptor on OUT (nothing device-writable) → returned with length 0, file untouched', () => {
  hostile('no status', (drv) => {
    drv.addChain([{ data: hdr(VIRTIO_BLK_T_OUT, 0) }, { data: filled(512, 0x11) }]);
  }, (u) => assert.equal(u.len, 0));
});

test('hostile: missing status descriptor on IN → the last data byte is the status: IOERR there, nothing else written', () => {
  let dataAddr = 0;
  hostile('IN without status', (drv) => {
    drv.addChain([{ data: hdr(VIRTIO_BLK_T_IN, 0) }, { data: filled(512), write: true }]);
  }, (u, drv) => {
    assert.equal(u.len, 1);
    const b = u.buffers[1]!;
    dataAddr = b.addr;
    assert.equal(drv.read(b.addr + 511, 1)[0], VIRTIO_BLK_S_IOERR, '511 data bytes: not a multiple of 512');
    bytesEq(drv.read(b.addr, 511), Buffer.from(filled(511)));
  }, () => [[dataAddr + 511, dataAddr + 512]]);
});

test('hostile: status descriptor read-only', () => {
  // OUT: everything device-readable, no status byte at all.
  hostile('OUT, read-only status', (drv) => {
    drv.addChain([{ data: hdr(VIRTIO_BLK_T_OUT, 0) }, { data: filled(512, 0x22) }, { data: filled(1, 0xee) }]);
  }, (u) => assert.equal(u.len, 0));
  // IN: a read-only descriptor after writable ones breaks §2.7.4.2 ordering: the chain is rejected unread.
  hostile('IN, read-only status', (drv) => {
    drv.addChain([{ data: hdr(VIRTIO_BLK_T_IN, 0) }, { data: filled(512), write: true }, { data: filled(1, 0xee) }]);
  }, (u) => assert.equal(u.len, 0));
});

test('hostile: header too short → IOERR in the status byte', () => {
  let st = 0;
  hostile('8-byte header', (drv) => {
    drv.addChain([{ data: hdr(VIRTIO_BLK_T_OUT, 0).subarray(0, 8) }, { data: filled(1, 0xee), write: true }]);
  }, (u, drv) => {
    st = u.buffers[1]!.addr;
    assert.equal(u.len, 1);
    assert.equal(statusOf(drv, u), VIRTIO_BLK_S_IOERR);
  }, () => [[st, st + 1]]);
  hostile('header only, no status', (drv) => {
    drv.addChain([{ data: hdr(VIRTIO_BLK_T_IN, 0).subarray(0, 4) }]);
  }, (u) => assert.equal(u.len, 0));
});

test('hostile: IN with device-readable data, OUT with device-writable data → IOERR, nothing transferred', () => {
  let st = 0;
  hostile('IN with readable data', (drv) => {
    drv.addChain([{ data: hdr(VIRTIO_BLK_T_IN, 0) }, { data: filled(512) }, { data: filled(1, 0xee), write: true }]);
  }, (u, drv) => {
    st = u.buffers[2]!.addr;
    assert.equal(statusOf(drv, u), VIRTIO_BLK_S_IOERR);
  }, () => [[st, st + 1]]);
  hostile('OUT with writable data', (drv) => {
    drv.addChain([{ data: hdr(VIRTIO_BLK_T_OUT, 0) }, { data: filled(512), write: true }, { data: filled(1, 0xee), write: true }]);
  }, (u, drv) => {
    st = u.buffers[2]!.addr;
    assert.equal(statusOf(drv, u), VIRTIO_BLK_S_IOERR);
    bytesEq(drv.read(u.buffers[1]!.addr, 512), Buffer.from(filled(512)));
  }, () => [[st, st + 1]]);
});

test('hostile: data buffer outside RAM, or straddling its end → chain returned with length 0, nothing read or written', () => {
  for (const [what, addr, len] of [
    ['beyond RAM', 0x30_0000, 512],
    ['straddling the end of RAM', MMAP_RAM - 256, 512],
    ['at 2^52', 2 ** 52, 512],
  ] as const) {
    for (const type of [VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT]) {
      hostile(`${what} (${type === VIRTIO_BLK_T_IN ? 'IN' : 'OUT'})`, (drv) => {
        drv.addChain([
          { data: hdr(type, 0) },
          { addr, len, write: type === VIRTIO_BLK_T_IN },
          { data: filled(1, 0xee), write: true },
        ]);
      }, (u) => assert.equal(u.len, 0));
    }
  }
});

test('hostile: descriptor loop and next out of range → chain returned with length 0', () => {
  hostile('loop', (drv) => {
    const h = drv.alloc(16);
    drv.write(h, hdr(VIRTIO_BLK_T_IN, 0));
    drv.writeDescriptor(0, { addr: h, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 1 });
    drv.writeDescriptor(1, { addr: drv.alloc(512), len: 512, flags: VIRTQ_DESC_F_NEXT, next: 0 });
    drv.addRawChain(0, [0, 1]);
  }, (u) => assert.equal(u.len, 0));
  hostile('next out of range', (drv) => {
    const h = drv.alloc(16);
    drv.write(h, hdr(VIRTIO_BLK_T_IN, 0));
    drv.writeDescriptor(0, { addr: h, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 999 });
    drv.addRawChain(0, [0]);
  }, (u) => assert.equal(u.len, 0));
});

test('hostile ring: avail idx jump or head out of range → QueueError (the transport sets DEVICE_NEEDS_RESET)', () => {
  const a = setup();
  a.drv.setAvailIdx(100);
  assert.throws(() => a.dev.processQueue(0), (e: unknown) => e instanceof QueueError && e.kind === 'avail-idx');
  const b = setup();
  b.drv.addRawChain(40, []); // queue size 16
  assert.throws(() => b.dev.processQueue(0), (e: unknown) => e instanceof QueueError && e.kind === 'head-out-of-range');
});

// ---------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------

test('interrupts: one per processed batch with EVENT_IDX; none when the driver sets NO_INTERRUPT (no EVENT_IDX)', () => {
  const a = setup({ eventIdx: true });
  for (let i = 0; i < 5; i++) readChain(a.drv, i, [512]);
  a.dev.processQueue(0);
  assert.equal(a.drv.drainUsed().length, 5);
  assert.equal(a.irq.count, 1);
  a.dev.processQueue(0); // nothing available
  assert.equal(a.irq.count, 1);
  assert.equal(a.dev.metrics['no_avail_buffer'], 1);
  assert.equal(a.drv.availEvent(), a.drv.availIdx, 'avail_event re-armed at the next entry');

  const b = setup({ eventIdx: false });
  b.drv.setNoInterrupt(true);
  readChain(b.drv, 0, [512]);
  b.dev.processQueue(0);
  assert.equal(b.drv.drainUsed().length, 1);
  assert.equal(b.irq.count, 0);
});

// ---------------------------------------------------------------------------
// Rate limiting
// ---------------------------------------------------------------------------

function fakeClock() {
  const c = { now: 0, clock: () => c.now };
  return c;
}

/** Kicks once, then plays the timer: advances the clock by retryInMs and reprocesses until `total` chains are used. Returns the completion times. */
function runThrottled(drv: VirtioDriver, dev: BlockBackend, c: { now: number }, total: number): number[] {
  const times: number[] = [];
  dev.processQueue(0);
  for (let guard = 0; guard < 10_000; guard++) {
    for (const _ of drv.drainUsed()) times.push(c.now);
    if (times.length >= total) break;
    const ms = dev.retryInMs();
    assert.notEqual(ms, undefined, `stalled after ${times.length} of ${total} without a retry time`);
    c.now += ms!;
    dev.processQueue(0);
  }
  return times;
}

test('rate limiter (ops 10/s): a burst of 35 reads completes over time, in order, none lost', () => {
  const c = fakeClock();
  const rl = new RateLimiter({ ops: { size: 10, refill_time: 1000 } }, c.clock);
  const { drv, dev } = setup({ rateLimiter: rl, queueSize: 128 });
  for (let i = 0; i < 35; i++) readChain(drv, i, [512]);

  dev.processQueue(0);
  assert.equal(drv.drainUsed().length, 10, 'the bucket allows 10 at once');
  assert.equal(dev.metrics['rate_limiter_throttled_events'], 1);
  assert.equal(dev.retryInMs(), 100, 'one op token every 100 ms');

  // A kick while blocked does not process (and does not lose anything).
  readChain(drv, 35, [512]);
  dev.processQueue(0);
  assert.equal(drv.drainUsed().length, 0);
  assert.equal(dev.metrics['rate_limiter_throttled_events'], 2);

  const times = runThrottled(drv, dev, c, 26);
  assert.equal(times.length, 26);
  assert.equal(c.now, 2600, '26 more requests at 10/s take 2.6 s');
  // Completion is spread evenly: never more than one per 100 ms after the burst.
  for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 100 || times[i] === times[i - 1]);
  assert.equal(dev.metrics['read_count'], 36);
  assert.equal(dev.retryInMs(), undefined, 'drained: no retry pending');
});

test('rate limiter (bandwidth 16 KiB/s): 4 KiB reads are paced by bytes; the op token is given back when bytes are refused', () => {
  const c = fakeClock();
  const rl = new RateLimiter({ bandwidth: { size: 16 * KiB, refill_time: 1000 }, ops: { size: 100, refill_time: 1000 } }, c.clock);
  const { drv, dev } = setup({ rateLimiter: rl, queueSize: 64 });
  for (let i = 0; i < 12; i++) readChain(drv, i * 8, [4 * KiB]);
  dev.processQueue(0);
  assert.equal(drv.drainUsed().length, 4, '16 KiB of budget = four 4 KiB reads');
  assert.equal(rl.ops!.budget, 96, 'the refused request did not keep its op token');
  assert.equal(dev.retryInMs(), 250);
  const times = runThrottled(drv, dev, c, 8);
  assert.equal(times.length, 8);
  assert.equal(c.now, 2000, '8 more × 4 KiB at 16 KiB/s = 2 s');
  assert.equal(dev.metrics['read_bytes'], 12 * 4 * KiB);
});

test('rate limiter: updateRateLimiter lifts a block at once', () => {
  const c = fakeClock();
  const rl = new RateLimiter({ ops: { size: 1, refill_time: 60_000 } }, c.clock);
  const { drv, dev } = setup({ rateLimiter: rl });
  for (let i = 0; i < 4; i++) readChain(drv, i, [512]);
  dev.processQueue(0);
  assert.equal(drv.drainUsed().length, 1);
  assert.equal(dev.retryInMs(), 60_000);
  dev.updateRateLimiter(undefined, { size: 0, refill_time: 0 }); // disable the ops bucket
  dev.processQueue(0);
  assert.equal(drv.drainUsed().length, 3);
});

// ---------------------------------------------------------------------------
// Throughput (printed, not asserted)
// ---------------------------------------------------------------------------

test('throughput: 4 KiB reads through the harness (printed)', () => {
  const mem = mmapMemory(8 * MiB);
  const diskSize = 64 * MiB;
  const { fd } = diskFile(diskSize);
  const QS = 256;
  const BATCH = 64; // 3 descriptors per request, 256 descriptors
  const drv = new VirtioDriver(mem, { size: QS, eventIdx: true, indirect: false, dataBase: 0x100000, dataSize: 6 * MiB });
  const q = drv.createQueue(QS);
  const dev = new BlockBackend({ fd, sizeBytes: diskSize, readOnly: false, cacheType: 'Writeback', driveId: 'bench' });
  dev.activate({ mem, queues: [q], ackedFeatures: dev.availFeatures | featureBit(VIRTIO_F_VERSION_1), interrupt: () => {} });

  // Fixed buffers per slot, reused (as a guest's request pool would be).
  const slots = Array.from({ length: BATCH }, () => ({ hdr: drv.alloc(16), data: drv.alloc(4096, 4096), status: drv.alloc(1) }));
  const sectors = diskSize / 512;
  let sector = 0;
  const h = new Uint8Array(16);
  const hv = new DataView(h.buffer);
  hv.setUint32(0, VIRTIO_BLK_T_IN, true);

  const run = (ms: number): { reqs: number; wallMs: number; devMs: number } => {
    let reqs = 0;
    let devMs = 0;
    const start = performance.now();
    while (performance.now() - start < ms) {
      for (const s of slots) {
        hv.setBigUint64(8, BigInt(sector), true);
        sector = (sector + 8) % sectors;
        drv.write(s.hdr, h);
        const bufs: BufferSpec[] = [{ addr: s.hdr, len: 16 }, { addr: s.data, len: 4096, write: true }, { addr: s.status, len: 1, write: true }];
        drv.addChain(bufs, { publish: false });
      }
      drv.publish();
      const t0 = performance.now();
      dev.processQueue(0);
      devMs += performance.now() - t0;
      reqs += drv.drainUsed().length;
    }
    return { reqs, wallMs: performance.now() - start, devMs };
  };

  run(200); // warm up (JIT, page cache)
  const r = run(1500);
  assert.equal(dev.metrics['invalid_reqs_count'] + dev.metrics['execute_fails'], 0);

  // Baseline: the same 4 KiB preads from a JS loop with nothing else.
  const host = mem.hostAddress(slots[0]!.data, 4096);
  let n = 0;
  const b0 = performance.now();
  while (performance.now() - b0 < 500) {
    for (let i = 0; i < 256; i++) {
      libc.preadTo(fd, host, 4096, (n % sectors) * 512);
      n++;
    }
  }
  const rawIops = n / ((performance.now() - b0) / 1000);

  const fmt = (reqs: number, ms: number): string => {
    const iops = reqs / (ms / 1000);
    return `${(iops * 4096 / 1e6).toFixed(1)} MB/s, ${Math.round(iops).toLocaleString('en-US')} IOPS, ${(1e6 / iops).toFixed(2)} µs/req`;
  };
  const lines = [
    `virtio-blk 4 KiB reads, page-cached 64 MiB file, batches of ${BATCH} (${r.reqs.toLocaleString('en-US')} requests):`,
    `  device (processQueue only):   ${fmt(r.reqs, r.devMs)}`,
    `  end to end (incl. harness):   ${fmt(r.reqs, r.wallMs)}`,
    `  raw preadTo loop (baseline):  ${fmt(n, (n / rawIops) * 1000)}`,
  ];
  for (const l of lines) console.log(l);
});

// ---------------------------------------------------------------------------
// Async engine (io_engine "Async": io_uring)
// ---------------------------------------------------------------------------

test('Async engine: reads and writes go to the io_uring and complete through the event loop, data intact', () => {
  const { drv, dev, fd, loop, irq } = setup({ ioEngine: 'Async', queueSize: 64 });
  const data = new Uint8Array(randomBytes(16 * KiB));
  writeChain(drv, 64, [data.subarray(0, 4096), data.subarray(4096, 12 * KiB), data.subarray(12 * KiB)]);
  const sectors = [0, 8, 100, 2040];
  for (const sector of sectors) readChain(drv, sector, [2048, 2048]);
  dev.processQueue(0);
  // Handed to the kernel, not done on the device thread: nothing is used yet, all 5 are in flight.
  assert.equal(drv.drainUsed().length, 0, 'no request completes inside processQueue');
  assert.equal(dev.requestsInFlight, 5);

  const used = completions(drv, loop, 5);
  assert.equal(used.length, 5, 'every request completes');
  assert.equal(dev.requestsInFlight, 0);
  for (const u of used) assert.equal(statusOf(drv, u), VIRTIO_BLK_S_OK);
  const reads = used.filter((u) => u.len > 1).sort((a, b) => a.buffers[1]!.addr - b.buffers[1]!.addr);
  assert.equal(reads.length, 4);
  for (const u of reads) assert.equal(u.len, 4096 + 1, 'used length = data read + status byte');
  // Match each read to its sector by contents (completions come in any order).
  const got = new Set(reads.map((u) => Buffer.from(dataOf(drv, u)).toString('hex')));
  for (const sector of sectors) assert.ok(got.has(Buffer.from(pattern(sector * 512, 4096)).toString('hex')), `sector ${sector} read`);
  bytesEq(readFile(fd, 64 * 512, data.length), Buffer.from(data), 'the write reached the file');
  assert.equal(dev.metrics['read_count'], 4);
  assert.equal(dev.metrics['write_count'], 1);
  assert.equal(dev.metrics['read_bytes'], 4 * 4096);
  assert.equal(dev.metrics['write_bytes'], 16 * KiB);
  assert.ok(irq.count >= 1, 'the driver was interrupted');
});

test('Async engine: a 512 KiB request of 128 segments and others in flight together; a FLUSH is an fsync on the ring', () => {
  const size = 8 * MiB;
  const mem = mmapMemory(12 * MiB);
  const { drv, dev, loop } = setup({ ioEngine: 'Async', size, mem, queueSize: 256, dataBase: 1 * MiB, dataSize: 10 * MiB });
  // 130 + 3 × 34 + 2 descriptors: what fits the 256-entry ring without indirect tables.
  const extents = [{ sector: 0, segs: 128 }, { sector: 1024, segs: 32 }, { sector: 4096, segs: 32 }, { sector: 8000, segs: 32 }];
  for (const e of extents) readChain(drv, e.sector, Array.from({ length: e.segs }, () => 4096));
  drv.addChain([{ data: hdr(VIRTIO_BLK_T_FLUSH) }, { data: filled(1, 0xee), write: true }]);
  dev.processQueue(0);
  const used = completions(drv, loop, extents.length + 1);
  assert.equal(used.length, extents.length + 1);
  for (const u of used) assert.equal(statusOf(drv, u), VIRTIO_BLK_S_OK);
  for (const u of used.filter((x) => x.len > 1)) {
    const e = extents.find((x) => x.segs * 4096 + 1 === u.len && Buffer.from(drv.read(u.buffers[1]!.addr, 16)).equals(Buffer.from(pattern(x.sector * 512, 16))));
    assert.ok(e, 'the data is one of the requested extents');
    bytesEq(dataOf(drv, u), Buffer.from(pattern(e.sector * 512, e.segs * 4096)), `extent at sector ${e.sector}`);
  }
  assert.equal(dev.metrics['flush_count'], 1);
});

test('Async engine: errors still complete the request (IOERR): out of range at once, short read from the kernel', () => {
  const { drv, dev, fd, loop } = setup({ ioEngine: 'Async', size: 4096 });
  readChain(drv, 8, [512]); // beyond the 8-sector capacity: refused before any I/O
  dev.processQueue(0);
  assert.equal(statusOf(drv, usedOne(drv)), VIRTIO_BLK_S_IOERR);
  dev.updateDisk(fd, 8192); // the file has 8 sectors, the device now claims 16
  readChain(drv, 6, [2048]);
  dev.processQueue(0);
  const [u] = completions(drv, loop, 1);
  assert.ok(u);
  assert.equal(statusOf(drv, u), VIRTIO_BLK_S_IOERR);
  assert.equal(u.len, 1024 + 1, 'used length counts the 1024 bytes the kernel read');
  bytesEq(dataOf(drv, u).subarray(0, 1024), Buffer.from(pattern(6 * 512, 1024)));
  assert.equal(dev.metrics['invalid_reqs_count'], 1);
});

test('Async engine: a reset waits for the requests in flight and nothing is returned to the driver afterwards', () => {
  const { drv, dev, loop } = setup({ ioEngine: 'Async', queueSize: 64 });
  for (let i = 0; i < 16; i++) readChain(drv, i * 8, [4096]);
  dev.processQueue(0);
  dev.reset();
  assert.equal(dev.requestsInFlight, 0);
  loop.runOnce(50);
  assert.equal(drv.drainUsed().length, 0, 'no used entries after the reset');
});

test('Async engine: needs an event loop and host-mapped guest memory', () => {
  const { fd } = diskFile(4096);
  const dev = new BlockBackend({ fd, sizeBytes: 4096, readOnly: false, cacheType: 'Unsafe', driveId: 'a', ioEngine: 'Async' });
  const drv = new VirtioDriver(sharedMem, { size: 16, eventIdx: true });
  assert.throws(() => dev.activate({ mem: sharedMem, queues: [drv.createQueue()], ackedFeatures: dev.availFeatures, interrupt: () => {} }), /needs an event loop/);
  const heap = createTestMemory([{ guestAddr: 0, size: 1 * MiB }]);
  const hdrv = new VirtioDriver(heap, { size: 16, eventIdx: true });
  const loop = new EventManager();
  loops.push(loop);
  assert.throws(() => dev.activate({ mem: heap, queues: [hdrv.createQueue()], ackedFeatures: dev.availFeatures, interrupt: () => {}, events: loop }), /host-mapped/);
  assert.throws(() => new BlockBackend({ fd, sizeBytes: 4096, readOnly: false, cacheType: 'Unsafe', driveId: 'a', ioEngine: 'Turbo' as 'Async' }), /unknown io engine/);
});
