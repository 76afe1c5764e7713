/**
 * The io_uring binding (src/sys/io_uring.ts) against the real kernel: real
 * files in a temporary directory, and iovecs and data buffers in an
 * anonymous host mapping (as guest RAM would be). Without io_uring (kernel
 * without it, kernel.io_uring_disabled, a seccomp filter) the suite FAILS,
 * saying so: it does not skip.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  CQE_OFF_FLAGS, CQE_OFF_RES, CQE_OFF_USER_DATA, IORING_FSYNC_DATASYNC, IO_URING_PARAMS_OFF_CQ_OFF, IO_URING_PARAMS_OFF_SQ_OFF,
  IOSQE_ASYNC, SIZEOF_IO_CQRING_OFFSETS, SIZEOF_IO_SQRING_OFFSETS, SIZEOF_IO_URING_CQE, SIZEOF_IO_URING_PARAMS,
  SIZEOF_IO_URING_SQE, SQE_OFF_ADDR, SQE_OFF_LEN, SQE_OFF_OFF, SQE_OFF_RW_FLAGS, SQE_OFF_USER_DATA,
} from '../../src/generated/io_uring.js';
import { EBADF, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, SIZEOF_IOVEC } from '../../src/generated/libc.js';
import { IoUring } from '../../src/sys/io_uring.js';
import * as libc from '../../src/sys/libc.js';
import { EventManager, drainEventFd, newEventFd } from '../../src/vmm/event_manager.js';

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const KiB = 1024;
const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-uring-'));

/** Native memory: iovec arrays in [0, DATA), data buffers in [DATA, MEM). */
const MEM = 1024 * KiB;
const DATA = 64 * KiB;
const memAddr = libc.mmap(MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
const mem = new Uint8Array(libc.view(memAddr, MEM));
const memDv = new DataView(mem.buffer);
const base = Number(memAddr);

const rings: IoUring[] = [];
const fds: number[] = [];
after(() => {
  for (const r of rings) r.close();
  for (const fd of fds) fs.closeSync(fd);
  libc.munmap(memAddr, MEM);
  fs.rmSync(tmpDir, { recursive: true, force: true });
});

/** A ring, or a failure that says io_uring is unavailable here (never a skip). */
function newRing(entries: number): IoUring {
  let ring: IoUring;
  try {
    ring = IoUring.create(entries);
  } catch (e) {
    if (e instanceof libc.SysError) {
      throw new Error(`io_uring is unavailable on this machine and these tests need it: ${e.message}`, { cause: e });
    }
    throw e;
  }
  rings.push(ring);
  return ring;
}

/** Writes iovec `i` of the array at mem[iovOff] to cover mem[dataOff, dataOff + len); returns the array's native address. */
function setIov(iovOff: number, i: number, dataOff: number, len: number): number {
  const o = iovOff + i * SIZEOF_IOVEC;
  memDv.setBigUint64(o, BigInt(base + dataOff), true);
  memDv.setBigUint64(o + 8, BigInt(len), true);
  return base + iovOff;
}

/**
 * A copy of mem[off, off + len). Assertions must never hold views of the
 * mapping: node:test formats a failure's actual/expected after the after()
 * hook, which has unmapped it by then (a SIGSEGV instead of a diff).
 */
function copy(off: number, len: number): Buffer {
  return Buffer.from(mem.subarray(off, off + len));
}

/** A file in the temp dir with `contents`, opened read-write (closed in after()). */
function tempFile(name: string, contents: Uint8Array = new Uint8Array(0)): { file: string; fd: number } {
  const file = path.join(tmpDir, name);
  fs.writeFileSync(file, contents);
  const fd = fs.openSync(file, 'r+');
  fds.push(fd);
  return { file, fd };
}

/** All completions, waiting for `n` of them first. */
function waitAll(ring: IoUring, n: number): Array<{ userData: number; res: number }> {
  ring.wait(n);
  const out: Array<{ userData: number; res: number }> = [];
  ring.reap((userData, res) => out.push({ userData, res }));
  return out;
}

// ---------------------------------------------------------------------------
// ABI constants
// ---------------------------------------------------------------------------

test('struct layouts: params 120 bytes (sq_off @40, cq_off @80), SQE 64, CQE 16', () => {
  assert.equal(SIZEOF_IO_URING_PARAMS, 120);
  assert.equal(IO_URING_PARAMS_OFF_SQ_OFF, 40);
  assert.equal(IO_URING_PARAMS_OFF_CQ_OFF, IO_URING_PARAMS_OFF_SQ_OFF + SIZEOF_IO_SQRING_OFFSETS);
  assert.equal(IO_URING_PARAMS_OFF_CQ_OFF + SIZEOF_IO_CQRING_OFFSETS, SIZEOF_IO_URING_PARAMS);
  assert.equal(SIZEOF_IO_URING_SQE, 64);
  assert.deepEqual([SQE_OFF_OFF, SQE_OFF_ADDR, SQE_OFF_LEN, SQE_OFF_RW_FLAGS, SQE_OFF_USER_DATA], [8, 16, 24, 28, 32]);
  assert.equal(SIZEOF_IO_URING_CQE, 16);
  assert.deepEqual([CQE_OFF_USER_DATA, CQE_OFF_RES, CQE_OFF_FLAGS], [0, 8, 12]);
});

// ---------------------------------------------------------------------------
// The ring
// ---------------------------------------------------------------------------

test('create: the kernel rounds the SQ up to a power of two and makes the CQ twice as big', () => {
  const ring = newRing(3);
  assert.equal(ring.sqEntries, 4);
  assert.equal(ring.cqEntries, 8);
  assert.equal(newRing(1).sqEntries, 1);
  assert.throws(() => IoUring.create(0), RangeError);
  assert.throws(() => IoUring.create(32769), RangeError);
  assert.throws(() => IoUring.create(1.5), RangeError);
});

test('NOP round trip: user_data comes back intact, above 2^32 too', () => {
  const ring = newRing(8);
  const values = [0, 1, 0xffffffff, 2 ** 32, 2 ** 32 + 5, 0x1234_5678_9abc, Number.MAX_SAFE_INTEGER];
  for (const v of values) assert.equal(ring.prepNop(v), true);
  assert.equal(ring.submit(), values.length);
  const got = waitAll(ring, values.length);
  assert.deepEqual(got, values.map((userData) => ({ userData, res: 0 })));
  assert.equal(ring.reap(() => assert.fail('nothing left')), 0);
  assert.equal(ring.submit(), 0, 'nothing queued: no SQE handed over');
});

test('user_data must be a non-negative safe integer', () => {
  const ring = newRing(2);
  for (const bad of [-1, 1.5, 2 ** 53, Number.NaN, Infinity]) {
    assert.throws(() => ring.prepNop(bad), RangeError, String(bad));
  }
  assert.equal(ring.submit(), 0, 'a rejected prep queues nothing');
});

test('readv: known file contents into two iovecs, at a file offset', () => {
  const contents = randomBytes(16 * KiB);
  const { fd } = tempFile('readv.bin', contents);
  const ring = newRing(4);
  mem.fill(0xee, DATA, DATA + 16 * KiB);
  setIov(0, 0, DATA, 100);
  const iov = setIov(0, 1, DATA + 4 * KiB, 3000);
  assert.equal(ring.prepReadv(fd, iov, 2, 1000, 77), true);
  assert.equal(ring.submit(), 1);
  assert.deepEqual(waitAll(ring, 1), [{ userData: 77, res: 3100 }]);
  assert.deepEqual(copy(DATA, 100), contents.subarray(1000, 1100));
  assert.deepEqual(copy(DATA + 4 * KiB, 3000), contents.subarray(1100, 4100));
  assert.equal(mem[DATA + 100], 0xee, 'nothing beyond the first iovec');
  assert.equal(mem[DATA + 4 * KiB + 3000], 0xee, 'nothing beyond the second iovec');

  // A read past the end is short; at the end, 0.
  setIov(0, 0, DATA, 8 * KiB);
  assert.equal(ring.prepReadv(fd, base, 1, 12 * KiB, 78), true);
  assert.equal(ring.prepReadv(fd, base, 1, 16 * KiB, 79, IOSQE_ASYNC), true);
  ring.submit();
  assert.deepEqual(waitAll(ring, 2).sort((a, b) => a.userData - b.userData), [{ userData: 78, res: 4 * KiB }, { userData: 79, res: 0 }]);
});

test('writev: two iovecs at a file offset, read back with fs; fsync and fdatasync', () => {
  const { file, fd } = tempFile('writev.bin');
  const a = randomBytes(1500);
  const b = randomBytes(2 * KiB);
  mem.set(a, DATA);
  mem.set(b, DATA + 8 * KiB);
  setIov(0, 0, DATA, a.length);
  const iov = setIov(0, 1, DATA + 8 * KiB, b.length);
  const ring = newRing(4);
  assert.equal(ring.prepWritev(fd, iov, 2, 512, 2 ** 40), true);
  assert.equal(ring.submit(), 1);
  assert.deepEqual(waitAll(ring, 1), [{ userData: 2 ** 40, res: a.length + b.length }]);
  const back = fs.readFileSync(file);
  assert.equal(back.length, 512 + a.length + b.length);
  assert.deepEqual(back.subarray(0, 512), Buffer.alloc(512));
  assert.deepEqual(back.subarray(512, 512 + a.length), a);
  assert.deepEqual(back.subarray(512 + a.length), b);

  assert.equal(ring.prepFsync(fd, 1), true);
  assert.equal(ring.prepFsync(fd, 2, IOSQE_ASYNC, IORING_FSYNC_DATASYNC), true);
  assert.equal(ring.submit(), 2);
  assert.deepEqual(waitAll(ring, 2).sort((x, y) => x.userData - y.userData), [{ userData: 1, res: 0 }, { userData: 2, res: 0 }]);
});

test('many requests in flight at once: each completes once, in whatever order', () => {
  const CHUNK = 4 * KiB;
  const WRITES = 32;
  const READS = 16;
  const NOPS = 8;
  const src = randomBytes(READS * CHUNK);
  const { fd: rfd } = tempFile('many-src.bin', src);
  const { file: wfile, fd: wfd } = tempFile('many-dst.bin');
  const ring = newRing(64);
  const expected = new Map<number, number>(); // user_data -> res
  const UD = 10 ** 12; // user_data above 2^32 throughout
  const patterns: Uint8Array[] = [];
  for (let i = 0; i < WRITES; i++) {
    const p = randomBytes(CHUNK);
    patterns.push(p);
    mem.set(p, DATA + i * CHUNK);
    // Written in reverse file order, from one iovec each.
    const iov = setIov(i * SIZEOF_IOVEC, 0, DATA + i * CHUNK, CHUNK);
    assert.equal(ring.prepWritev(wfd, iov, 1, (WRITES - 1 - i) * CHUNK, UD + i, IOSQE_ASYNC), true);
    expected.set(UD + i, CHUNK);
  }
  const readData = DATA + WRITES * CHUNK;
  for (let i = 0; i < READS; i++) {
    const iovOff = (WRITES + i) * SIZEOF_IOVEC;
    const iov = setIov(iovOff, 0, readData + i * CHUNK, CHUNK);
    assert.equal(ring.prepReadv(rfd, iov, 1, i * CHUNK, UD + 100 + i, i % 2 === 0 ? IOSQE_ASYNC : 0), true);
    expected.set(UD + 100 + i, CHUNK);
  }
  for (let i = 0; i < NOPS; i++) {
    assert.equal(ring.prepNop(UD + 200 + i), true);
    expected.set(UD + 200 + i, 0);
  }
  const total = WRITES + READS + NOPS;
  assert.equal(ring.submit(), total, 'one io_uring_enter takes them all');

  const seen = new Map<number, number>();
  while (seen.size < total) {
    ring.wait(1);
    ring.reap((ud, res) => {
      assert.equal(seen.has(ud), false, `user_data ${ud} completed twice`);
      seen.set(ud, res);
    });
  }
  assert.deepEqual(new Map([...seen].sort((x, y) => x[0] - y[0])), new Map([...expected].sort((x, y) => x[0] - y[0])));

  const written = fs.readFileSync(wfile);
  assert.equal(written.length, WRITES * CHUNK);
  for (let i = 0; i < WRITES; i++) {
    const at = (WRITES - 1 - i) * CHUNK;
    assert.ok(written.subarray(at, at + CHUNK).equals(patterns[i]!), `write ${i}`);
  }
  assert.ok(copy(readData, READS * CHUNK).equals(src), 'reads');
});

test('a full SQ refuses another SQE until submit hands the queued ones over', () => {
  const ring = newRing(4);
  for (let i = 0; i < 4; i++) assert.equal(ring.prepNop(i), true);
  assert.equal(ring.prepNop(4), false, 'SQ full');
  assert.equal(ring.prepReadv(0, base, 1, 0, 4), false);
  assert.equal(ring.prepWritev(0, base, 1, 0, 4), false);
  assert.equal(ring.prepFsync(0, 4), false);
  assert.equal(ring.submit(), 4);
  // The kernel consumed the SQEs: room again, completions not reaped yet.
  for (let i = 4; i < 8; i++) assert.equal(ring.prepNop(i), true);
  assert.equal(ring.prepNop(8), false);
  assert.equal(ring.submit(), 4);
  assert.deepEqual(waitAll(ring, 8).map((c) => c.userData), [0, 1, 2, 3, 4, 5, 6, 7]);
});

test('more completions than the CQ holds are parked by the kernel, and reap takes them all, in order', () => {
  const ring = newRing(1); // 1 SQE, 2 CQEs
  assert.equal(ring.cqEntries, 2);
  for (let i = 0; i < 5; i++) {
    assert.equal(ring.prepNop(2 ** 33 + i), true);
    assert.equal(ring.submit(), 1);
  }
  const got: number[] = [];
  assert.equal(ring.reap((ud) => got.push(ud - 2 ** 33)), 5);
  assert.deepEqual(got, [0, 1, 2, 3, 4]);
  assert.equal(ring.reap(() => assert.fail('nothing left')), 0);
});

test('wait: returns at once when enough completions are there; refuses more than the CQ holds', () => {
  const ring = newRing(2);
  ring.wait(0);
  ring.prepNop(1);
  ring.prepNop(2);
  ring.submit();
  ring.wait(2);
  ring.wait(1); // already there: no blocking
  assert.throws(() => ring.wait(ring.cqEntries + 1), RangeError);
  assert.throws(() => ring.wait(-1), RangeError);
  assert.equal(ring.reap(() => {}), 2);
});

test('reap: the callback may reap and submit again (each CQE is consumed before its callback)', () => {
  const ring = newRing(4);
  for (let i = 0; i < 3; i++) ring.prepNop(i);
  ring.submit();
  ring.wait(3);
  const order: number[] = [];
  const outer = ring.reap((ud) => {
    order.push(ud);
    if (ud === 0) {
      ring.reap((inner) => order.push(100 + inner)); // takes 1 and 2
      ring.prepNop(9);
      ring.submit(); // a NOP completes inline: the outer loop sees it too
    }
  });
  assert.deepEqual(order, [0, 101, 102, 9]);
  assert.equal(outer, 2);
});

test('a registered eventfd becomes readable once a completion is posted', () => {
  const ring = newRing(4);
  const efd = newEventFd();
  const em = new EventManager();
  try {
    ring.registerEventFd(efd);
    assert.equal(drainEventFd(efd), false, 'not signalled before any completion');
    const { fd } = tempFile('efd.bin', randomBytes(8 * KiB));
    let signalled = 0;
    em.add(efd, () => {
      signalled++;
      drainEventFd(efd);
    });

    // Inline completion (a NOP), then one from an io-wq worker (IOSQE_ASYNC).
    ring.prepNop(1);
    ring.submit();
    assert.equal(em.runOnce(5000), 1, 'eventfd readable after the NOP');
    assert.deepEqual(waitAll(ring, 1), [{ userData: 1, res: 0 }]);
    assert.equal(em.runOnce(0), 0, 'drained');

    const iov = setIov(0, 0, DATA, 8 * KiB);
    ring.prepReadv(fd, iov, 1, 0, 2, IOSQE_ASYNC);
    ring.submit();
    assert.equal(em.runOnce(5000), 1, 'eventfd readable after the async readv');
    assert.deepEqual(waitAll(ring, 1), [{ userData: 2, res: 8 * KiB }]);
    assert.equal(signalled, 2);
  } finally {
    em.close();
    libc.close(efd);
  }
});

test('a bad fd completes with res -EBADF (the submit still takes the SQE)', () => {
  const ring = newRing(8);
  const closed = fs.openSync(path.join(tmpDir, 'gone'), 'w');
  fs.closeSync(closed);
  const iov = setIov(0, 0, DATA, 512);
  assert.equal(ring.prepReadv(-1, iov, 1, 0, 1), true);
  assert.equal(ring.prepWritev(closed, iov, 1, 0, 2), true);
  assert.equal(ring.prepFsync(1_000_000, 3, IOSQE_ASYNC), true);
  assert.equal(ring.prepReadv(closed, iov, 1, 0, 4, IOSQE_ASYNC), true);
  assert.equal(ring.submit(), 4);
  const got = waitAll(ring, 4).sort((a, b) => a.userData - b.userData);
  assert.deepEqual(got, [1, 2, 3, 4].map((userData) => ({ userData, res: -EBADF })));
});

test('close() twice is harmless; the ring is unusable afterwards', () => {
  const ring = IoUring.create(2);
  ring.prepNop(1);
  ring.submit();
  ring.wait(1);
  ring.close();
  ring.close();
  assert.throws(() => ring.prepNop(2), /after close/);
  assert.throws(() => ring.submit(), /after close/);
  assert.throws(() => ring.wait(0), /after close/);
  assert.throws(() => ring.reap(() => {}), /after close/);
  assert.throws(() => ring.registerEventFd(0), /after close/);
});
