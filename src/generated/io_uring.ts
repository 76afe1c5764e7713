/**
 * io_uring ABI (x86_64): syscall numbers, opcodes, flags, mmap offsets and the
 * layouts of the structs shared with the kernel. Values from Linux's
 * include/uapi/linux/io_uring.h (upstream, 6.7+, and the 6.1 linux-libc-dev
 * copy agree on everything used here) and
 * arch/x86/entry/syscalls/syscall_64.tbl (<asm/unistd_64.h>).
 *
 *   struct io_uring_params {             // 120 bytes, filled in by io_uring_setup
 *     u32 sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle,
 *         features, wq_fd, resv[3];
 *     struct io_sqring_offsets sq_off;   // @40, 40 bytes
 *     struct io_cqring_offsets cq_off;   // @80, 40 bytes
 *   };
 *   struct io_sqring_offsets { u32 head, tail, ring_mask, ring_entries, flags, dropped, array, resv1; u64 user_addr; };
 *   struct io_cqring_offsets { u32 head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1; u64 user_addr; };
 *
 * The ring offsets are byte offsets into the mapping at IORING_OFF_SQ_RING /
 * IORING_OFF_CQ_RING; head, tail, ring_mask, ring_entries, flags and the SQ
 * array are u32; the CQ ring's cqes field points at an array of io_uring_cqe.
 */

/** <asm/unistd_64.h> __NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register. */
export const SYS_io_uring_setup = 425;
export const SYS_io_uring_enter = 426;
export const SYS_io_uring_register = 427;

/** enum io_uring_op (sqe->opcode). */
export const IORING_OP_NOP = 0;
export const IORING_OP_READV = 1;
export const IORING_OP_WRITEV = 2;
export const IORING_OP_FSYNC = 3;

/** sqe->flags: IOSQE_ASYNC = 1U << IOSQE_ASYNC_BIT (4): always punt to an io-wq worker ("always go async"). */
export const IOSQE_ASYNC = 1 << 4;

/** sqe->fsync_flags: IORING_FSYNC_DATASYNC (1U << 0): fdatasync instead of fsync. */
export const IORING_FSYNC_DATASYNC = 1 << 0;

/** io_uring_enter(2) flags: IORING_ENTER_GETEVENTS (1U << 0): wait for min_complete completions. */
export const IORING_ENTER_GETEVENTS = 1 << 0;

/** mmap(2) offsets on the ring fd: IORING_OFF_SQ_RING (0ULL), IORING_OFF_CQ_RING (0x8000000ULL), IORING_OFF_SQES (0x10000000ULL). */
export const IORING_OFF_SQ_RING = 0;
export const IORING_OFF_CQ_RING = 0x8000000;
export const IORING_OFF_SQES = 0x10000000;

/** io_uring_params->features: IORING_FEAT_SINGLE_MMAP (1U << 0): SQ and CQ rings share one mapping (Linux 5.4+). */
export const IORING_FEAT_SINGLE_MMAP = 1 << 0;
/** io_uring_params->features: IORING_FEAT_NODROP (1U << 1): CQEs that do not fit the CQ ring are kept, not dropped (Linux 5.5+). */
export const IORING_FEAT_NODROP = 1 << 1;

/** sq_ring->flags: IORING_SQ_CQ_OVERFLOW (1U << 1): completions wait in the kernel's overflow list (flushed by io_uring_enter with GETEVENTS). */
export const IORING_SQ_CQ_OVERFLOW = 1 << 1;

/** io_uring_register(2) opcodes: IORING_REGISTER_EVENTFD = 4 (arg: pointer to an s32 eventfd, nr_args 1). */
export const IORING_REGISTER_EVENTFD = 4;

/** IORING_MAX_ENTRIES (kernel-internal, io_uring/io_uring.c or .h): most SQ entries io_uring_setup accepts (EINVAL beyond, without IORING_SETUP_CLAMP). */
export const IORING_MAX_ENTRIES = 32768;

// ---- struct io_uring_params ------------------------------------------------
export const SIZEOF_IO_URING_PARAMS = 120;
export const IO_URING_PARAMS_OFF_SQ_ENTRIES = 0;
export const IO_URING_PARAMS_OFF_CQ_ENTRIES = 4;
export const IO_URING_PARAMS_OFF_FLAGS = 8;
export const IO_URING_PARAMS_OFF_SQ_THREAD_CPU = 12;
export const IO_URING_PARAMS_OFF_SQ_THREAD_IDLE = 16;
export const IO_URING_PARAMS_OFF_FEATURES = 20;
export const IO_URING_PARAMS_OFF_WQ_FD = 24;
/** resv[3]: u32 at 28, 32, 36. */
export const IO_URING_PARAMS_OFF_RESV = 28;
/** struct io_sqring_offsets sq_off. */
export const IO_URING_PARAMS_OFF_SQ_OFF = 40;
/** struct io_cqring_offsets cq_off. */
export const IO_URING_PARAMS_OFF_CQ_OFF = 80;

// ---- struct io_sqring_offsets (relative to sq_off) ---------------------------
export const SIZEOF_IO_SQRING_OFFSETS = 40;
export const IO_SQRING_OFF_HEAD = 0;
export const IO_SQRING_OFF_TAIL = 4;
export const IO_SQRING_OFF_RING_MASK = 8;
export const IO_SQRING_OFF_RING_ENTRIES = 12;
export const IO_SQRING_OFF_FLAGS = 16;
export const IO_SQRING_OFF_DROPPED = 20;
export const IO_SQRING_OFF_ARRAY = 24;
export const IO_SQRING_OFF_RESV1 = 28;
/** u64 user_addr (IORING_SETUP_NO_MMAP; was u64 resv2 before Linux 6.5). */
export const IO_SQRING_OFF_USER_ADDR = 32;

// ---- struct io_cqring_offsets (relative to cq_off) ---------------------------
export const SIZEOF_IO_CQRING_OFFSETS = 40;
export const IO_CQRING_OFF_HEAD = 0;
export const IO_CQRING_OFF_TAIL = 4;
export const IO_CQRING_OFF_RING_MASK = 8;
export const IO_CQRING_OFF_RING_ENTRIES = 12;
export const IO_CQRING_OFF_OVERFLOW = 16;
export const IO_CQRING_OFF_CQES = 20;
/** u32 flags (Linux 5.8+; IORING_CQ_EVENTFD_DISABLED). */
export const IO_CQRING_OFF_FLAGS = 24;
export const IO_CQRING_OFF_RESV1 = 28;
/** u64 user_addr (IORING_SETUP_NO_MMAP; was u64 resv2 before Linux 6.5). */
export const IO_CQRING_OFF_USER_ADDR = 32;

// ---- struct io_uring_sqe (64 bytes without IORING_SETUP_SQE128) -------------
export const SIZEOF_IO_URING_SQE = 64;
/** u8 opcode. */
export const SQE_OFF_OPCODE = 0;
/** u8 flags (IOSQE_*). */
export const SQE_OFF_FLAGS = 1;
/** u16 ioprio. */
export const SQE_OFF_IOPRIO = 2;
/** s32 fd. */
export const SQE_OFF_FD = 4;
/** u64 off (file offset; union with addr2). */
export const SQE_OFF_OFF = 8;
/** u64 addr (buffer or iovec array; union with splice_off_in). */
export const SQE_OFF_ADDR = 16;
/** u32 len (buffer size or number of iovecs). */
export const SQE_OFF_LEN = 24;
/** u32 rw_flags / fsync_flags / ... (one union). */
export const SQE_OFF_RW_FLAGS = 28;
export const SQE_OFF_FSYNC_FLAGS = 28;
/** u64 user_data (returned in the CQE). */
export const SQE_OFF_USER_DATA = 32;
/** u16 buf_index / buf_group (packed union). */
export const SQE_OFF_BUF_INDEX = 40;
/** u16 personality. */
export const SQE_OFF_PERSONALITY = 42;
/** s32 splice_fd_in / u32 file_index. */
export const SQE_OFF_SPLICE_FD_IN = 44;
/** u64 addr3, then u64 __pad2[1]. */
export const SQE_OFF_ADDR3 = 48;

// ---- struct io_uring_cqe (16 bytes without IORING_SETUP_CQE32) --------------
export const SIZEOF_IO_URING_CQE = 16;
/** u64 user_data. */
export const CQE_OFF_USER_DATA = 0;
/** s32 res (a syscall-style result: >= 0, or -errno). */
export const CQE_OFF_RES = 8;
/** u32 flags (IORING_CQE_F_*). */
export const CQE_OFF_FLAGS = 12;
