/**
 * Kernel loading: detect the image format, validate it, copy it into guest
 * memory and report how to enter it.
 *
 * Boot protocol choice (Firecracker's rule): an ELF vmlinux that carries the
 * Xen PVH note (XEN_ELFNOTE_PHYS32_ENTRY) is booted through PVH, entered in
 * 32-bit protected mode at pvhEntry with EBX = hvm_start_info; anything else
 * is entered at its 64-bit entry with RSI = zero page. `pvhEntry` is present
 * in the result exactly when PVH should be used, so callers need no second
 * rule; `preferPvh: false` forces the 64-bit entry. A bzImage never offers
 * PVH here: its note lives inside the compressed payload.
 */

import type { GuestMemory } from '../memory/guest_memory.js';
import { MMIO_GAP_START } from '../vmm/arch/x86_64/layout.js';
import { KernelImageError, looksLikeBzImage, parseBzImage, type BzImageInfo } from './bzimage.js';
import { isElf, parseElf, type ElfInfo } from './elf.js';

export { KernelImageError } from './bzimage.js';
export { Cmdline, CmdlineError } from './cmdline.js';

export interface KernelLoadResult {
  format: 'elf' | 'bzimage';
  /** 64-bit boot protocol entry point (guest physical). */
  entry64: number;
  /** PVH 32-bit entry point; present when the kernel should be booted via PVH. */
  pvhEntry?: number;
  /** bzImage only: setup header bytes to copy into the zero page at 0x1f1. */
  setupHeader?: Uint8Array;
  /** bzImage only: the kernel's initrd_addr_max (highest byte the initrd may occupy). */
  initrdAddrMax?: number;
  /** One past the highest byte the kernel occupies or needs while booting (bzImage: load + init_size). */
  kernelEnd: number;
}

export type ParsedKernel = { format: 'elf'; elf: ElfInfo } | { format: 'bzimage'; bzImage: BzImageInfo };

export interface LoadKernelOptions {
  /** Boot via PVH when the kernel supports it (default true, as Firecracker). */
  preferPvh?: boolean;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Detects the format and validates the image; pure (no guest memory). */
export function parseKernel(image: Uint8Array): ParsedKernel {
  if (isElf(image)) return { format: 'elf', elf: parseElf(image) };
  if (looksLikeBzImage(image)) return { format: 'bzimage', bzImage: parseBzImage(image) };
  throw new KernelImageError(
    `unsupported kernel image format (${image.length} bytes): neither an ELF vmlinux (no \\x7fELF magic) nor a bzImage (no 0xaa55 boot flag at 0x1fe or "HdrS" at 0x202)`,
  );
}

/** Throws unless [start, end) lies in one guest RAM region below the MMIO gap. */
function checkFits(mem: GuestMemory, start: number, end: number, what: string): void {
  if (end > MMIO_GAP_START || !mem.isValidRange(start, end - start)) {
    const low = Math.min(mem.regions[0] ? mem.regions[0].guestAddr + mem.regions[0].size : 0, MMIO_GAP_START);
    throw new KernelImageError(`${what} [${hex(start)}, ${hex(end)}) does not fit in guest RAM below the MMIO gap (low RAM ends at ${hex(low)})`);
  }
}

/** Parses the image, copies it into guest memory and returns how to enter it. */
export function loadKernel(image: Uint8Array, mem: GuestMemory, opts: LoadKernelOptions = {}): KernelLoadResult {
  const parsed = parseKernel(image);
  if (parsed.format === 'bzimage') {
    const bz = parsed.bzImage;
    // The kernel decompresses within init_size of its load address before it
    // has read the E820 map: all of it must be RAM.
    checkFits(mem, bz.loadAddr, bz.loadAddr + bz.initSize, 'bzImage load address + init_size');
    mem.write(bz.loadAddr, bz.kernel);
    return {
      format: 'bzimage',
      entry64: bz.entry64,
      setupHeader: bz.setupHeader,
      initrdAddrMax: bz.initrdAddrMax,
      kernelEnd: bz.loadAddr + bz.initSize,
    };
  }

  const elf = parsed.elf;
  elf.segments.forEach((s, i) => checkFits(mem, s.paddr, s.paddr + s.memSize, `ELF PT_LOAD segment ${i}`));
  for (const s of elf.segments) {
    mem.write(s.paddr, s.data);
    // Zero .bss explicitly: guest RAM is fresh today, but a reused VM must not see stale bytes.
    if (s.memSize > s.data.length) mem.fill(s.paddr + s.data.length, s.memSize - s.data.length, 0);
  }
  const usePvh = (opts.preferPvh ?? true) && elf.pvhEntry !== undefined;
  return usePvh
    ? { format: 'elf', entry64: elf.entry64, pvhEntry: elf.pvhEntry, kernelEnd: elf.kernelEnd }
    : { format: 'elf', entry64: elf.entry64, kernelEnd: elf.kernelEnd };
}
