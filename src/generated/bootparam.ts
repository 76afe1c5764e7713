/**
 * Binary layouts the kernel loaders read and the boot-parameter builders
 * write, transcribed (not copied) from their public definitions:
 *
 * - Linux x86 boot protocol: struct boot_params / struct setup_header in
 *   arch/x86/include/uapi/asm/bootparam.h, Documentation/arch/x86/boot.rst
 *   and zero-page.rst;
 * - Xen's PVH start of day structure: xen/include/public/arch-x86/hvm/start_info.h;
 * - the ELF-64 object file format (System V gABI) and Xen's ELF note types
 *   (xen/include/public/elfnote.h).
 *
 * Every field carries its byte offset and size; all values are little-endian.
 * The setup header sits at the same offsets (0x1f1..) in a bzImage file and
 * in struct boot_params, so one table serves both the parser and the builder.
 */

/** A fixed-size little-endian field: byte offset inside its structure, size in bytes. */
export interface Field {
  readonly offset: number;
  readonly size: 1 | 2 | 4 | 8;
}

// ---------------------------------------------------------------------------
// struct setup_header (offsets are from the start of boot_params / the image)
// ---------------------------------------------------------------------------

/** First byte of struct setup_header inside boot_params and inside a bzImage. */
export const SETUP_HEADER_START = 0x1f1;
/** The header ends at 0x202 + the signed byte at 0x201 (the `jump` displacement). */
export const SETUP_HEADER_END_BASE = 0x202;
/** boot_params reserves [0x1f1, 0x290) for the header (edd_mbr_sig_buffer follows). */
export const SETUP_HEADER_MAX_END = 0x290;

export const HDR = {
  /** Size of the real-mode setup code in 512-byte sectors; 0 means 4. (ALL) */
  setup_sects: { offset: 0x1f1, size: 1 },
  /** Nonzero: mount root read-only (deprecated). (ALL) */
  root_flags: { offset: 0x1f2, size: 2 },
  /** Size of the protected-mode code in 16-byte paragraphs. (2.04+) */
  syssize: { offset: 0x1f4, size: 4 },
  /** Obsolete. (ALL) */
  ram_size: { offset: 0x1f8, size: 2 },
  /** Video mode control. (ALL) */
  vid_mode: { offset: 0x1fa, size: 2 },
  /** Default root device number (deprecated). (ALL) */
  root_dev: { offset: 0x1fc, size: 2 },
  /** 0xAA55, the closest thing old kernels have to a magic number. (ALL) */
  boot_flag: { offset: 0x1fe, size: 2 },
  /** x86 short jump: 0xEB then a signed displacement from 0x202 (= header length). (2.00+) */
  jump: { offset: 0x200, size: 2 },
  /** Magic "HdrS" = 0x53726448. (2.00+) */
  header: { offset: 0x202, size: 4 },
  /** Boot protocol version, (major << 8) | minor. (2.00+) */
  version: { offset: 0x206, size: 2 },
  /** Boot loader hook. (2.00+) */
  realmode_swtch: { offset: 0x208, size: 4 },
  /** Load-low segment, obsolete. (2.00+) */
  start_sys_seg: { offset: 0x20c, size: 2 },
  /** Pointer to the kernel version string, less 0x200. (2.00+) */
  kernel_version: { offset: 0x20e, size: 2 },
  /** Boot loader identifier, written by the loader (0xFF = undefined). (2.00+) */
  type_of_loader: { offset: 0x210, size: 1 },
  /** Boot protocol option flags (LOADED_HIGH, CAN_USE_HEAP, ...). (2.00+) */
  loadflags: { offset: 0x211, size: 1 },
  /** Move-to-high-memory size, only for 2.00–2.01. */
  setup_move_size: { offset: 0x212, size: 2 },
  /** 32-bit entry / protected-mode load address. (2.00+) */
  code32_start: { offset: 0x214, size: 4 },
  /** initrd load address, low 32 bits (loader writes). (2.00+) */
  ramdisk_image: { offset: 0x218, size: 4 },
  /** initrd size, low 32 bits (loader writes). (2.00+) */
  ramdisk_size: { offset: 0x21c, size: 4 },
  /** Obsolete. (2.00+) */
  bootsect_kludge: { offset: 0x220, size: 4 },
  /** End of the real-mode setup heap, as an offset from the real-mode code, minus 0x200. (2.01+) */
  heap_end_ptr: { offset: 0x224, size: 2 },
  /** Extended boot loader version. (2.02+) */
  ext_loader_ver: { offset: 0x226, size: 1 },
  /** Extended boot loader ID. (2.02+) */
  ext_loader_type: { offset: 0x227, size: 1 },
  /** Physical address of the command line, low 32 bits (loader writes). (2.02+) */
  cmd_line_ptr: { offset: 0x228, size: 4 },
  /** Highest address the initrd may occupy (address of its last byte). (2.03+) */
  initrd_addr_max: { offset: 0x22c, size: 4 },
  /** Physical alignment required for a relocatable kernel. (2.05+) */
  kernel_alignment: { offset: 0x230, size: 4 },
  /** Nonzero: the protected-mode part may be loaded at any kernel_alignment multiple. (2.05+) */
  relocatable_kernel: { offset: 0x234, size: 1 },
  /** Minimum alignment, as a power of two. (2.10+) */
  min_alignment: { offset: 0x235, size: 1 },
  /** Extended flags (XLF_*). (2.12+) */
  xloadflags: { offset: 0x236, size: 2 },
  /** Maximum command line length, excluding the NUL. (2.06+) */
  cmdline_size: { offset: 0x238, size: 4 },
  /** Hardware subarchitecture (0 = PC). (2.07+) */
  hardware_subarch: { offset: 0x23c, size: 4 },
  /** Subarchitecture-specific data. (2.07+) */
  hardware_subarch_data: { offset: 0x240, size: 8 },
  /** Offset of the compressed payload from the protected-mode code. (2.08+) */
  payload_offset: { offset: 0x248, size: 4 },
  /** Length of the payload. (2.08+) */
  payload_length: { offset: 0x24c, size: 4 },
  /** Physical pointer to a linked list of struct setup_data. (2.09+) */
  setup_data: { offset: 0x250, size: 8 },
  /** Preferred load address (where a non-relocatable kernel runs). (2.10+) */
  pref_address: { offset: 0x258, size: 8 },
  /** Linear memory needed from the runtime start before the kernel reads its memory map. (2.10+) */
  init_size: { offset: 0x260, size: 4 },
  /** Offset of the EFI handover entry point. (2.11+) */
  handover_offset: { offset: 0x264, size: 4 },
  /** Offset of kernel_info in the protected-mode part. (2.15+) */
  kernel_info_offset: { offset: 0x268, size: 4 },
} as const satisfies Record<string, Field>;

/** One past the last setup_header field defined as of protocol 2.15. */
export const SETUP_HEADER_KNOWN_END = 0x26c;

/** setup_header.boot_flag value. */
export const BOOT_FLAG_MAGIC = 0xaa55;
/** setup_header.header value: "HdrS" read as a little-endian u32. */
export const HDRS_MAGIC = 0x53726448;
/** First byte of setup_header.jump: the x86 short-jump opcode. */
export const JUMP_OPCODE = 0xeb;
/** setup_header.type_of_loader for a loader without an assigned ID. */
export const LOADER_TYPE_UNDEFINED = 0xff;

/** Boot protocol versions at which fields we use appeared (boot.rst history table). */
export const PROTOCOL = {
  /** cmdline_size. */
  V2_06: 0x0206,
  /** init_size, pref_address, min_alignment. */
  V2_10: 0x020a,
  /** xloadflags (and with it XLF_KERNEL_64, the 64-bit entry). */
  V2_12: 0x020c,
  /** boot_params.acpi_rsdp_addr is read by kernels from this version on (2.14 itself is "burnt", see boot_params.ts). */
  V2_14: 0x020e,
} as const;

/** A "sector" of the boot protocol, always 512 bytes. */
export const SECTOR_SIZE = 512;
/** setup_sects value to assume when the field holds 0. */
export const SETUP_SECTS_DEFAULT = 4;
/** The 64-bit entry point sits this many bytes after the protected-mode load address. */
export const ENTRY64_OFFSET = 0x200;
/** setup_header.syssize unit: 16-byte paragraphs. */
export const SYSSIZE_UNIT = 16;

/** setup_header.loadflags bits. */
export const LOADFLAGS = {
  /** Protected-mode code is loaded at 0x100000 (bzImage) rather than 0x10000. */
  LOADED_HIGH: 1 << 0,
  /** Kernel internal: KASLR was applied. */
  KASLR_FLAG: 1 << 1,
  /** Suppress early messages. */
  QUIET_FLAG: 1 << 5,
  /** Obsolete. */
  KEEP_SEGMENTS: 1 << 6,
  /** heap_end_ptr is valid. */
  CAN_USE_HEAP: 1 << 7,
} as const;

/** setup_header.xloadflags bits. */
export const XLOADFLAGS = {
  /** The kernel has the legacy 64-bit entry point at load address + 0x200. */
  XLF_KERNEL_64: 1 << 0,
  /** Kernel, boot_params, cmdline and ramdisk may live above 4 GiB. */
  XLF_CAN_BE_LOADED_ABOVE_4G: 1 << 1,
  XLF_EFI_HANDOVER_32: 1 << 2,
  XLF_EFI_HANDOVER_64: 1 << 3,
  XLF_EFI_KEXEC: 1 << 4,
  XLF_5LEVEL: 1 << 5,
  XLF_5LEVEL_ENABLED: 1 << 6,
} as const;

// ---------------------------------------------------------------------------
// struct boot_params ("zero page"), fields outside the setup header
// ---------------------------------------------------------------------------

/** sizeof(struct boot_params): one 4 KiB page. */
export const BOOT_PARAMS_SIZE = 0x1000;

export const BP = {
  /** Physical address of the ACPI RSDP. */
  acpi_rsdp_addr: { offset: 0x070, size: 8 },
  /** High 32 bits of hdr.ramdisk_image. */
  ext_ramdisk_image: { offset: 0x0c0, size: 4 },
  /** High 32 bits of hdr.ramdisk_size. */
  ext_ramdisk_size: { offset: 0x0c4, size: 4 },
  /** High 32 bits of hdr.cmd_line_ptr. */
  ext_cmd_line_ptr: { offset: 0x0c8, size: 4 },
  /** Number of valid entries in e820_table. */
  e820_entries: { offset: 0x1e8, size: 1 },
  /** Set to 0xff in the kernel image: if a loader copies it along, the kernel zeroes stale fields. */
  sentinel: { offset: 0x1ef, size: 1 },
} as const satisfies Record<string, Field>;

/** boot_params.e820_table: struct boot_e820_entry[E820_MAX_ENTRIES_ZEROPAGE]. */
export const BP_E820_TABLE_OFFSET = 0x2d0;
/** E820_MAX_ENTRIES_ZEROPAGE. */
export const E820_MAX_ENTRIES_ZEROPAGE = 128;

/** struct boot_e820_entry (packed, 20 bytes); also the layout of the E820 BIOS call. */
export const E820_ENTRY = {
  addr: { offset: 0x00, size: 8 },
  size: { offset: 0x08, size: 8 },
  type: { offset: 0x10, size: 4 },
} as const satisfies Record<string, Field>;
export const E820_ENTRY_SIZE = 20;

/** E820 memory types (also used by Xen's hvm_memmap_table_entry.type). */
export const E820_TYPE = {
  RAM: 1,
  RESERVED: 2,
  ACPI: 3,
  NVS: 4,
  UNUSABLE: 5,
  /** Xen: XEN_HVM_MEMMAP_TYPE_DISABLED. */
  DISABLED: 6,
  PMEM: 7,
} as const;

// ---------------------------------------------------------------------------
// Xen PVH: struct hvm_start_info (version 1) and its arrays
// ---------------------------------------------------------------------------

/** hvm_start_info.magic: "xEn3" with the 0x80 bit of the "E" set. */
export const XEN_HVM_START_MAGIC_VALUE = 0x336ec578;
/** The structure version we write: 1 adds memmap_paddr / memmap_entries. */
export const HVM_START_INFO_VERSION = 1;

export const HVM_START_INFO = {
  magic: { offset: 0x00, size: 4 },
  version: { offset: 0x04, size: 4 },
  /** SIF_xxx flags. */
  flags: { offset: 0x08, size: 4 },
  nr_modules: { offset: 0x0c, size: 4 },
  /** Physical address of hvm_modlist_entry[nr_modules]. */
  modlist_paddr: { offset: 0x10, size: 8 },
  /** Physical address of the NUL-terminated command line. */
  cmdline_paddr: { offset: 0x18, size: 8 },
  /** Physical address of the ACPI RSDP (0 = none). */
  rsdp_paddr: { offset: 0x20, size: 8 },
  /** Version 1+: physical address of hvm_memmap_table_entry[memmap_entries]. */
  memmap_paddr: { offset: 0x28, size: 8 },
  /** Version 1+. */
  memmap_entries: { offset: 0x30, size: 4 },
  /** Version 1+: must be zero. */
  reserved: { offset: 0x34, size: 4 },
} as const satisfies Record<string, Field>;
export const HVM_START_INFO_SIZE = 0x38;

export const HVM_MODLIST_ENTRY = {
  paddr: { offset: 0x00, size: 8 },
  size: { offset: 0x08, size: 8 },
  cmdline_paddr: { offset: 0x10, size: 8 },
  reserved: { offset: 0x18, size: 8 },
} as const satisfies Record<string, Field>;
export const HVM_MODLIST_ENTRY_SIZE = 0x20;

export const HVM_MEMMAP_ENTRY = {
  addr: { offset: 0x00, size: 8 },
  size: { offset: 0x08, size: 8 },
  /** E820 type numbers. */
  type: { offset: 0x10, size: 4 },
  reserved: { offset: 0x14, size: 4 },
} as const satisfies Record<string, Field>;
export const HVM_MEMMAP_ENTRY_SIZE = 0x18;

// ---------------------------------------------------------------------------
// ELF-64
// ---------------------------------------------------------------------------

/** e_ident[0..4]: 0x7f 'E' 'L' 'F'. */
export const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46] as const;
/** e_ident indices and the values a little-endian x86_64 image has there. */
export const EI_CLASS = 4;
export const ELFCLASS64 = 2;
export const EI_DATA = 5;
export const ELFDATA2LSB = 1;
export const EI_VERSION = 6;
export const EV_CURRENT = 1;
/** e_type: executable file (vmlinux is linked as one). */
export const ET_EXEC = 2;
/** e_machine: AMD x86-64. */
export const EM_X86_64 = 62;

/** Elf64_Ehdr (64 bytes). */
export const ELF64_EHDR = {
  e_type: { offset: 0x10, size: 2 },
  e_machine: { offset: 0x12, size: 2 },
  e_version: { offset: 0x14, size: 4 },
  e_entry: { offset: 0x18, size: 8 },
  e_phoff: { offset: 0x20, size: 8 },
  e_shoff: { offset: 0x28, size: 8 },
  e_flags: { offset: 0x30, size: 4 },
  e_ehsize: { offset: 0x34, size: 2 },
  e_phentsize: { offset: 0x36, size: 2 },
  e_phnum: { offset: 0x38, size: 2 },
  e_shentsize: { offset: 0x3a, size: 2 },
  e_shnum: { offset: 0x3c, size: 2 },
  e_shstrndx: { offset: 0x3e, size: 2 },
} as const satisfies Record<string, Field>;
export const ELF64_EHDR_SIZE = 64;

/** Elf64_Phdr (56 bytes). */
export const ELF64_PHDR = {
  p_type: { offset: 0x00, size: 4 },
  p_flags: { offset: 0x04, size: 4 },
  p_offset: { offset: 0x08, size: 8 },
  p_vaddr: { offset: 0x10, size: 8 },
  p_paddr: { offset: 0x18, size: 8 },
  p_filesz: { offset: 0x20, size: 8 },
  p_memsz: { offset: 0x28, size: 8 },
  p_align: { offset: 0x30, size: 8 },
} as const satisfies Record<string, Field>;
export const ELF64_PHDR_SIZE = 56;

/** Program header types. */
export const PT_LOAD = 1;
export const PT_NOTE = 4;

/** Elf64_Nhdr: three 32-bit words (namesz, descsz, type), then name and desc, each padded. */
export const ELF_NHDR = {
  n_namesz: { offset: 0x0, size: 4 },
  n_descsz: { offset: 0x4, size: 4 },
  n_type: { offset: 0x8, size: 4 },
} as const satisfies Record<string, Field>;
export const ELF_NHDR_SIZE = 12;

/** Xen ELF note: the 32-bit physical PVH entry point (xen/include/public/elfnote.h). */
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;
/** Owner name of Xen notes (stored NUL-terminated, namesz = 4). */
export const XEN_ELFNOTE_NAME = 'Xen';

// ---------------------------------------------------------------------------
// Accessors
// ---------------------------------------------------------------------------

function view(buf: Uint8Array, field: Field, base: number): DataView {
  const at = base + field.offset;
  if (at < 0 || at + field.size > buf.byteLength) {
    throw new RangeError(`field at 0x${at.toString(16)} (+${field.size}) is past the end of a ${buf.byteLength}-byte buffer`);
  }
  return new DataView(buf.buffer, buf.byteOffset + at, field.size);
}

/** Reads a field as a bigint (any size). */
export function getFieldBig(buf: Uint8Array, field: Field, base = 0): bigint {
  const v = view(buf, field, base);
  switch (field.size) {
    case 1: return BigInt(v.getUint8(0));
    case 2: return BigInt(v.getUint16(0, true));
    case 4: return BigInt(v.getUint32(0, true));
    case 8: return v.getBigUint64(0, true);
  }
}

/** Reads a field as a number; a 64-bit value beyond 2^53 throws rather than losing bits. */
export function getField(buf: Uint8Array, field: Field, base = 0): number {
  const big = getFieldBig(buf, field, base);
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`field at 0x${(base + field.offset).toString(16)} holds 0x${big.toString(16)}, beyond 2^53`);
  }
  return Number(big);
}

/** Writes a non-negative integer that must fit the field's size. */
export function setField(buf: Uint8Array, field: Field, value: number | bigint, base = 0): void {
  const big = BigInt(value);
  if (big < 0n || big >= 1n << BigInt(field.size * 8)) {
    throw new RangeError(`value 0x${big.toString(16)} does not fit a ${field.size}-byte field at 0x${(base + field.offset).toString(16)}`);
  }
  const v = view(buf, field, base);
  switch (field.size) {
    case 1: v.setUint8(0, Number(big)); break;
    case 2: v.setUint16(0, Number(big), true); break;
    case 4: v.setUint32(0, Number(big), true); break;
    case 8: v.setBigUint64(0, big, true); break;
  }
}
