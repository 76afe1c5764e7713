/**
 * x86_64 guest physical memory layout. Values follow Firecracker's layout so
 * that tools and guests that know Firecracker find things where they expect.
 * All addresses are guest physical; sizes are bytes.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Initial GDT (4 descriptors × 8 bytes). */
export const BOOT_GDT_START = 0x500;
/** Initial (empty) IDT. */
export const BOOT_IDT_START = 0x520;
/** PVH boot: struct hvm_start_info. */
export const PVH_INFO_START = 0x6000;
/** PVH boot: hvm_memmap_table_entry array, right after the start info. */
export const PVH_MEMMAP_START = 0x7000 - 0x400;
/** Linux boot protocol: struct boot_params ("zero page"), passed in RSI. */
export const ZERO_PAGE_START = 0x7000;
/** Initial stack pointer (RSP/RBP) for the 64-bit entry. */
export const BOOT_STACK_POINTER = 0x8ff0;
/** Identity page tables: PML4, PDPT, PD (1 GiB mapped with 2 MiB pages). */
export const PML4_START = 0x9000;
export const PDPTE_START = 0xa000;
export const PDE_START = 0xb000;
/** Kernel command line, NUL terminated. */
export const CMDLINE_START = 0x20000;
/** Maximum command line size including the NUL (boot_params.hdr.cmdline_size for old kernels). */
export const CMDLINE_MAX_SIZE = 2048;
/** Start of the EBDA: MP/ACPI tables live between here and the RSDP. */
export const EBDA_START = 0x9fc00;
/** Root System Description Pointer (ACPI 6.x §5.2.5.1: searched in 0xe0000–0xfffff). */
export const RSDP_ADDR = 0xe0000;
/** ACPI tables other than the RSDP are placed from here (above the RSDP, below 1 MiB). */
export const ACPI_TABLES_START = 0xe0000 + 0x100;
/** End of the region reserved for ACPI tables (1 MiB). */
export const ACPI_TABLES_END = 0x100000;
/** Kernels are loaded at or above 1 MiB (HIMEM_START). */
export const HIMEM_START = 1 * MiB;
/** Where a bzImage's protected-mode part is loaded when the kernel allows it (pref_address default). */
export const BZIMAGE_LOAD_ADDR = 16 * MiB;

/** The 32-bit MMIO gap: [3 GiB, 4 GiB) never holds RAM. */
export const MMIO_GAP_START = 3 * GiB;
export const MMIO_GAP_SIZE = 1 * GiB;
export const MMIO_GAP_END = MMIO_GAP_START + MMIO_GAP_SIZE;

/** Firecracker's boot timer device: the guest writes 123 here when init starts. */
export const BOOT_TIMER_ADDR = MMIO_GAP_START;
export const BOOT_TIMER_SIZE = 0x1000;
/** virtio-mmio device n lives at VIRTIO_MMIO_START + n * VIRTIO_MMIO_SIZE. */
export const VIRTIO_MMIO_START = MMIO_GAP_START + 0x1000;
export const VIRTIO_MMIO_SIZE = 0x1000;

/** IOAPIC and LAPIC MMIO (architectural defaults). */
export const IOAPIC_ADDR = 0xfec00000;
export const LAPIC_ADDR = 0xfee00000;
/** KVM needs 3 pages for the TSS (KVM_SET_TSS_ADDR) and 1 for the identity map (KVM_SET_IDENTITY_MAP_ADDR), inside the gap. */
export const KVM_TSS_ADDR = 0xfffbd000;
export const KVM_IDENTITY_MAP_ADDR = 0xfffbc000;

/** Legacy I/O ports and ISA IRQs. */
export const COM1_PORT = 0x3f8;
export const COM1_IRQ = 4;
export const I8042_DATA_PORT = 0x60;
export const I8042_COMMAND_PORT = 0x64;
export const I8042_IRQ = 1;
/** First GSI handed to virtio-mmio devices (Firecracker: 5, 6, 7, ...). */
export const VIRTIO_IRQ_BASE = 5;
/** Last usable GSI on the in-kernel IOAPIC (24 pins). */
export const IRQ_MAX = 23;

/** Guest RAM regions for a machine of memSize bytes: low RAM below the gap, the rest above 4 GiB. */
export function ramRegions(memSize: number): Array<{ guestAddr: number; size: number }> {
  if (memSize <= MMIO_GAP_START) return [{ guestAddr: 0, size: memSize }];
  return [
    { guestAddr: 0, size: MMIO_GAP_START },
    { guestAddr: MMIO_GAP_END, size: memSize - MMIO_GAP_START },
  ];
}

export const SIZES = { KiB, MiB, GiB } as const;
