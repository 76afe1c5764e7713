/**
 * A minimal io_uring binding (no liburing, no C): io_uring_setup /
 * io_uring_enter / io_uring_register through glibc's syscall(), the SQ ring,
 * CQ ring and SQE array mapped from the ring fd and accessed through typed
 * arrays over the mappings. Enough for Firecracker's Async block engine:
 * readv, writev, fsync (and nop), a completion eventfd, submit, wait, reap.
 *
 * No SQPOLL: the kernel consumes SQEs only inside io_uring_enter, on the
 * calling thread; completions are posted by the kernel at any time (io-wq
 * workers on other CPUs), so the CQ ring is read concurrently with the kernel.
 *
 * Memory ordering. The rings are shared with the kernel. x86-64 does not
 * reorder stores with other stores nor loads with other loads (nor a load
 * with a later store), and io_uring_enter is a syscall (a full barrier for
 * what precedes it), so plain typed-array accesses in program order suffice:
 * fill the SQE, then its SQ array slot, then store the SQ tail (read by the
 * kernel during io_uring_enter); load the CQ tail before the CQEs it covers,
 * and store the CQ head only after those CQEs were read. V8 keeps typed-array
 * accesses in program order and re-reads memory after any call (the native
 * syscall, the reap callback), so no load of a kernel-written index is cached.
 * This file is x86-64 only, like the rest of the project.
 */
import fs from 'node:fs';

import {
  CQE_OFF_RES, CQE_OFF_USER_DATA, IORING_ENTER_GETEVENTS, IORING_FEAT_SINGLE_MMAP, IORING_MAX_ENTRIES,
  IORING_OFF_CQ_RING, IORING_OFF_SQ_RING, IORING_OFF_SQES, IORING_OP_FSYNC, IORING_OP_NOP, IORING_OP_READV, IORING_OP_WRITEV,
  IORING_REGISTER_EVENTFD, IORING_SQ_CQ_OVERFLOW, IO_CQRING_OFF_CQES, IO_CQRING_OFF_HEAD, IO_CQRING_OFF_RING_ENTRIES,
  IO_CQRING_OFF_RING_MASK, IO_CQRING_OFF_TAIL, IO_SQRING_OFF_ARRAY, IO_SQRING_OFF_FLAGS, IO_SQRING_OFF_HEAD,
  IO_SQRING_OFF_RING_ENTRIES, IO_SQRING_OFF_RING_MASK, IO_SQRING_OFF_TAIL, IO_URING_PARAMS_OFF_CQ_ENTRIES,
  IO_URING_PARAMS_OFF_CQ_OFF, IO_URING_PARAMS_OFF_FEATURES, IO_URING_PARAMS_OFF_SQ_ENTRIES, IO_URING_PARAMS_OFF_SQ_OFF,
  SIZEOF_IO_URING_CQE, SIZEOF_IO_URING_PARAMS, SIZEOF_IO_URING_SQE, SQE_OFF_ADDR, SQE_OFF_FD, SQE_OFF_FLAGS, SQE_OFF_LEN,
  SQE_OFF_OFF, SQE_OFF_OPCODE, SQE_OFF_RW_FLAGS, SQE_OFF_USER_DATA, SYS_io_uring_enter, SYS_io_uring_register,
  SYS_io_uring_setup,
} from '../generated/io_uring.js';
import { EINTR, ENOSYS, EPERM, MAP_POPULATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../generated/libc.js';
import * as libc from './libc.js';
import { lib, SysError } from './libc.js';

// syscall(2) is variadic in C; koffi needs one concrete prototype per
// argument list. On x86-64 integer and pointer arguments of a variadic call
// go in the same registers (past the sixth, the same stack slots) as in a
// fixed-argument call, and glibc's syscall() (assembly) only shuffles them
// into the kernel's registers, so these fixed prototypes are equivalent and
// avoid koffi's slower variadic call path. Every integer is a full 64-bit
// `long`, as the variadic call would pass it, so no register half is left
// undefined.
const setupFn = lib.func('long syscall(long no, long entries, void *params)') as
  (no: number, entries: number, params: Uint8Array) => number;
const enterFn = lib.func('long syscall(long no, long fd, long toSubmit, long minComplete, long flags, long sig, long sigsz)') as
  (no: number, fd: number, toSubmit: number, minComplete: number, flags: number, sig: number, sigsz: number) => number;
const registerFn = lib.func('long syscall(long no, long fd, long opcode, void *arg, long nrArgs)') as
  (no: number, fd: number, opcode: number, arg: Uint8Array, nrArgs: number) => number;

const TWO_32 = 2 ** 32;

// SQE and CQE fields as indexes into u32 views (all the fields written or
// read as words are 4-aligned; 64-bit fields are two little-endian words).
const SQE_WORDS = SIZEOF_IO_URING_SQE >> 2;
const W_SQE_FD = SQE_OFF_FD >> 2;
const W_SQE_OFF = SQE_OFF_OFF >> 2;
const W_SQE_ADDR = SQE_OFF_ADDR >> 2;
const W_SQE_LEN = SQE_OFF_LEN >> 2;
const W_SQE_RW_FLAGS = SQE_OFF_RW_FLAGS >> 2;
const W_SQE_USER_DATA = SQE_OFF_USER_DATA >> 2;
const CQE_WORDS = SIZEOF_IO_URING_CQE >> 2;
const W_CQE_USER_DATA = CQE_OFF_USER_DATA >> 2;
const W_CQE_RES = CQE_OFF_RES >> 2;

const EMPTY_U32 = new Uint32Array(0);
const EMPTY_U8 = new Uint8Array(0);

interface Mapping {
  addr: bigint;
  len: number;
}

/** The SysError for a failed io_uring_setup, saying why io_uring may be unavailable. */
function setupError(errno: number): SysError {
  if (errno === ENOSYS) {
    return new SysError('io_uring_setup (io_uring unavailable: kernel built without CONFIG_IO_URING, or the syscall is filtered)', errno);
  }
  if (errno === EPERM) {
    let sysctl = 'unreadable';
    try {
      sysctl = fs.readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim();
    } catch {
      // kernels before 6.6 have no such sysctl
    }
    return new SysError(
      `io_uring_setup (io_uring unavailable: kernel.io_uring_disabled = ${sysctl} (1: only kernel.io_uring_group or CAP_SYS_ADMIN, ` +
      `2: nobody), or a seccomp policy such as a container runtime's default refuses it)`,
      errno,
    );
  }
  return new SysError('io_uring_setup', errno);
}

function u32(dv: DataView, off: number): number {
  return dv.getUint32(off, true);
}

/** A u32 view of `len` bytes of native memory at `addr`. */
function words(addr: bigint, len: number): Uint32Array {
  return new Uint32Array(libc.view(addr, len), 0, len >>> 2);
}

export class IoUring {
  /** SQ size (entries rounded up to a power of two by the kernel). */
  readonly sqEntries: number;
  /** CQ size (twice sqEntries by default). */
  readonly cqEntries: number;

  private fd: number;
  private readonly maps: Mapping[];
  /** The SQ ring mapping, as u32 words. */
  private sq: Uint32Array;
  /** The SQE array mapping, as bytes and as u32 words. */
  private sqeBytes: Uint8Array;
  private sqes: Uint32Array;
  /** The CQ ring mapping (the SQ ring's with IORING_FEAT_SINGLE_MMAP), as u32 words. */
  private cq: Uint32Array;

  // Word indexes into sq / cq of the ring fields the kernel told us about.
  private readonly sqHeadW: number;
  private readonly sqTailW: number;
  private readonly sqFlagsW: number;
  private readonly sqArrayW: number;
  private readonly sqMask: number;
  private readonly cqHeadW: number;
  private readonly cqTailW: number;
  private readonly cqesW: number;
  private readonly cqMask: number;

  /** Our SQ tail: SQEs up to here are filled; the ring's tail is published by submit(). */
  private sqTail: number;

  private constructor(fd: number, params: Uint8Array, sqMap: Mapping, cqMap: Mapping, sqeMap: Mapping, maps: Mapping[]) {
    const dv = new DataView(params.buffer, params.byteOffset, params.byteLength);
    const sqOff = IO_URING_PARAMS_OFF_SQ_OFF;
    const cqOff = IO_URING_PARAMS_OFF_CQ_OFF;
    this.fd = fd;
    this.maps = maps;
    this.sqEntries = u32(dv, IO_URING_PARAMS_OFF_SQ_ENTRIES);
    this.cqEntries = u32(dv, IO_URING_PARAMS_OFF_CQ_ENTRIES);
    this.sq = words(sqMap.addr, sqMap.len);
    this.cq = cqMap === sqMap ? this.sq : words(cqMap.addr, cqMap.len);
    this.sqeBytes = new Uint8Array(libc.view(sqeMap.addr, sqeMap.len));
    this.sqes = new Uint32Array(this.sqeBytes.buffer, 0, sqeMap.len >>> 2);
    this.sqHeadW = u32(dv, sqOff + IO_SQRING_OFF_HEAD) >>> 2;
    this.sqTailW = u32(dv, sqOff + IO_SQRING_OFF_TAIL) >>> 2;
    this.sqFlagsW = u32(dv, sqOff + IO_SQRING_OFF_FLAGS) >>> 2;
    this.sqArrayW = u32(dv, sqOff + IO_SQRING_OFF_ARRAY) >>> 2;
    this.sqMask = this.sq[u32(dv, sqOff + IO_SQRING_OFF_RING_MASK) >>> 2]!;
    this.cqHeadW = u32(dv, cqOff + IO_CQRING_OFF_HEAD) >>> 2;
    this.cqTailW = u32(dv, cqOff + IO_CQRING_OFF_TAIL) >>> 2;
    this.cqesW = u32(dv, cqOff + IO_CQRING_OFF_CQES) >>> 2;
    this.cqMask = this.cq[u32(dv, cqOff + IO_CQRING_OFF_RING_MASK) >>> 2]!;
    const sqRingEntries = this.sq[u32(dv, sqOff + IO_SQRING_OFF_RING_ENTRIES) >>> 2];
    const cqRingEntries = this.cq[u32(dv, cqOff + IO_CQRING_OFF_RING_ENTRIES) >>> 2];
    if (sqRingEntries !== this.sqEntries || cqRingEntries !== this.cqEntries) {
      throw new Error(`io_uring: ring sizes ${sqRingEntries}/${cqRingEntries} differ from io_uring_params ${this.sqEntries}/${this.cqEntries}`);
    }
    this.sqTail = this.sq[this.sqTailW]!;
  }

  /**
   * A ring of at least `entries` SQEs (1..32768; the kernel rounds up to a
   * power of two). Throws SysError when io_uring is unavailable (ENOSYS:
   * not built in or filtered; EPERM: kernel.io_uring_disabled or seccomp).
   */
  static create(entries: number): IoUring {
    if (!Number.isInteger(entries) || entries < 1 || entries > IORING_MAX_ENTRIES) {
      throw new RangeError(`io_uring: ${entries} entries (must be 1..${IORING_MAX_ENTRIES})`);
    }
    const params = new Uint8Array(SIZEOF_IO_URING_PARAMS);
    const fd = setupFn(SYS_io_uring_setup, entries, params); // a close-on-exec fd
    if (fd < 0) throw setupError(libc.lastErrno());
    const maps: Mapping[] = [];
    try {
      const dv = new DataView(params.buffer);
      const sqEntries = u32(dv, IO_URING_PARAMS_OFF_SQ_ENTRIES);
      const cqEntries = u32(dv, IO_URING_PARAMS_OFF_CQ_ENTRIES);
      const features = u32(dv, IO_URING_PARAMS_OFF_FEATURES);
      const sqRingLen = u32(dv, IO_URING_PARAMS_OFF_SQ_OFF + IO_SQRING_OFF_ARRAY) + sqEntries * 4;
      const cqRingLen = u32(dv, IO_URING_PARAMS_OFF_CQ_OFF + IO_CQRING_OFF_CQES) + cqEntries * SIZEOF_IO_URING_CQE;
      const map = (len: number, offset: number): Mapping => {
        const m = { addr: libc.mmap(len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset), len };
        maps.push(m);
        return m;
      };
      let sqMap: Mapping;
      let cqMap: Mapping;
      if ((features & IORING_FEAT_SINGLE_MMAP) !== 0) {
        sqMap = cqMap = map(Math.max(sqRingLen, cqRingLen), IORING_OFF_SQ_RING);
      } else {
        sqMap = map(sqRingLen, IORING_OFF_SQ_RING);
        cqMap = map(cqRingLen, IORING_OFF_CQ_RING);
      }
      const sqeMap = map(sqEntries * SIZEOF_IO_URING_SQE, IORING_OFF_SQES);
      return new IoUring(fd, params, sqMap, cqMap, sqeMap, maps);
    } catch (e) {
      for (const m of maps) libc.munmap(m.addr, m.len);
      libc.close(fd);
      throw e;
    }
  }

  /**
   * Queues a readv(2) at file offset `offset` (-1: the file position) into
   * `iovCount` struct iovec at native address `iovAddr`, which (and the
   * buffers) must stay valid until the completion. `flags`: IOSQE_*.
   * False when the SQ is full (submit, then retry).
   */
  prepReadv(fd: number, iovAddr: number, iovCount: number, offset: number, userData: number, flags = 0): boolean {
    return this.prep(IORING_OP_READV, flags, fd, offset, iovAddr, iovCount, 0, userData);
  }

  /** Queues a writev(2), as prepReadv. */
  prepWritev(fd: number, iovAddr: number, iovCount: number, offset: number, userData: number, flags = 0): boolean {
    return this.prep(IORING_OP_WRITEV, flags, fd, offset, iovAddr, iovCount, 0, userData);
  }

  /** Queues an fsync(2) (an fdatasync(2) with fsyncFlags IORING_FSYNC_DATASYNC). `flags`: IOSQE_*. */
  prepFsync(fd: number, userData: number, flags = 0, fsyncFlags = 0): boolean {
    return this.prep(IORING_OP_FSYNC, flags, fd, 0, 0, 0, fsyncFlags, userData);
  }

  /** Queues a no-op (completes with res 0). */
  prepNop(userData: number, flags = 0): boolean {
    return this.prep(IORING_OP_NOP, flags, -1, 0, 0, 0, 0, userData);
  }

  private prep(op: number, flags: number, fd: number, off: number, addr: number, len: number, rwFlags: number, userData: number): boolean {
    this.ensureOpen('prep');
    if (!Number.isSafeInteger(userData) || userData < 0) {
      throw new RangeError(`io_uring: user_data ${userData} is not a non-negative safe integer`);
    }
    const tail = this.sqTail;
    // SQEs we filled that the kernel has not consumed yet (published or not).
    if (((tail - this.sq[this.sqHeadW]!) >>> 0) >= this.sqEntries) return false;
    const slot = tail & this.sqMask;
    const w = slot * SQE_WORDS;
    const sqes = this.sqes;
    sqes.fill(0, w, w + SQE_WORDS);
    const b = w << 2;
    this.sqeBytes[b + SQE_OFF_OPCODE] = op;
    this.sqeBytes[b + SQE_OFF_FLAGS] = flags;
    sqes[w + W_SQE_FD] = fd; // stored as its u32 bit pattern (-1 -> 0xffffffff)
    // u64 fields as (low, high) words; a negative value wraps to its two's complement.
    const offLo = off >>> 0;
    sqes[w + W_SQE_OFF] = offLo;
    sqes[w + W_SQE_OFF + 1] = (off - offLo) / TWO_32;
    const addrLo = addr >>> 0;
    sqes[w + W_SQE_ADDR] = addrLo;
    sqes[w + W_SQE_ADDR + 1] = (addr - addrLo) / TWO_32;
    sqes[w + W_SQE_LEN] = len;
    sqes[w + W_SQE_RW_FLAGS] = rwFlags;
    const udLo = userData >>> 0;
    sqes[w + W_SQE_USER_DATA] = udLo;
    sqes[w + W_SQE_USER_DATA + 1] = (userData - udLo) / TWO_32;
    this.sq[this.sqArrayW + slot] = slot;
    this.sqTail = (tail + 1) >>> 0;
    return true;
  }

  /**
   * Publishes the queued SQEs and hands them to the kernel (one
   * io_uring_enter): how many it took. Normally all of them; fewer when one
   * failed early (its CQE carries the error) or the kernel ran short of
   * memory; the rest stay queued for the next submit().
   */
  submit(): number {
    this.ensureOpen('submit');
    this.sq[this.sqTailW] = this.sqTail;
    for (;;) {
      // Counted again after an EINTR, from the kernel's head.
      const toSubmit = (this.sqTail - this.sq[this.sqHeadW]!) >>> 0;
      if (toSubmit === 0) return 0;
      const ret = enterFn(SYS_io_uring_enter, this.fd, toSubmit, 0, 0, 0, 0);
      if (ret >= 0) return ret;
      const errno = libc.lastErrno();
      if (errno !== EINTR) throw new SysError('io_uring_enter(submit)', errno);
    }
  }

  /**
   * Blocks until at least `minComplete` (0..cqEntries) completions are in
   * the CQ ring, unreaped. Does not submit: requests still queued by prep*()
   * do not count towards completing.
   */
  wait(minComplete: number): void {
    this.ensureOpen('wait');
    if (!Number.isInteger(minComplete) || minComplete < 0 || minComplete > this.cqEntries) {
      throw new RangeError(`io_uring: cannot wait for ${minComplete} completions (CQ of ${this.cqEntries})`);
    }
    while (this.ready() < minComplete) this.enter(0, minComplete, IORING_ENTER_GETEVENTS, 'io_uring_enter(wait)');
  }

  /**
   * Takes every available completion in order, calling fn(user_data, res)
   * for each (res: the syscall's result, or -errno). A CQE is consumed
   * before its callback runs, so fn may prep/submit/reap itself. Completions
   * the kernel had to park because the CQ ring was full (more requests in
   * flight than cqEntries) are flushed in and taken too. Returns the count.
   */
  reap(fn: (userData: number, res: number) => void): number {
    this.ensureOpen('reap');
    const cq = this.cq;
    let n = 0;
    let flushed = false;
    for (;;) {
      const tail = cq[this.cqTailW]!;
      const head = cq[this.cqHeadW]!;
      if (head === tail) {
        if (flushed || (this.sq[this.sqFlagsW]! & IORING_SQ_CQ_OVERFLOW) === 0) return n;
        this.enter(0, 0, IORING_ENTER_GETEVENTS, 'io_uring_enter(flush CQ overflow)');
        flushed = true;
        continue;
      }
      flushed = false;
      const w = this.cqesW + (head & this.cqMask) * CQE_WORDS;
      const userData = cq[w + W_CQE_USER_DATA]! + cq[w + W_CQE_USER_DATA + 1]! * TWO_32;
      const res = cq[w + W_CQE_RES]! | 0;
      cq[this.cqHeadW] = (head + 1) >>> 0;
      n++;
      fn(userData, res);
    }
  }

  /** Makes the kernel signal `efd` (an eventfd) whenever it posts a completion. */
  registerEventFd(efd: number): void {
    this.ensureOpen('registerEventFd');
    const arg = new Uint8Array(4);
    new DataView(arg.buffer).setInt32(0, efd, true);
    const ret = libc.retryRaw(() => registerFn(SYS_io_uring_register, this.fd, IORING_REGISTER_EVENTFD, arg, 1));
    if (ret < 0) throw new SysError('io_uring_register(IORING_REGISTER_EVENTFD)', -ret);
  }

  /**
   * Unmaps the rings and closes the ring fd; later calls are harmless.
   * Requests still in flight are cancelled or finished by the kernel in the
   * background, so their buffers must not be reused before they completed:
   * wait for and reap them first.
   */
  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    // Nothing may touch the mappings once they are gone.
    this.sq = this.cq = this.sqes = EMPTY_U32;
    this.sqeBytes = EMPTY_U8;
    for (const m of this.maps) libc.munmap(m.addr, m.len);
    this.maps.length = 0;
    libc.close(fd);
  }

  /** Completions in the CQ ring not reaped yet. */
  private ready(): number {
    return (this.cq[this.cqTailW]! - this.cq[this.cqHeadW]!) >>> 0;
  }

  private enter(toSubmit: number, minComplete: number, flags: number, op: string): number {
    const ret = libc.retryRaw(() => enterFn(SYS_io_uring_enter, this.fd, toSubmit, minComplete, flags, 0, 0));
    if (ret < 0) throw new SysError(op, -ret);
    return ret;
  }

  private ensureOpen(op: string): void {
    if (this.fd < 0) throw new Error(`io_uring: ${op} after close()`);
  }
}
