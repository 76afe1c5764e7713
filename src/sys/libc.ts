/**
 * The project's only native boundary: glibc, called through koffi.
 *
 * Every call that can fail goes through `check`, which turns a -1 return into
 * a SysError naming the operation and errno, so a failure reads like
 * "KVM_CREATE_VM: ENODEV (No such device)" instead of a bare -1.
 */
import koffi from 'koffi';
import os from 'node:os';
import {
  AF_UNIX, EINTR as EINTR_ERRNO, ENAMETOOLONG, MAP_FAILED, O_CLOEXEC, SOCK_CLOEXEC, SOCKADDR_UN_OFF_FAMILY, SOCKADDR_UN_OFF_PATH,
  SIZEOF_SOCKADDR_UN, SYS_gettid, SYS_tgkill, SIZEOF_EPOLL_EVENT, UNIX_PATH_MAX,
} from '../generated/libc.js';

/** glibc, loaded once: other binding modules (io_uring.ts) declare their functions on it too. */
export const lib = koffi.load('libc.so.6');

const errnoNames: Map<number, string> = new Map(
  Object.entries(os.constants.errno).map(([name, no]) => [no, name]),
);

const strerrorFn = lib.func('const char *strerror(int)') as (errno: number) => string;

export class SysError extends Error {
  constructor(readonly op: string, readonly errno: number) {
    super(`${op}: ${errnoNames.get(errno) ?? `errno ${errno}`} (${strerrorFn(errno)})`);
    this.name = 'SysError';
  }
}

/** The thread's errno after a failed call (koffi saves it for sync and async calls). */
export function lastErrno(): number {
  return koffi.errno();
}

function check(op: string, ret: number): number {
  if (ret < 0) throw new SysError(op, koffi.errno());
  return ret;
}

type IoctlArg = number | bigint | Uint8Array;

const openFn = lib.func('int open(const char *path, int flags, int mode)') as (p: string, f: number, m: number) => number;
const closeFn = lib.func('int close(int fd)') as (fd: number) => number;
const ioctlPtr = lib.func('int ioctl(int fd, unsigned long req, void *arg)') as (fd: number, req: number, arg: Uint8Array | null) => number;
const ioctlVal = lib.func('int ioctl(int fd, unsigned long req, unsigned long arg)') as (fd: number, req: number, arg: number | bigint) => number;
const mmapFn = lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)');
const munmapFn = lib.func('int munmap(void *addr, size_t len)');
const madviseFn = lib.func('int madvise(void *addr, size_t len, int advice)');
const eventfdFn = lib.func('int eventfd(unsigned int initval, int flags)') as (v: number, f: number) => number;
const readFn = lib.func('long read(int fd, void *buf, size_t n)') as (fd: number, b: Uint8Array, n: number) => number;
const writeFn = lib.func('long write(int fd, const void *buf, size_t n)') as (fd: number, b: Uint8Array, n: number) => number;
const preadFn = lib.func('long pread(int fd, void *buf, size_t n, long off)');
const pwriteFn = lib.func('long pwrite(int fd, const void *buf, size_t n, long off)');
const fsyncFn = lib.func('int fsync(int fd)') as (fd: number) => number;
const fdatasyncFn = lib.func('int fdatasync(int fd)') as (fd: number) => number;
const epollCreate1Fn = lib.func('int epoll_create1(int flags)') as (f: number) => number;
const epollCtlFn = lib.func('int epoll_ctl(int epfd, int op, int fd, void *event)') as (e: number, o: number, fd: number, ev: Uint8Array | null) => number;
const epollWaitFn = lib.func('int epoll_wait(int epfd, void *events, int max, int timeout)');
const syscall3 = lib.func('long syscall(long no, long a, long b, long c)') as (n: number, a: number, b: number, c: number) => number;
const syscall0 = lib.func('long syscall(long no)') as (n: number) => number;

export function open(path: string, flags: number, mode = 0): number {
  return check(`open(${path})`, openFn(path, flags | O_CLOEXEC, mode));
}

export function close(fd: number): void {
  check('close', closeFn(fd));
}

/**
 * ioctl with a pointer argument (a buffer the kernel reads and/or fills) or a
 * plain value. EINTR is retried: KVM_CREATE_VM, for one, fails with it when
 * any signal arrives meanwhile (mm_take_all_locks gives up on a pending
 * signal), e.g. a profiler's SIGPROF. KVM_RUN, whose EINTR means "kicked",
 * goes through ioctlRaw instead.
 */
export function ioctl(fd: number, req: number, arg: IoctlArg, name: string): number {
  const ret = arg instanceof Uint8Array
    ? retryRaw(() => ioctlPtr(fd, req, arg))
    : retryRaw(() => ioctlVal(fd, req, arg));
  if (ret < 0) throw new SysError(name, -ret);
  return ret;
}

/**
 * ioctl returning its result, or -errno, instead of throwing (for KVM_RUN,
 * whose EINTR is routine). A plain number: this runs once per VM exit, and an
 * object per call would be garbage per exit; errno is read only on failure.
 */
export function ioctlRaw(fd: number, req: number, arg: number): number {
  const ret = ioctlVal(fd, req, arg);
  return ret < 0 ? -koffi.errno() : ret;
}


/** mmap; returns the mapping's address. */
export function mmap(len: number, prot: number, flags: number, fd = -1, offset = 0): bigint {
  const p = mmapFn(null, len, prot, flags, fd, offset);
  const addr = p === null ? 0n : BigInt(koffi.address(p));
  if (addr === MAP_FAILED || addr === 0n) throw new SysError('mmap', koffi.errno());
  return addr;
}

export function munmap(addr: bigint, len: number): void {
  check('munmap', munmapFn(addr, len) as number);
}

export function madvise(addr: bigint, len: number, advice: number): void {
  check('madvise', madviseFn(addr, len, advice) as number);
}

/** A zero-copy ArrayBuffer over native memory (guest RAM, kvm_run). */
export function view(addr: bigint, len: number): ArrayBuffer {
  return koffi.view(addr as unknown as object, len);
}

export function eventfd(initval: number, flags: number): number {
  return check('eventfd', eventfdFn(initval, flags));
}

export function read(fd: number, buf: Uint8Array, op = 'read'): number {
  return check(op, readFn(fd, buf, buf.byteLength));
}

export function write(fd: number, buf: Uint8Array, op = 'write'): number {
  return check(op, writeFn(fd, buf, buf.byteLength));
}

/** pread/pwrite between a file and native memory (e.g. guest RAM), no JS copy. */
export function preadTo(fd: number, addr: bigint, len: number, offset: number): number {
  return check('pread', preadFn(fd, addr, len, offset) as number);
}

export function pwriteFrom(fd: number, addr: bigint, len: number, offset: number): number {
  return check('pwrite', pwriteFn(fd, addr, len, offset) as number);
}

/** Flushes a file's data and metadata to stable storage (fsync(2)). */
export function fsync(fd: number): void {
  check('fsync', fsyncFn(fd));
}

/** Flushes a file's data (and the metadata needed to read it back) to stable storage (fdatasync(2)). */
export function fdatasync(fd: number): void {
  check('fdatasync', fdatasyncFn(fd));
}

export function epollCreate(flags: number): number {
  return check('epoll_create1', epollCreate1Fn(flags));
}

/** epoll_ctl with a 32-bit token carried in epoll_data. */
export function epollCtl(epfd: number, op: number, fd: number, events: number, token: number): void {
  const ev = new Uint8Array(SIZEOF_EPOLL_EVENT);
  const dv = new DataView(ev.buffer);
  dv.setUint32(0, events, true);
  dv.setBigUint64(4, BigInt(token), true);
  check('epoll_ctl', epollCtlFn(epfd, op, fd, ev));
}

/** epoll_wait on the calling thread (a device thread blocks here); returns (token, events) pairs. */
export function epollWait(epfd: number, buf: Uint8Array, timeoutMs: number): Array<{ token: number; events: number }> {
  const max = Math.floor(buf.byteLength / SIZEOF_EPOLL_EVENT);
  const n = epollWaitFn(epfd, buf, max, timeoutMs) as number;
  if (n < 0) {
    const errno = koffi.errno();
    if (errno === EINTR_ERRNO) return [];
    throw new SysError('epoll_wait', errno);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Array<{ token: number; events: number }> = [];
  for (let i = 0; i < n; i++) {
    out.push({ events: dv.getUint32(i * SIZEOF_EPOLL_EVENT, true), token: Number(dv.getBigUint64(i * SIZEOF_EPOLL_EVENT + 4, true)) });
  }
  return out;
}


export function gettid(): number {
  return syscall0(SYS_gettid);
}

/** Send a signal to one thread of this process. */
export function tgkill(tid: number, sig: number): void {
  check('tgkill', syscall3(SYS_tgkill, process.pid, tid, sig));
}

// ---------------------------------------------------------------------------
// Sockets (AF_UNIX stream sockets for device backends such as vsock).
//
// The `try*` calls are for non-blocking fds served from an epoll loop: they
// return the result (>= 0) or -errno instead of throwing, since EAGAIN,
// EINPROGRESS, ECONNREFUSED or EPIPE are routine there. EINTR is retried.

const socketFn = lib.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number;
const bindFn = lib.func('int bind(int fd, const void *addr, unsigned int len)') as (fd: number, a: Uint8Array, l: number) => number;
const listenFn = lib.func('int listen(int fd, int backlog)') as (fd: number, b: number) => number;
const accept4Fn = lib.func('int accept4(int fd, void *addr, void *addrlen, int flags)') as (fd: number, a: null, l: null, f: number) => number;
const connectFn = lib.func('int connect(int fd, const void *addr, unsigned int len)') as (fd: number, a: Uint8Array, l: number) => number;
const sendFn = lib.func('long send(int fd, const void *buf, size_t n, int flags)') as (fd: number, b: Uint8Array, n: number, f: number) => number;
const recvFn = lib.func('long recv(int fd, void *buf, size_t n, int flags)') as (fd: number, b: Uint8Array, n: number, f: number) => number;
const shutdownFn = lib.func('int shutdown(int fd, int how)') as (fd: number, how: number) => number;
const getsockoptFn = lib.func('int getsockopt(int fd, int level, int name, void *val, void *len)') as (fd: number, l: number, n: number, v: Uint8Array, len: Uint8Array) => number;
const setsockoptFn = lib.func('int setsockopt(int fd, int level, int name, const void *val, unsigned int len)') as (fd: number, l: number, n: number, v: Uint8Array, len: number) => number;
const unlinkFn = lib.func('int unlink(const char *path)') as (p: string) => number;

/** Runs a raw libc call until it is not interrupted (EINTR): its result, or -errno. */
export function retryRaw(call: () => number): number {
  for (;;) {
    const ret = call();
    if (ret >= 0) return ret;
    const errno = koffi.errno();
    if (errno !== EINTR_ERRNO) return -errno;
  }
}

/** socket(2), always close-on-exec. */
export function socket(domain: number, type: number, protocol = 0): number {
  return check('socket', socketFn(domain, type | SOCK_CLOEXEC, protocol));
}

/**
 * A struct sockaddr_un for a pathname and the address length to pass with
 * it. Throws SysError(ENAMETOOLONG) when the path (UTF-8) does not fit
 * sun_path with its terminating NUL.
 */
export function sockaddrUn(path: string): { addr: Uint8Array; len: number } {
  const p = new TextEncoder().encode(path);
  if (p.length === 0 || p.length >= UNIX_PATH_MAX) throw new SysError(`sockaddr_un(${path})`, ENAMETOOLONG);
  const addr = new Uint8Array(SIZEOF_SOCKADDR_UN);
  new DataView(addr.buffer).setUint16(SOCKADDR_UN_OFF_FAMILY, AF_UNIX, true);
  addr.set(p, SOCKADDR_UN_OFF_PATH);
  return { addr, len: SOCKADDR_UN_OFF_PATH + p.length + 1 };
}

/** bind(2) to a Unix socket path. */
export function bindUnix(fd: number, path: string): void {
  const { addr, len } = sockaddrUn(path);
  check(`bind(${path})`, bindFn(fd, addr, len));
}

export function listen(fd: number, backlog: number): void {
  check('listen', listenFn(fd, backlog));
}

/** accept4(2) without the peer address: the new fd, or -errno (-EAGAIN: nothing to accept). */
export function tryAccept4(fd: number, flags: number): number {
  return retryRaw(() => accept4Fn(fd, null, null, flags | SOCK_CLOEXEC));
}

/**
 * connect(2) to a Unix socket path: 0, or -errno (-EINPROGRESS / -EAGAIN on
 * a non-blocking socket, -ECONNREFUSED / -ENOENT when nobody listens,
 * -ENAMETOOLONG for a path sockaddr_un cannot hold). EINTR is returned, not
 * retried (a second connect() would report EALREADY / EISCONN instead).
 */
export function tryConnectUnix(fd: number, path: string): number {
  let a: { addr: Uint8Array; len: number };
  try {
    a = sockaddrUn(path);
  } catch (e) {
    if (e instanceof SysError) return -e.errno;
    throw e;
  }
  const ret = connectFn(fd, a.addr, a.len);
  return ret < 0 ? -koffi.errno() : ret;
}

/** send(2) of `buf` (a view anywhere, guest memory included): bytes sent, or -errno. */
export function trySend(fd: number, buf: Uint8Array, flags: number): number {
  return retryRaw(() => sendFn(fd, buf, buf.byteLength, flags));
}

/** recv(2) into `buf`: bytes received (0: the peer shut down its side), or -errno. */
export function tryRecv(fd: number, buf: Uint8Array, flags: number): number {
  return retryRaw(() => recvFn(fd, buf, buf.byteLength, flags));
}

/** shutdown(2): 0 or -errno (-ENOTCONN when the peer is gone). */
export function tryShutdown(fd: number, how: number): number {
  return retryRaw(() => shutdownFn(fd, how));
}

/** getsockopt(2) of an int option (SO_ERROR, SO_SNDBUF, ...). */
export function getsockoptInt(fd: number, level: number, name: number): number {
  const val = new Uint8Array(4);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, 4, true);
  check('getsockopt', getsockoptFn(fd, level, name, val, len));
  return new DataView(val.buffer).getInt32(0, true);
}

/** setsockopt(2) of an int option. */
export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  const val = new Uint8Array(4);
  new DataView(val.buffer).setInt32(0, value, true);
  check('setsockopt', setsockoptFn(fd, level, name, val, 4));
}

export function unlink(path: string): void {
  check(`unlink(${path})`, unlinkFn(path));
}

// ---------------------------------------------------------------------------
// Scatter/gather I/O on caller-built iovec arrays, file status flags, and
// binding to any socket address (virtio-net: the TAP fd, AF_PACKET sockets).

import { F_GETFL, F_SETFL } from '../generated/libc.js';

const readvFn = lib.func('long readv(int fd, const void *iov, int iovcnt)') as (fd: number, iov: Uint8Array, n: number) => number;
const writevFn = lib.func('long writev(int fd, const void *iov, int iovcnt)') as (fd: number, iov: Uint8Array, n: number) => number;
const fcntlFn = lib.func('int fcntl(int fd, int cmd, ...)') as (fd: number, cmd: number, ...va: unknown[]) => number;

/**
 * readv(2) into an array of `count` struct iovec (16 bytes each: le64
 * iov_base host address, le64 iov_len) starting at iov[0]: bytes read, or
 * -errno (-EAGAIN on an empty non-blocking fd). EINTR is retried. The
 * addresses must be valid host memory for the whole call (guest RAM mappings).
 */
export function tryReadv(fd: number, iov: Uint8Array, count: number): number {
  return retryRaw(() => readvFn(fd, iov, count));
}

/** writev(2) from an iovec array as for tryReadv: bytes written, or -errno. */
export function tryWritev(fd: number, iov: Uint8Array, count: number): number {
  return retryRaw(() => writevFn(fd, iov, count));
}

const preadvFn = lib.func('long preadv(int fd, const void *iov, int iovcnt, long offset)') as (fd: number, iov: Uint8Array, n: number, off: number) => number;
const pwritevFn = lib.func('long pwritev(int fd, const void *iov, int iovcnt, long offset)') as (fd: number, iov: Uint8Array, n: number, off: number) => number;

/** preadv(2) at a file offset into an iovec array as for tryReadv: bytes read, or -errno. */
export function tryPreadv(fd: number, iov: Uint8Array, count: number, offset: number): number {
  return retryRaw(() => preadvFn(fd, iov, count, offset));
}

/** pwritev(2) at a file offset from an iovec array as for tryReadv: bytes written, or -errno. */
export function tryPwritev(fd: number, iov: Uint8Array, count: number, offset: number): number {
  return retryRaw(() => pwritevFn(fd, iov, count, offset));
}

/** fcntl(F_GETFL). */
export function getFileFlags(fd: number): number {
  return check('fcntl(F_GETFL)', fcntlFn(fd, F_GETFL));
}

/** fcntl(F_SETFL, flags). */
export function setFileFlags(fd: number, flags: number): void {
  check('fcntl(F_SETFL)', fcntlFn(fd, F_SETFL, 'int', flags));
}

/** bind(2) to a socket address the caller built (e.g. a struct sockaddr_ll). */
export function bindAddr(fd: number, addr: Uint8Array, op = 'bind'): void {
  check(op, bindFn(fd, addr, addr.byteLength));
}
