/**
 * bzImage parsing for the Linux x86 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol").
 *
 * We never run the 16-bit setup code: the VMM enters the protected-mode part
 * at its 64-bit entry point (load address + 0x200) in long mode with RSI
 * pointing at a zero page that holds a copy of the image's setup header.
 * Parsing is pure: it validates the header and decides where the
 * protected-mode part goes; loader/index.ts checks that against guest RAM and
 * copies it there.
 */

import {
  BOOT_FLAG_MAGIC,
  ENTRY64_OFFSET,
  HDR,
  HDRS_MAGIC,
  JUMP_OPCODE,
  LOADFLAGS,
  PROTOCOL,
  SECTOR_SIZE,
  SETUP_HEADER_END_BASE,
  SETUP_HEADER_MAX_END,
  SETUP_HEADER_START,
  SETUP_SECTS_DEFAULT,
  SYSSIZE_UNIT,
  XLOADFLAGS,
  getField,
  setField,
  type Field,
} from '../generated/bootparam.js';
import { BZIMAGE_LOAD_ADDR, HIMEM_START, MMIO_GAP_START } from '../vmm/arch/x86_64/layout.js';

export interface BzImageInfo {
  /** Boot protocol version, (major << 8) | minor. */
  protocol: number;
  /** Guest physical address for the protected-mode part. */
  loadAddr: number;
  /** The 64-bit entry point: loadAddr + 0x200. */
  entry64: number;
  /** The protected-mode part (the file from (setup_sects + 1) * 512 on). */
  kernel: Uint8Array;
  /** Bytes the kernel needs from loadAddr before it reads its memory map: max(init_size, kernel.length). */
  initSize: number;
  /** Setup header bytes [0x1f1, 0x202 + byte at 0x201) for the zero page (code32_start set to loadAddr). */
  setupHeader: Uint8Array;
  /** Highest address the initrd may occupy (its last byte), from initrd_addr_max. */
  initrdAddrMax: number;
  /** Longest command line the kernel accepts, excluding the NUL (cmdline_size). */
  cmdlineMax: number;
  /** Raw xloadflags. */
  xloadflags: number;
}

export class KernelImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KernelImageError';
  }
}

const hex = (n: number): string => `0x${n.toString(16)}`;
const protoStr = (v: number): string => `${v >> 8}.${(v & 0xff).toString().padStart(2, '0')}`;

function fail(msg: string): never {
  throw new KernelImageError(`bzImage: ${msg}`);
}

/** Reads a header field, failing with a "truncated" message when the file ends first. */
function field(image: Uint8Array, f: Field, name: string): number {
  if (f.offset + f.size > image.length) {
    fail(`truncated: ${image.length} bytes, but setup header field ${name} is at ${hex(f.offset)}+${f.size}`);
  }
  return getField(image, f);
}

const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** True when the image carries the boot-sector or "HdrS" magic of a bzImage (for format detection). */
export function looksLikeBzImage(image: Uint8Array): boolean {
  const has = (f: Field, magic: number): boolean => f.offset + f.size <= image.length && getField(image, f) === magic;
  return has(HDR.boot_flag, BOOT_FLAG_MAGIC) || has(HDR.header, HDRS_MAGIC);
}

/**
 * Where the protected-mode part goes. Our choice, per boot.rst:
 * - relocatable kernel: BZIMAGE_LOAD_ADDR (16 MiB) rounded up to
 *   kernel_alignment. 16 MiB is the usual pref_address (CONFIG_PHYSICAL_START)
 *   and a multiple of every usual alignment, so the kernel runs where it is
 *   loaded (runtime_start = align_up(load, kernel_alignment) = load) and our
 *   layout, not the image, decides what lies below it;
 * - non-relocatable kernel: pref_address, because such a kernel
 *   "unconditionally moves itself to run at this address" anyway, and loading
 *   it there makes init_size's window the one the kernel really uses.
 */
function chooseLoadAddr(image: Uint8Array, protocol: number): number {
  const relocatable = field(image, HDR.relocatable_kernel, 'relocatable_kernel') !== 0;
  if (relocatable) {
    const align = field(image, HDR.kernel_alignment, 'kernel_alignment');
    if (!isPowerOfTwo(align)) fail(`kernel_alignment ${hex(align)} is not a power of two`);
    return alignUp(BZIMAGE_LOAD_ADDR, align);
  }
  const pref = protocol >= PROTOCOL.V2_10 ? field(image, HDR.pref_address, 'pref_address') : 0;
  if (pref < HIMEM_START || pref >= MMIO_GAP_START) {
    fail(`non-relocatable kernel with pref_address ${hex(pref)} outside [${hex(HIMEM_START)}, ${hex(MMIO_GAP_START)})`);
  }
  return pref;
}

/** Validates a bzImage and works out its placement; throws KernelImageError with the reason otherwise. */
export function parseBzImage(image: Uint8Array): BzImageInfo {
  if (image.length < HDR.header.offset) {
    fail(`truncated: ${image.length} bytes is shorter than the boot sector and setup header (at least ${hex(HDR.header.offset + 4)})`);
  }
  const bootFlag = field(image, HDR.boot_flag, 'boot_flag');
  if (bootFlag !== BOOT_FLAG_MAGIC) fail(`bad boot_flag ${hex(bootFlag)} at ${hex(HDR.boot_flag.offset)} (want ${hex(BOOT_FLAG_MAGIC)})`);
  const magic = field(image, HDR.header, 'header');
  if (magic !== HDRS_MAGIC) {
    fail(`no "HdrS" magic at ${hex(HDR.header.offset)} (found ${hex(magic)}): a pre-2.00 zImage/Image, not supported`);
  }
  const protocol = field(image, HDR.version, 'version');
  if (protocol < PROTOCOL.V2_06) {
    fail(`boot protocol ${protoStr(protocol)} is too old: 2.06 or newer is required (kernel 2.6.22+)`);
  }

  // The jump at 0x200 doubles as the header length: 0xEB, then a signed displacement from 0x202.
  const jumpOpcode = image[HDR.jump.offset]!;
  const headerLen = image[HDR.jump.offset + 1]!;
  if (jumpOpcode !== JUMP_OPCODE || headerLen >= 0x80) {
    fail(`setup header jump at ${hex(HDR.jump.offset)} is ${hex(jumpOpcode)} ${hex(headerLen)}, not a forward short jump giving the header length`);
  }
  const headerEnd = SETUP_HEADER_END_BASE + headerLen;
  // Every kernel with the 64-bit entry (2.12+) defines fields up to init_size, which we read.
  const needEnd = HDR.init_size.offset + HDR.init_size.size;
  if (headerEnd > SETUP_HEADER_MAX_END) fail(`setup header would end at ${hex(headerEnd)}, past its space in boot_params (${hex(SETUP_HEADER_MAX_END)})`);
  if (headerEnd > image.length) fail(`truncated: setup header ends at ${hex(headerEnd)} but the file has ${image.length} bytes`);

  const loadflags = field(image, HDR.loadflags, 'loadflags');
  if ((loadflags & LOADFLAGS.LOADED_HIGH) === 0) {
    fail('loadflags lacks LOADED_HIGH: a zImage loaded at 0x10000, not supported');
  }
  const xloadflags = protocol >= PROTOCOL.V2_12 ? field(image, HDR.xloadflags, 'xloadflags') : 0;
  if ((xloadflags & XLOADFLAGS.XLF_KERNEL_64) === 0) {
    fail(`no 64-bit entry point (xloadflags.XLF_KERNEL_64 unset, protocol ${protoStr(protocol)}): only 64-bit kernels with boot protocol 2.12+ can be booted`);
  }
  if (headerEnd < needEnd) {
    fail(`setup header is ${headerEnd - SETUP_HEADER_START} bytes (ends at ${hex(headerEnd)}), too short for protocol ${protoStr(protocol)} (init_size ends at ${hex(needEnd)})`);
  }

  const sects = field(image, HDR.setup_sects, 'setup_sects') || SETUP_SECTS_DEFAULT;
  const kernelOffset = (sects + 1) * SECTOR_SIZE;
  if (kernelOffset >= image.length) {
    fail(`truncated: setup_sects ${sects} puts the protected-mode part at ${hex(kernelOffset)}, but the file has ${image.length} bytes`);
  }
  const kernel = image.subarray(kernelOffset);
  // syssize (2.04+) is the protected-mode size in paragraphs; a file shorter than that was cut off.
  const sysBytes = field(image, HDR.syssize, 'syssize') * SYSSIZE_UNIT;
  if (sysBytes > kernel.length) {
    fail(`truncated: syssize says the protected-mode part is ${sysBytes} bytes, the file holds ${kernel.length}`);
  }
  if (kernel.length <= ENTRY64_OFFSET) {
    fail(`protected-mode part is only ${kernel.length} bytes, no room for the 64-bit entry at +${hex(ENTRY64_OFFSET)}`);
  }

  const loadAddr = chooseLoadAddr(image, protocol);
  const initSize = Math.max(field(image, HDR.init_size, 'init_size'), kernel.length);

  // boot.rst: a loader that puts a relocatable kernel at a nonstandard
  // address sets code32_start to it. The 64-bit entry does not read it, but
  // anything that does then sees the truth.
  const setupHeader = image.slice(SETUP_HEADER_START, headerEnd);
  setField(setupHeader, HDR.code32_start, loadAddr, -SETUP_HEADER_START);

  return {
    protocol,
    loadAddr,
    entry64: loadAddr + ENTRY64_OFFSET,
    kernel,
    initSize,
    setupHeader,
    initrdAddrMax: field(image, HDR.initrd_addr_max, 'initrd_addr_max'),
    cmdlineMax: field(image, HDR.cmdline_size, 'cmdline_size'),
    xloadflags,
  };
}
