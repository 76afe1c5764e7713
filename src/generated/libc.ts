/** Linux x86_64 / glibc constants used by the syscall layer (from <fcntl.h>, <sys/mman.h>, <sys/epoll.h>, <sys/eventfd.h>, <asm/unistd_64.h>). */

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
/** mmap's error return, (void *)-1. */
export const MAP_FAILED = 0xffffffffffffffffn;
export const MADV_DONTNEED = 4;
export const MADV_MERGEABLE = 12;

export const EFD_CLOEXEC = O_CLOEXEC;
export const EFD_NONBLOCK = O_NONBLOCK;

export const EPOLL_CLOEXEC = O_CLOEXEC;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
/** sizeof(struct epoll_event) on x86_64 (packed: u32 events + u64 data). */
export const SIZEOF_EPOLL_EVENT = 12;

/** Syscall numbers (x86_64). */
export const SYS_gettid = 186;
export const SYS_tgkill = 234;

export const SIGUSR2 = 12;

export const EINTR = 4;
export const EAGAIN = 11;
