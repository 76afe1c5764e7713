/**
 * KVM ABI constants from <linux/kvm.h> and <asm/kvm.h> (x86_64).
 * ioctl numbers are computed the way <asm-generic/ioctl.h> does, from the
 * struct sizes below, so a wrong size shows up as a wrong number in one place.
 */

const IOC_NONE = 0n;
const IOC_WRITE = 1n;
const IOC_READ = 2n;
/** KVMIO: the ioctl "type" byte of every KVM ioctl. */
const KVMIO = 0xaen;

function ioc(dir: bigint, nr: number, size: number): number {
  return Number((dir << 30n) | (BigInt(size) << 16n) | (KVMIO << 8n) | BigInt(nr));
}
const io = (nr: number): number => ioc(IOC_NONE, nr, 0);
const ior = (nr: number, size: number): number => ioc(IOC_READ, nr, size);
const iow = (nr: number, size: number): number => ioc(IOC_WRITE, nr, size);
const iowr = (nr: number, size: number): number => ioc(IOC_READ | IOC_WRITE, nr, size);

/** Sizes in bytes of the C structs passed to ioctls (see kvm_structs.ts for layouts). */
export const SIZEOF = {
  kvm_userspace_memory_region: 32,
  kvm_regs: 144,
  kvm_sregs: 312,
  kvm_fpu: 416,
  kvm_lapic_state: 1024,
  kvm_cpuid2_header: 8,
  kvm_cpuid_entry2: 40,
  kvm_msrs_header: 8,
  kvm_msr_entry: 16,
  kvm_msr_list_header: 4,
  kvm_pit_config: 64,
  kvm_irqfd: 32,
  kvm_ioeventfd: 64,
  kvm_irq_level: 8,
  kvm_clock_data: 48,
  kvm_mp_state: 4,
  kvm_vcpu_events: 64,
  kvm_xsave: 4096,
  kvm_xcrs: 392,
  kvm_debugregs: 128,
} as const;

/** The ioctls sparkler issues, by their <linux/kvm.h> names. */
export const KVM = {
  GET_API_VERSION: io(0x00),
  CREATE_VM: io(0x01),
  GET_MSR_INDEX_LIST: iowr(0x02, SIZEOF.kvm_msr_list_header),
  CHECK_EXTENSION: io(0x03),
  GET_VCPU_MMAP_SIZE: io(0x04),
  GET_SUPPORTED_CPUID: iowr(0x05, SIZEOF.kvm_cpuid2_header),
  CREATE_VCPU: io(0x41),
  SET_USER_MEMORY_REGION: iow(0x46, SIZEOF.kvm_userspace_memory_region),
  SET_TSS_ADDR: io(0x47),
  SET_IDENTITY_MAP_ADDR: iow(0x48, 8),
  CREATE_IRQCHIP: io(0x60),
  IRQ_LINE: iow(0x61, SIZEOF.kvm_irq_level),
  IRQFD: iow(0x76, SIZEOF.kvm_irqfd),
  CREATE_PIT2: iow(0x77, SIZEOF.kvm_pit_config),
  IOEVENTFD: iow(0x79, SIZEOF.kvm_ioeventfd),
  SET_CLOCK: iow(0x7b, SIZEOF.kvm_clock_data),
  GET_CLOCK: ior(0x7c, SIZEOF.kvm_clock_data),
  RUN: io(0x80),
  GET_REGS: ior(0x81, SIZEOF.kvm_regs),
  SET_REGS: iow(0x82, SIZEOF.kvm_regs),
  GET_SREGS: ior(0x83, SIZEOF.kvm_sregs),
  SET_SREGS: iow(0x84, SIZEOF.kvm_sregs),
  GET_MSRS: iowr(0x88, SIZEOF.kvm_msrs_header),
  SET_MSRS: iow(0x89, SIZEOF.kvm_msrs_header),
  GET_FPU: ior(0x8c, SIZEOF.kvm_fpu),
  SET_FPU: iow(0x8d, SIZEOF.kvm_fpu),
  GET_LAPIC: ior(0x8e, SIZEOF.kvm_lapic_state),
  SET_LAPIC: iow(0x8f, SIZEOF.kvm_lapic_state),
  SET_CPUID2: iow(0x90, SIZEOF.kvm_cpuid2_header),
  GET_CPUID2: iowr(0x91, SIZEOF.kvm_cpuid2_header),
  GET_MP_STATE: ior(0x98, SIZEOF.kvm_mp_state),
  SET_MP_STATE: iow(0x99, SIZEOF.kvm_mp_state),
  GET_VCPU_EVENTS: ior(0x9f, SIZEOF.kvm_vcpu_events),
  SET_VCPU_EVENTS: iow(0xa0, SIZEOF.kvm_vcpu_events),
  GET_TSC_KHZ: io(0xa3),
  KVMCLOCK_CTRL: io(0xad),
} as const;

export type KvmIoctlName = keyof typeof KVM;

/** KVM_GET_API_VERSION must return this (stable since Linux 2.6.22). */
export const KVM_API_VERSION = 12;

/** KVM_CHECK_EXTENSION capability numbers. */
export const KVM_CAP = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_VCPUS: 9,
  NR_MEMSLOTS: 10,
  PIT2: 33,
  SET_IDENTITY_MAP_ADDR: 37,
  IOEVENTFD: 36,
  IRQFD: 32,
  MAX_VCPUS: 66,
  IMMEDIATE_EXIT: 136,
} as const;

/** kvm_run.exit_reason values. */
export const KVM_EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  SET_TPR: 11,
  TPR_ACCESS: 12,
  NMI: 16,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
} as const;

export const KVM_EXIT_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(KVM_EXIT).map(([k, v]) => [v, `KVM_EXIT_${k}`]),
);

/** kvm_run.io.direction */
export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;

/** kvm_run.system_event.type */
export const KVM_SYSTEM_EVENT = { SHUTDOWN: 1, RESET: 2, CRASH: 3 } as const;

/** kvm_run.internal.suberror */
export const KVM_INTERNAL_ERROR = { EMULATION: 1, SIMUL_EX: 2, DELIVERY_EV: 3, UNEXPECTED_EXIT_REASON: 4 } as const;

/** Offsets into the mmap'ed struct kvm_run (x86_64). */
export const KVM_RUN_OFFSET = {
  request_interrupt_window: 0, // __u8
  immediate_exit: 1, // __u8
  exit_reason: 8, // __u32
  ready_for_interrupt_injection: 12, // __u8
  if_flag: 13, // __u8
  flags: 14, // __u16
  cr8: 16, // __u64
  apic_base: 24, // __u64
  /** Start of the exit-specific union. */
  exit: 32,
  io_direction: 32, // __u8
  io_size: 33, // __u8
  io_port: 34, // __u16
  io_count: 36, // __u32
  io_data_offset: 40, // __u64, from the start of kvm_run
  mmio_phys_addr: 32, // __u64
  mmio_data: 40, // __u8[8]
  mmio_len: 48, // __u32
  mmio_is_write: 52, // __u8
  fail_entry_reason: 32, // __u64 hardware_entry_failure_reason
  internal_suberror: 32, // __u32
  internal_ndata: 36, // __u32
  internal_data: 40, // __u64[16]
  system_event_type: 32, // __u32
} as const;

/** struct kvm_pit_config.flags */
export const KVM_PIT_SPEAKER_DUMMY = 1;
/** struct kvm_ioeventfd.flags */
export const KVM_IOEVENTFD_FLAG = { DATAMATCH: 1 << 0, PIO: 1 << 1, DEASSIGN: 1 << 2 } as const;
/** struct kvm_irqfd.flags */
export const KVM_IRQFD_FLAG = { DEASSIGN: 1 << 0, RESAMPLE: 1 << 1 } as const;
/** struct kvm_cpuid_entry2.flags */
export const KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1 << 0;
/** KVM_SET_CLOCK flags */
export const KVM_CLOCK_TSC_STABLE = 2;
/** Upper bound on entries KVM_GET_SUPPORTED_CPUID may return (KVM_MAX_CPUID_ENTRIES is 256). */
export const KVM_MAX_CPUID_ENTRIES = 256;
/** mp_state values (struct kvm_mp_state). */
export const KVM_MP_STATE = { RUNNABLE: 0, UNINITIALIZED: 1, INIT_RECEIVED: 2, HALTED: 3, SIPI_RECEIVED: 4 } as const;
