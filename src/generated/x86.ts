/** x86 architectural constants (Intel SDM / AMD APM). */

/** CR0 bits (SDM vol. 3 §2.5). */
export const CR0_PE = 1n << 0n;
export const CR0_ET = 1n << 4n;
export const CR0_PG = 1n << 31n;
/** CR4 bits. */
export const CR4_PAE = 1n << 5n;
/** EFER bits (MSR 0xc0000080). */
export const EFER_LME = 1n << 8n;
export const EFER_LMA = 1n << 10n;
/** RFLAGS bit 1 is reserved and always set. */
export const RFLAGS_RESERVED = 2n;

/** Page-table entry bits. */
export const PTE_PRESENT = 1n << 0n;
export const PTE_WRITABLE = 1n << 1n;
export const PTE_PAGE_SIZE = 1n << 7n;

/** MSR indices (SDM vol. 4). */
export const MSR = {
  IA32_TSC: 0x10,
  IA32_APICBASE: 0x1b,
  IA32_SYSENTER_CS: 0x174,
  IA32_SYSENTER_ESP: 0x175,
  IA32_SYSENTER_EIP: 0x176,
  IA32_MISC_ENABLE: 0x1a0,
  MTRR_DEF_TYPE: 0x2ff,
  STAR: 0xc0000081,
  LSTAR: 0xc0000082,
  CSTAR: 0xc0000083,
  SYSCALL_MASK: 0xc0000084,
  KERNEL_GS_BASE: 0xc0000102,
} as const;
/** IA32_MISC_ENABLE bit 0: fast-string operations enabled. */
export const MISC_ENABLE_FAST_STRING = 1n;
/** IA32_MTRR_DEF_TYPE: MTRRs enabled (bit 11), default type write-back (6). */
export const MTRR_ENABLE = 1n << 11n;
export const MTRR_MEM_TYPE_WB = 6n;

/** FPU reset values (SDM vol. 1 §8.1.5, §10.2.3). */
export const FPU_FCW_DEFAULT = 0x37f;
export const MXCSR_DEFAULT = 0x1f80;

/** CPUID leaves and bits used by the per-vCPU fix-ups. */
export const CPUID = {
  LEAF_FEATURES: 0x1,
  LEAF_CACHE_PARAMS: 0x4,
  LEAF_EXT_TOPOLOGY: 0xb,
  LEAF_V2_EXT_TOPOLOGY: 0x1f,
  LEAF_HYPERVISOR_BASE: 0x40000000,
  LEAF_AMD_EXT_FEATURES: 0x80000001,
  LEAF_AMD_SIZE_IDS: 0x80000008,
  LEAF_AMD_CACHE_TOPOLOGY: 0x8000001d,
  LEAF_AMD_EXT_APIC_ID: 0x8000001e,
  /** CPUID.1:ECX bit 31: running under a hypervisor (guests then probe 0x40000000 and use kvm-clock). */
  ECX_HYPERVISOR: 1 << 31,
  /**
   * CPUID.1:ECX bit 24: TSC-deadline mode of the local APIC timer. KVM's
   * in-kernel LAPIC implements it but KVM_GET_SUPPORTED_CPUID leaves it
   * clear (KVM_CAP_TSC_DEADLINE_TIMER): the VMM sets it, as Firecracker and
   * QEMU do, so the guest's tickless timer reprograms with one MSR write.
   */
  ECX_TSC_DEADLINE: 1 << 24,
  /** CPUID.1:EDX bit 28: HTT, the logical processor count in EBX[23:16] is valid. */
  EDX_HTT: 1 << 28,
  /** CPUID.80000001h:ECX bit 1: CmpLegacy (AMD: HTT means cores, not threads). */
  AMD_ECX_CMP_LEGACY: 1 << 1,
  /** Leaf 0xb/0x1f level types (ECX[15:8]). */
  LEVEL_TYPE_INVALID: 0,
  LEVEL_TYPE_THREAD: 1,
  LEVEL_TYPE_CORE: 2,
} as const;
