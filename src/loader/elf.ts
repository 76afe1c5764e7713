/**
 * ELF64 x86_64 vmlinux parsing: the uncompressed kernel Firecracker boots.
 *
 * Segments are placed by physical address (p_paddr): vmlinux links its
 * virtual addresses in the kernel's high mapping, while p_paddr (and e_entry,
 * linked as phys_startup_64) are where the code must sit in guest RAM for the
 * 64-bit boot protocol. Every offset and size read from the file is checked
 * before use, so a truncated or hostile file yields a KernelImageError, never
 * an out-of-range read or a write outside guest RAM.
 */

import {
  EI_CLASS,
  EI_DATA,
  EI_VERSION,
  ELFCLASS64,
  ELFDATA2LSB,
  ELF_MAGIC,
  ELF64_EHDR,
  ELF64_EHDR_SIZE,
  ELF64_PHDR,
  ELF64_PHDR_SIZE,
  ELF_NHDR,
  ELF_NHDR_SIZE,
  EM_X86_64,
  ET_EXEC,
  EV_CURRENT,
  PT_LOAD,
  PT_NOTE,
  XEN_ELFNOTE_NAME,
  XEN_ELFNOTE_PHYS32_ENTRY,
  getField,
  getFieldBig,
  type Field,
} from '../generated/bootparam.js';
import { HIMEM_START, MMIO_GAP_END, MMIO_GAP_START } from '../vmm/arch/x86_64/layout.js';
import { KernelImageError } from './bzimage.js';

export interface ElfSegment {
  /** Guest physical address (p_paddr). */
  paddr: number;
  /** Bytes copied from the file (p_filesz). */
  data: Uint8Array;
  /** Bytes occupied in memory (p_memsz ≥ p_filesz; the rest is zero-filled .bss). */
  memSize: number;
}

export interface ElfInfo {
  /** e_entry: the 64-bit boot protocol entry (startup_64), physical. */
  entry64: number;
  /** XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit PVH entry, when the kernel has one. */
  pvhEntry?: number;
  segments: ElfSegment[];
  /** One past the highest byte any PT_LOAD segment occupies. */
  kernelEnd: number;
}

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

function fail(msg: string): never {
  throw new KernelImageError(`ELF: ${msg}`);
}

/** Reads a field of a structure at `base`, failing clearly if the file ends first or a value exceeds 2^53. */
function rd(image: Uint8Array, f: Field, base: number, what: string): number {
  if (base + f.offset + f.size > image.length) {
    fail(`truncated: ${what} at ${hex(base + f.offset)} is past the end of the ${image.length}-byte file`);
  }
  const v = getFieldBig(image, f, base);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} is ${hex(v)}, an implausible value for a kernel image`);
  return Number(v);
}

export function isElf(image: Uint8Array): boolean {
  return image.length >= ELF_MAGIC.length && ELF_MAGIC.every((b, i) => image[i] === b);
}

function checkIdent(image: Uint8Array): void {
  if (!isElf(image)) fail('no ELF magic');
  if (image.length < ELF64_EHDR_SIZE) fail(`truncated: ${image.length} bytes, the ELF64 header needs ${ELF64_EHDR_SIZE}`);
  if (image[EI_CLASS] !== ELFCLASS64) fail(`not ELF64 (EI_CLASS ${image[EI_CLASS]}); a 64-bit vmlinux is required`);
  if (image[EI_DATA] !== ELFDATA2LSB) fail(`not little-endian (EI_DATA ${image[EI_DATA]})`);
  if (image[EI_VERSION] !== EV_CURRENT) fail(`unknown ELF version ${image[EI_VERSION]}`);
  const type = getField(image, ELF64_EHDR.e_type);
  if (type !== ET_EXEC) fail(`e_type ${type} is not ET_EXEC (${ET_EXEC}); vmlinux is an executable`);
  const machine = getField(image, ELF64_EHDR.e_machine);
  if (machine !== EM_X86_64) fail(`e_machine ${machine} is not x86_64 (${EM_X86_64})`);
}

/** The PT_LOAD segment checks that need no guest memory: file bounds, low memory, the MMIO gap. */
function checkLoadSegment(image: Uint8Array, i: number, off: number, filesz: number, paddr: number, memsz: number): void {
  const where = `PT_LOAD segment ${i} [${hex(paddr)}, ${hex(paddr + memsz)})`;
  if (off + filesz > image.length) fail(`truncated: ${where} needs file bytes [${hex(off)}, ${hex(off + filesz)}) but the file has ${image.length}`);
  if (filesz > memsz) fail(`${where}: p_filesz ${hex(filesz)} exceeds p_memsz ${hex(memsz)}`);
  if (paddr < HIMEM_START) fail(`${where} starts below ${hex(HIMEM_START)}, where the VMM keeps boot structures`);
  if (paddr < MMIO_GAP_END && paddr + memsz > MMIO_GAP_START) {
    fail(`${where} overlaps the MMIO gap [${hex(MMIO_GAP_START)}, ${hex(MMIO_GAP_END)})`);
  }
}

/** Walks a PT_NOTE segment's notes; returns the PVH entry from a "Xen" note of type 18, if any. */
function scanNotes(image: Uint8Array, i: number, off: number, size: number, align: number): number | undefined {
  // Notes are 4-byte aligned in ELF64 objects produced for Linux; p_align 8 means 8-byte padding.
  const pad = align === 8 ? 8 : 4;
  const end = off + size;
  if (end > image.length) fail(`truncated: PT_NOTE segment ${i} needs file bytes up to ${hex(end)} but the file has ${image.length}`);
  let at = off;
  while (at + ELF_NHDR_SIZE <= end) {
    const namesz = rd(image, ELF_NHDR.n_namesz, at, 'note n_namesz');
    const descsz = rd(image, ELF_NHDR.n_descsz, at, 'note n_descsz');
    const type = rd(image, ELF_NHDR.n_type, at, 'note n_type');
    const nameAt = at + ELF_NHDR_SIZE;
    const descAt = nameAt + Math.ceil(namesz / pad) * pad;
    const next = descAt + Math.ceil(descsz / pad) * pad;
    if (descAt + descsz > end) fail(`malformed note at ${hex(at)} in PT_NOTE segment ${i}: name/desc run past the segment end ${hex(end)}`);
    const name = new TextDecoder().decode(image.subarray(nameAt, nameAt + namesz)).replace(/\0+$/, '');
    if (type === XEN_ELFNOTE_PHYS32_ENTRY && name === XEN_ELFNOTE_NAME) {
      // Linux emits the entry as a pointer-sized value (8 bytes on x86_64); Xen reads 4 or 8.
      if (descsz !== 4 && descsz !== 8) fail(`Xen PHYS32_ENTRY note has a ${descsz}-byte value (want 4 or 8)`);
      const dv = new DataView(image.buffer, image.byteOffset + descAt, descsz);
      const entry = descsz === 4 ? BigInt(dv.getUint32(0, true)) : dv.getBigUint64(0, true);
      if (entry >= 1n << 32n) fail(`Xen PHYS32_ENTRY ${hex(entry)} is not a 32-bit address`);
      return Number(entry);
    }
    at = next;
  }
  return undefined;
}

/** Validates an ELF64 x86_64 vmlinux and lists what to load; throws KernelImageError otherwise. */
export function parseElf(image: Uint8Array): ElfInfo {
  checkIdent(image);
  const entry64 = rd(image, ELF64_EHDR.e_entry, 0, 'e_entry');
  const phoff = rd(image, ELF64_EHDR.e_phoff, 0, 'e_phoff');
  const phentsize = rd(image, ELF64_EHDR.e_phentsize, 0, 'e_phentsize');
  const phnum = rd(image, ELF64_EHDR.e_phnum, 0, 'e_phnum');
  if (phnum === 0) fail('no program headers');
  if (phentsize < ELF64_PHDR_SIZE) fail(`e_phentsize ${phentsize} is smaller than an Elf64_Phdr (${ELF64_PHDR_SIZE})`);
  if (phoff + phnum * phentsize > image.length) {
    fail(`truncated: ${phnum} program headers at ${hex(phoff)} run past the end of the ${image.length}-byte file`);
  }

  const segments: ElfSegment[] = [];
  let pvhEntry: number | undefined;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    const type = rd(image, ELF64_PHDR.p_type, ph, 'p_type');
    const off = rd(image, ELF64_PHDR.p_offset, ph, `segment ${i} p_offset`);
    const filesz = rd(image, ELF64_PHDR.p_filesz, ph, `segment ${i} p_filesz`);
    if (type === PT_NOTE) {
      pvhEntry ??= scanNotes(image, i, off, filesz, rd(image, ELF64_PHDR.p_align, ph, `segment ${i} p_align`));
      continue;
    }
    if (type !== PT_LOAD) continue;
    const paddr = rd(image, ELF64_PHDR.p_paddr, ph, `segment ${i} p_paddr`);
    const memsz = rd(image, ELF64_PHDR.p_memsz, ph, `segment ${i} p_memsz`);
    if (memsz === 0) continue;
    checkLoadSegment(image, i, off, filesz, paddr, memsz);
    segments.push({ paddr, data: image.subarray(off, off + filesz), memSize: memsz });
  }
  if (segments.length === 0) fail('no PT_LOAD segments with memory to load');

  const sorted = [...segments].sort((a, b) => a.paddr - b.paddr);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    if (prev.paddr + prev.memSize > sorted[i]!.paddr) {
      fail(`PT_LOAD segments at ${hex(prev.paddr)} and ${hex(sorted[i]!.paddr)} overlap`);
    }
  }
  const inSegment = (a: number): boolean => segments.some((s) => a >= s.paddr && a < s.paddr + s.memSize);
  if (!inSegment(entry64)) fail(`e_entry ${hex(entry64)} is not inside any PT_LOAD segment`);
  if (pvhEntry !== undefined && !inSegment(pvhEntry)) fail(`PVH entry ${hex(pvhEntry)} is not inside any PT_LOAD segment`);

  const kernelEnd = Math.max(...segments.map((s) => s.paddr + s.memSize));
  return pvhEntry === undefined ? { entry64, segments, kernelEnd } : { entry64, pvhEntry, segments, kernelEnd };
}
