/**
 * Boot information handed to the guest kernel: the E820 memory map, initrd
 * placement, the Linux zero page (struct boot_params) and Xen's PVH
 * hvm_start_info. Builders return bytes; the caller writes them to guest
 * memory at ZERO_PAGE_START / PVH_INFO_START / PVH_MEMMAP_START.
 */

import {
  BOOT_FLAG_MAGIC,
  BOOT_PARAMS_SIZE,
  BP,
  BP_E820_TABLE_OFFSET,
  E820_ENTRY,
  E820_ENTRY_SIZE,
  E820_MAX_ENTRIES_ZEROPAGE,
  E820_TYPE,
  HDR,
  HDRS_MAGIC,
  HVM_MEMMAP_ENTRY,
  HVM_MEMMAP_ENTRY_SIZE,
  HVM_MODLIST_ENTRY,
  HVM_MODLIST_ENTRY_SIZE,
  HVM_START_INFO,
  HVM_START_INFO_SIZE,
  HVM_START_INFO_VERSION,
  LOADER_TYPE_UNDEFINED,
  LOADFLAGS,
  PROTOCOL,
  SETUP_HEADER_MAX_END,
  SETUP_HEADER_START,
  XEN_HVM_START_MAGIC_VALUE,
  getField,
  setField,
} from '../../../generated/bootparam.js';
import {
  EBDA_START,
  HIMEM_START,
  MMIO_GAP_START,
  PVH_INFO_START,
  PVH_MEMMAP_START,
  ZERO_PAGE_START,
  ramRegions,
} from './layout.js';

export interface E820Entry {
  /** Guest physical start, bytes. */
  addr: number;
  /** Length, bytes. */
  size: number;
  /** E820_TYPE.* */
  type: number;
}

export interface InitrdPlacement {
  addr: number;
  size: number;
}

/** initrd alignment: the boot protocol asks for none, Firecracker page-aligns (4 KiB). */
export const INITRD_ALIGN = 4096;

/**
 * heap_end_ptr for the zero page: boot.rst's sample layout ends the real-mode
 * heap at 0xe000, and the field holds that minus 0x200. Only the 16-bit setup
 * code uses the heap and we never run it, but CAN_USE_HEAP promises the value
 * is valid, so it is a protocol-conforming one.
 */
export const HEAP_END_PTR = 0xe000 - 0x200;

/**
 * PVH module list: right after the 56-byte hvm_start_info, 64-byte aligned
 * (Firecracker: MODLIST_START = 0x6040). It must end before PVH_MEMMAP_START.
 */
export const PVH_MODLIST_START = PVH_INFO_START + 0x40;

const hex = (n: number): string => `0x${n.toString(16)}`;
const MiB = 1024 * 1024;

/**
 * The guest's E820 map, Firecracker-style:
 * - [0, EBDA_START) RAM: conventional memory;
 * - [HIMEM_START, min(end, MMIO gap)) RAM;
 * - [4 GiB, …) RAM for whatever does not fit below the gap.
 *
 * [EBDA_START, 1 MiB) is deliberately absent (neither RAM nor reserved): it
 * holds the MP table and ACPI tables (RSDP at 0xe0000) plus the legacy
 * VGA/BIOS window. Not listing it as RAM is what stops the kernel from
 * allocating over those tables; the kernel finds them through the RSDP (or
 * its 0xe0000–0xfffff scan), not through the E820 map, and already treats
 * 640 KiB–1 MiB as off limits. The MMIO gap is likewise absent.
 */
export function e820Map(memSize: number): E820Entry[] {
  if (!Number.isSafeInteger(memSize) || memSize <= HIMEM_START) {
    throw new RangeError(`guest memory size ${memSize} must be an integer above ${HIMEM_START} bytes (1 MiB)`);
  }
  const map: E820Entry[] = [{ addr: 0, size: EBDA_START, type: E820_TYPE.RAM }];
  for (const r of ramRegions(memSize)) {
    const start = Math.max(r.guestAddr, HIMEM_START);
    const end = r.guestAddr + r.size;
    if (end > start) map.push({ addr: start, size: end - start, type: E820_TYPE.RAM });
  }
  return map;
}

/**
 * Where the initrd goes: page-aligned, as high as possible in low RAM (below
 * the MMIO gap and below the kernel's initrd_addr_max), Firecracker's rule.
 * Keeping it high leaves the most room for the kernel to decompress and run
 * below it.
 *
 * @param initrdAddrMax the kernel's initrd_addr_max: the address of the highest byte the initrd may occupy
 * @param lowestAddr the initrd may not start below this (pass the kernel's end to keep them apart)
 */
export function initrdAddress(memSize: number, initrdSize: number, initrdAddrMax?: number, lowestAddr: number = HIMEM_START): number {
  if (!Number.isSafeInteger(initrdSize) || initrdSize <= 0) throw new RangeError(`initrd size must be a positive integer, got ${initrdSize}`);
  const lowEnd = Math.min(memSize, MMIO_GAP_START);
  const top = initrdAddrMax === undefined ? lowEnd : Math.min(lowEnd, initrdAddrMax + 1);
  const addr = Math.floor((top - initrdSize) / INITRD_ALIGN) * INITRD_ALIGN;
  if (initrdSize > top || addr < lowestAddr) {
    const why = initrdAddrMax !== undefined && initrdAddrMax + 1 < lowEnd ? ` (kernel initrd_addr_max ${hex(initrdAddrMax)})` : '';
    throw new RangeError(
      `initrd of ${initrdSize} bytes (${(initrdSize / MiB).toFixed(1)} MiB) does not fit in low guest RAM between ${hex(lowestAddr)} and ${hex(top)}${why}`,
    );
  }
  return addr;
}

export interface ZeroPageOptions {
  /** The bzImage's setup header (bytes from 0x1f1); absent for an ELF vmlinux. */
  setupHeader?: Uint8Array;
  /** Guest physical address of the NUL-terminated command line. */
  cmdlineAddr: number;
  /** Command line length in bytes including the NUL (Cmdline.toBytes().length). */
  cmdlineSize: number;
  initrd?: InitrdPlacement;
  e820: E820Entry[];
  /** Guest physical address of the ACPI RSDP. */
  rsdpAddr?: number;
}

const lo32 = (n: number): number => n % 2 ** 32;
const hi32 = (n: number): number => Math.floor(n / 2 ** 32);

function checkAddr(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} ${n} is not a valid guest address or size`);
}

/**
 * Builds struct boot_params for the 64-bit boot protocol (RSI points at it).
 * Starts from zeroes (so the sentinel at 0x1ef stays 0 and no stale field
 * survives), copies the setup header, then fills what the loader owns.
 */
export function buildZeroPage(opts: ZeroPageOptions): Uint8Array {
  const zp = new Uint8Array(BOOT_PARAMS_SIZE);
  let version: number;
  let cmdlineMax: number | undefined;
  if (opts.setupHeader) {
    const h = opts.setupHeader;
    if (SETUP_HEADER_START + h.length > SETUP_HEADER_MAX_END) {
      throw new RangeError(`setup header of ${h.length} bytes overflows its space in boot_params (${SETUP_HEADER_MAX_END - SETUP_HEADER_START} bytes)`);
    }
    zp.set(h, SETUP_HEADER_START);
    if (SETUP_HEADER_START + h.length < HDR.version.offset + HDR.version.size || getField(zp, HDR.header) !== HDRS_MAGIC) {
      throw new RangeError('setup header lacks the "HdrS" magic and protocol version');
    }
    version = getField(zp, HDR.version);
    // cmdline_size (2.06+) is the kernel's limit, excluding the NUL; before 2.06 it was 255.
    cmdlineMax = version >= PROTOCOL.V2_06 ? getField(zp, HDR.cmdline_size) : 255;
  } else {
    // ELF vmlinux: no header in the image. Write the magic values the kernel
    // checks, as Firecracker does; any kernel with a 64-bit ELF entry
    // understands every field we fill, so treat it as current.
    setField(zp, HDR.boot_flag, BOOT_FLAG_MAGIC);
    setField(zp, HDR.header, HDRS_MAGIC);
    version = Number.POSITIVE_INFINITY;
  }

  checkAddr(opts.cmdlineAddr, 'cmdline address');
  if (!Number.isSafeInteger(opts.cmdlineSize) || opts.cmdlineSize < 1) {
    throw new RangeError(`cmdlineSize ${opts.cmdlineSize} must count the NUL (≥ 1)`);
  }
  const cmdlineLen = opts.cmdlineSize - 1;
  if (cmdlineMax !== undefined && cmdlineLen > cmdlineMax) {
    throw new RangeError(`command line of ${cmdlineLen} characters exceeds the kernel's cmdline_size of ${cmdlineMax}`);
  }

  setField(zp, HDR.type_of_loader, LOADER_TYPE_UNDEFINED);
  setField(zp, HDR.loadflags, getField(zp, HDR.loadflags) | LOADFLAGS.LOADED_HIGH | LOADFLAGS.CAN_USE_HEAP);
  setField(zp, HDR.heap_end_ptr, HEAP_END_PTR);
  setField(zp, HDR.cmd_line_ptr, lo32(opts.cmdlineAddr));
  setField(zp, BP.ext_cmd_line_ptr, hi32(opts.cmdlineAddr));
  // A "read" field, but the kernel never reads it back; Firecracker fills in
  // the actual length. We write the length without the NUL, the field's unit.
  if (version >= PROTOCOL.V2_06) setField(zp, HDR.cmdline_size, cmdlineLen);

  if (opts.initrd) {
    checkAddr(opts.initrd.addr, 'initrd address');
    checkAddr(opts.initrd.size, 'initrd size');
    setField(zp, HDR.ramdisk_image, lo32(opts.initrd.addr));
    setField(zp, BP.ext_ramdisk_image, hi32(opts.initrd.addr));
    setField(zp, HDR.ramdisk_size, lo32(opts.initrd.size));
    setField(zp, BP.ext_ramdisk_size, hi32(opts.initrd.size));
  }

  writeE820(zp, opts.e820);

  // acpi_rsdp_addr is a boot_params field (zero-page.rst, 0x070). It came
  // with the change that bumped the protocol to 2.14 (boot.rst calls 2.14
  // "burnt": the first version put the address in the setup header and was
  // reverted in favour of this field), so kernels reporting < 2.14 have
  // padding here. They find the RSDP by scanning 0xe0000–0xfffff, where the
  // VMM puts it anyway.
  if (opts.rsdpAddr !== undefined && version >= PROTOCOL.V2_14) {
    checkAddr(opts.rsdpAddr, 'RSDP address');
    setField(zp, BP.acpi_rsdp_addr, opts.rsdpAddr);
  }
  return zp;
}

function writeE820(zp: Uint8Array, e820: E820Entry[]): void {
  if (e820.length > E820_MAX_ENTRIES_ZEROPAGE) {
    throw new RangeError(`${e820.length} E820 entries exceed the zero page's ${E820_MAX_ENTRIES_ZEROPAGE}`);
  }
  setField(zp, BP.e820_entries, e820.length);
  e820.forEach((e, i) => {
    const base = BP_E820_TABLE_OFFSET + i * E820_ENTRY_SIZE;
    checkAddr(e.addr, `E820 entry ${i} address`);
    checkAddr(e.size, `E820 entry ${i} size`);
    setField(zp, E820_ENTRY.addr, e.addr, base);
    setField(zp, E820_ENTRY.size, e.size, base);
    setField(zp, E820_ENTRY.type, e.type, base);
  });
}

export interface PvhStartInfoOptions {
  cmdlineAddr: number;
  initrd?: InitrdPlacement;
  e820: E820Entry[];
  /** Guest physical address of the ACPI RSDP; 0 means none (hvm_start_info: 0 = not present). */
  rsdpAddr: number;
}

export interface PvhStartInfo {
  /** struct hvm_start_info (version 1), to write at startInfoAddr; its address goes in EBX. */
  startInfo: Uint8Array;
  startInfoAddr: number;
  /** hvm_memmap_table_entry[], to write at memmapAddr. */
  memmap: Uint8Array;
  memmapAddr: number;
  /** hvm_modlist_entry[1] describing the initrd, to write at modlistAddr. */
  modlist?: Uint8Array;
  modlistAddr?: number;
}

/** Most memmap entries that fit between PVH_MEMMAP_START and the zero page that follows it. */
export const PVH_MEMMAP_MAX_ENTRIES = Math.floor((ZERO_PAGE_START - PVH_MEMMAP_START) / HVM_MEMMAP_ENTRY_SIZE);

/** Builds Xen's PVH start-of-day structures (hvm_start_info v1); memmap types are E820 types. */
export function buildPvhStartInfo(opts: PvhStartInfoOptions): PvhStartInfo {
  checkAddr(opts.cmdlineAddr, 'cmdline address');
  checkAddr(opts.rsdpAddr, 'RSDP address');
  if (opts.e820.length > PVH_MEMMAP_MAX_ENTRIES) {
    throw new RangeError(`${opts.e820.length} memory map entries exceed the ${PVH_MEMMAP_MAX_ENTRIES} that fit at ${hex(PVH_MEMMAP_START)}`);
  }
  const memmap = new Uint8Array(opts.e820.length * HVM_MEMMAP_ENTRY_SIZE);
  opts.e820.forEach((e, i) => {
    const base = i * HVM_MEMMAP_ENTRY_SIZE;
    checkAddr(e.addr, `memmap entry ${i} address`);
    checkAddr(e.size, `memmap entry ${i} size`);
    setField(memmap, HVM_MEMMAP_ENTRY.addr, e.addr, base);
    setField(memmap, HVM_MEMMAP_ENTRY.size, e.size, base);
    setField(memmap, HVM_MEMMAP_ENTRY.type, e.type, base);
  });

  const si = new Uint8Array(HVM_START_INFO_SIZE);
  setField(si, HVM_START_INFO.magic, XEN_HVM_START_MAGIC_VALUE);
  setField(si, HVM_START_INFO.version, HVM_START_INFO_VERSION);
  setField(si, HVM_START_INFO.cmdline_paddr, opts.cmdlineAddr);
  setField(si, HVM_START_INFO.rsdp_paddr, opts.rsdpAddr);
  setField(si, HVM_START_INFO.memmap_paddr, PVH_MEMMAP_START);
  setField(si, HVM_START_INFO.memmap_entries, opts.e820.length);

  const out: PvhStartInfo = { startInfo: si, startInfoAddr: PVH_INFO_START, memmap, memmapAddr: PVH_MEMMAP_START };
  if (opts.initrd) {
    checkAddr(opts.initrd.addr, 'initrd address');
    checkAddr(opts.initrd.size, 'initrd size');
    const modlist = new Uint8Array(HVM_MODLIST_ENTRY_SIZE);
    setField(modlist, HVM_MODLIST_ENTRY.paddr, opts.initrd.addr);
    setField(modlist, HVM_MODLIST_ENTRY.size, opts.initrd.size);
    setField(si, HVM_START_INFO.nr_modules, 1);
    setField(si, HVM_START_INFO.modlist_paddr, PVH_MODLIST_START);
    out.modlist = modlist;
    out.modlistAddr = PVH_MODLIST_START;
  }
  return out;
}
