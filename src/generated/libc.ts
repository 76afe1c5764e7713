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
/** <asm-generic/mman-common.h> MAP_POPULATE: prefault the page tables. */
export const MAP_POPULATE = 0x8000;
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

export const ENOENT = 2;
export const EPIPE = 32;
export const ENAMETOOLONG = 36;
export const EWOULDBLOCK = EAGAIN;
export const EADDRINUSE = 98;
export const ECONNABORTED = 103;
export const ECONNRESET = 104;
export const ENOTCONN = 107;
export const ECONNREFUSED = 111;
export const EINPROGRESS = 115;

/** Sockets (<sys/socket.h>, <bits/socket_type.h>, <asm-generic/socket.h>). */
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = O_NONBLOCK;
export const SOCK_CLOEXEC = O_CLOEXEC;
export const SOL_SOCKET = 1;
export const SO_ERROR = 4;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;
export const MSG_PEEK = 0x02;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const EPOLLRDHUP = 0x2000;

/**
 * struct sockaddr_un (<sys/un.h>): sa_family_t sun_family (u16), then
 * char sun_path[108]. A pathname address is passed with length
 * offsetof(sun_path) + strlen(path) + 1 (the terminating NUL).
 */
export const SIZEOF_SOCKADDR_UN = 110;
export const SOCKADDR_UN_OFF_FAMILY = 0;
export const SOCKADDR_UN_OFF_PATH = 2;
/** sizeof(sun_path): a path must be at most UNIX_PATH_MAX - 1 bytes (room for the NUL). */
export const UNIX_PATH_MAX = 108;

/** <sys/epoll.h> EPOLLET: edge-triggered. */
export const EPOLLET = 0x80000000;
/** <fcntl.h> fcntl commands. */
export const F_GETFL = 3;
export const F_SETFL = 4;
/** <limits.h> IOV_MAX (Linux UIO_MAXIOV): most iovecs one readv/writev takes. */
export const IOV_MAX = 1024;
/** sizeof(struct iovec) on x86_64: void *iov_base; size_t iov_len. */
export const SIZEOF_IOVEC = 16;
/** <sys/socket.h>, <linux/if_packet.h>, <linux/if_ether.h>: raw packet sockets. */
export const AF_PACKET = 17;
export const SOCK_RAW = 3;
/** ETH_P_ALL: every protocol (host byte order; htons it for sockaddr_ll / socket()). */
export const ETH_P_ALL = 0x0003;
/** sizeof(struct sockaddr_ll). */
export const SIZEOF_SOCKADDR_LL = 20;
/** <asm-generic/errno-base.h>, <asm-generic/errno.h>. */
export const EPERM = 1;
export const ENXIO = 6;
export const EBADF = 9;
export const EACCES = 13;
export const EBUSY = 16;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOTTY = 25;
export const EBADFD = 77;
export const EIO = 5;
/** <asm-generic/errno.h> ENOSYS: no such syscall (e.g. io_uring_setup on a kernel without CONFIG_IO_URING). */
export const ENOSYS = 38;
/** <linux/socket.h> SOL_PACKET, <linux/if_packet.h> PACKET_VNET_HDR: packet socket sends/receives carry a struct virtio_net_hdr. */
export const SOL_PACKET = 263;
export const PACKET_VNET_HDR = 15;
