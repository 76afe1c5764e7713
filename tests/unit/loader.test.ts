/**
 * Kernel loaders and boot parameters. Images are synthesized here; offsets in
 * assertions are written as literals from boot.rst / zero-page.rst /
 * start_info.h so that a wrong constant table cannot hide behind itself.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { GuestMemory } from '../../src/memory/guest_memory.js';
import { ramRegions } from '../../src/vmm/arch/x86_64/layout.js';
import { loadKernel, parseKernel, KernelImageError } from '../../src/loader/index.js';
import { parseBzImage } from '../../src/loader/bzimage.js';
import { Cmdline, CmdlineError } from '../../src/loader/cmdline.js';
import { buildPvhStartInfo, buildZeroPage, e820Map, initrdAddress } from '../../src/vmm/arch/x86_64/boot_params.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

// --------------------------------------------------------------------------- helpers

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
const u8 = (b: Uint8Array, o: number): number => b[o]!;
const u16 = (b: Uint8Array, o: number): number => dv(b).getUint16(o, true);
const u32 = (b: Uint8Array, o: number): number => dv(b).getUint32(o, true);
const u64 = (b: Uint8Array, o: number): number => Number(dv(b).getBigUint64(o, true));

interface BzOpts {
  version?: number;
  setupSects?: number;
  loadflags?: number;
  xloadflags?: number;
  relocatable?: boolean;
  kernelAlignment?: number;
  prefAddress?: number;
  initSize?: number;
  pmSize?: number;
  headerLenByte?: number;
  syssizeParas?: number;
}

/** A minimal bzImage: boot sector + setup sectors with a 2.15 header, then a protected-mode part of marker bytes. */
function makeBzImage(o: BzOpts = {}): Uint8Array {
  const sects = o.setupSects ?? 4;
  const realSects = sects === 0 ? 4 : sects;
  const pmSize = o.pmSize ?? 8 * KiB;
  const img = new Uint8Array((realSects + 1) * 512 + pmSize);
  const v = dv(img);
  img[0x1f1] = sects;
  v.setUint32(0x1f4, o.syssizeParas ?? Math.ceil(pmSize / 16), true);
  v.setUint16(0x1fe, 0xaa55, true);
  img[0x200] = 0xeb;
  img[0x201] = o.headerLenByte ?? 0x6a; // header ends at 0x202 + 0x6a = 0x26c (through kernel_info_offset)
  v.setUint32(0x202, 0x53726448, true);
  v.setUint16(0x206, o.version ?? 0x020f, true);
  img[0x211] = o.loadflags ?? 0x01;
  v.setUint32(0x214, 0x100000, true); // code32_start default
  v.setUint32(0x22c, 0x7fffffff, true); // initrd_addr_max
  v.setUint32(0x230, o.kernelAlignment ?? 0x200000, true);
  img[0x234] = o.relocatable === false ? 0 : 1;
  img[0x235] = 21;
  v.setUint16(0x236, o.xloadflags ?? 0x03, true); // XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G
  v.setUint32(0x238, 2047, true); // cmdline_size
  v.setBigUint64(0x258, BigInt(o.prefAddress ?? 0x1000000), true);
  v.setUint32(0x260, o.initSize ?? 4 * MiB, true);
  const pm = img.subarray((realSects + 1) * 512);
  for (let i = 0; i < pm.length; i++) pm[i] = (i * 7 + 3) & 0xff;
  return img;
}

interface Seg { paddr: number; data: Uint8Array; memsz?: number; offset?: number }
interface Note { name: string; type: number; desc: Uint8Array }

/** A minimal ELF64 x86_64 executable: header, program headers, optional PT_NOTE, segment bytes. */
function makeElf(segs: Seg[], entry: number, note?: Note, tweak?: (b: Uint8Array) => void): Uint8Array {
  const phnum = segs.length + (note ? 1 : 0);
  let off = 64 + phnum * 56;
  const noteBytes = note ? encodeNote(note) : new Uint8Array(0);
  const noteOff = off;
  off += noteBytes.length;
  const offsets = segs.map((s) => {
    const o = s.offset ?? off;
    off = Math.max(off, o + s.data.length);
    return o;
  });
  const img = new Uint8Array(off);
  const v = dv(img);
  img.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  v.setUint16(0x10, 2, true); // ET_EXEC
  v.setUint16(0x12, 62, true); // EM_X86_64
  v.setUint32(0x14, 1, true);
  v.setBigUint64(0x18, BigInt(entry), true);
  v.setBigUint64(0x20, 64n, true);
  v.setUint16(0x34, 64, true);
  v.setUint16(0x36, 56, true);
  v.setUint16(0x38, phnum, true);
  let ph = 64;
  if (note) {
    v.setUint32(ph, 4, true); // PT_NOTE
    v.setBigUint64(ph + 8, BigInt(noteOff), true);
    v.setBigUint64(ph + 0x20, BigInt(noteBytes.length), true);
    v.setBigUint64(ph + 0x28, BigInt(noteBytes.length), true);
    v.setBigUint64(ph + 0x30, 4n, true);
    img.set(noteBytes, noteOff);
    ph += 56;
  }
  segs.forEach((s, i) => {
    v.setUint32(ph, 1, true); // PT_LOAD
    v.setUint32(ph + 4, 5, true);
    v.setBigUint64(ph + 8, BigInt(offsets[i]!), true);
    v.setBigUint64(ph + 0x10, BigInt(s.paddr) + 0xffffffff80000000n - 0x1000000n, true); // vaddr in the high mapping
    v.setBigUint64(ph + 0x18, BigInt(s.paddr), true);
    v.setBigUint64(ph + 0x20, BigInt(s.data.length), true);
    v.setBigUint64(ph + 0x28, BigInt(s.memsz ?? s.data.length), true);
    v.setBigUint64(ph + 0x30, 0x200000n, true);
    if (offsets[i]! + s.data.length <= img.length) img.set(s.data, offsets[i]!);
    ph += 56;
  });
  tweak?.(img);
  return img;
}

function encodeNote(n: Note): Uint8Array {
  const name = new TextEncoder().encode(n.name + '\0');
  const pad = (x: number): number => Math.ceil(x / 4) * 4;
  const out = new Uint8Array(12 + pad(name.length) + pad(n.desc.length));
  const v = dv(out);
  v.setUint32(0, name.length, true);
  v.setUint32(4, n.desc.length, true);
  v.setUint32(8, n.type, true);
  out.set(name, 12);
  out.set(n.desc, 12 + pad(name.length));
  return out;
}

function le(value: number, bytes: 4 | 8): Uint8Array {
  const b = new Uint8Array(bytes);
  if (bytes === 4) dv(b).setUint32(0, value, true);
  else dv(b).setBigUint64(0, BigInt(value), true);
  return b;
}

const fill = (n: number, byte: number): Uint8Array => new Uint8Array(n).fill(byte);
const mem64M = (): GuestMemory => GuestMemory.forTest(ramRegions(64 * MiB));

function throwsKernel(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof KernelImageError, `expected KernelImageError, got ${String(e)}`);
    assert.match(e.message, re);
    return true;
  });
}

// --------------------------------------------------------------------------- bzImage

test('bzImage: parses header, loads at 16 MiB, 64-bit entry at +0x200', () => {
  const img = makeBzImage();
  const mem = mem64M();
  const r = loadKernel(img, mem);
  assert.equal(r.format, 'bzimage');
  assert.equal(r.entry64, 16 * MiB + 0x200);
  assert.equal(r.pvhEntry, undefined);
  assert.equal(r.kernelEnd, 16 * MiB + 4 * MiB); // load + init_size
  assert.equal(r.initrdAddrMax, 0x7fffffff);
  // Protected-mode part starts at (4 + 1) * 512 in the file.
  assert.deepEqual(mem.read(16 * MiB, 64), img.slice(5 * 512, 5 * 512 + 64));
  assert.deepEqual(mem.read(16 * MiB + 8 * KiB - 16, 16), img.slice(img.length - 16));
  // Setup header: bytes 0x1f1 .. 0x202 + 0x6a, with code32_start set to the load address.
  const h = r.setupHeader!;
  assert.equal(h.length, 0x26c - 0x1f1);
  assert.equal(u16(h, 0x1fe - 0x1f1), 0xaa55);
  assert.equal(u32(h, 0x202 - 0x1f1), 0x53726448);
  assert.equal(u32(h, 0x214 - 0x1f1), 16 * MiB);
});

test('bzImage: setup_sects 0 means 4', () => {
  const img = makeBzImage({ setupSects: 0 });
  const bz = parseBzImage(img);
  assert.equal(bz.kernel.byteOffset - img.byteOffset, 5 * 512);
  assert.equal(bz.kernel.length, 8 * KiB);
});

test('bzImage: load address follows kernel_alignment and pref_address', () => {
  assert.equal(parseBzImage(makeBzImage({ kernelAlignment: 32 * MiB })).loadAddr, 32 * MiB);
  assert.equal(parseBzImage(makeBzImage({ kernelAlignment: 2 * MiB })).loadAddr, 16 * MiB);
  const fixed = parseBzImage(makeBzImage({ relocatable: false, prefAddress: 0x2000000 }));
  assert.equal(fixed.loadAddr, 0x2000000);
  assert.equal(fixed.entry64, 0x2000200);
  assert.throws(() => parseBzImage(makeBzImage({ kernelAlignment: 0x300000 })), /kernel_alignment 0x300000 is not a power of two/);
  assert.throws(() => parseBzImage(makeBzImage({ relocatable: false, prefAddress: 0x1000 })), /pref_address 0x1000/);
});

test('bzImage: malformed or unsupported headers give clear errors', () => {
  const badFlag = makeBzImage();
  badFlag[0x1fe] = 0;
  throwsKernel(() => parseBzImage(badFlag), /bad boot_flag/);

  const noHdrS = makeBzImage();
  noHdrS[0x202] = 0x41;
  throwsKernel(() => parseKernel(noHdrS), /no "HdrS" magic.*zImage/);

  throwsKernel(() => parseKernel(makeBzImage({ version: 0x0205 })), /boot protocol 2\.05 is too old: 2\.06 or newer/);
  throwsKernel(() => parseKernel(makeBzImage({ version: 0x020b })), /no 64-bit entry point.*2\.11/);
  throwsKernel(() => parseKernel(makeBzImage({ xloadflags: 0x02 })), /XLF_KERNEL_64 unset/);
  throwsKernel(() => parseKernel(makeBzImage({ loadflags: 0 })), /LOADED_HIGH/);
  throwsKernel(() => parseKernel(makeBzImage({ headerLenByte: 0x90 })), /not a forward short jump/);
  throwsKernel(() => parseKernel(makeBzImage({ headerLenByte: 0x40 })), /setup header is .* too short/);
});

test('bzImage: truncated files are refused, not misread', () => {
  const img = makeBzImage();
  throwsKernel(() => parseKernel(img.slice(0, 0x230)), /truncated: setup header ends at 0x26c/);
  throwsKernel(() => parseKernel(img.slice(0, 0x208)), /truncated/);
  throwsKernel(() => parseKernel(img.slice(0, 5 * 512)), /truncated: setup_sects 4/);
  throwsKernel(() => parseKernel(img.slice(0, img.length - 100)), /truncated: syssize says/);
  throwsKernel(() => parseKernel(makeBzImage({ pmSize: 0x100, syssizeParas: 0 })), /no room for the 64-bit entry/);
});

test('bzImage: init_size must fit in guest RAM below the MMIO gap', () => {
  throwsKernel(() => loadKernel(makeBzImage({ initSize: 60 * MiB }), mem64M()), /init_size \[0x1000000, 0x4c00000\) does not fit in guest RAM/);
});

// --------------------------------------------------------------------------- ELF

const SEG_A = { paddr: 16 * MiB, data: fill(0x3000, 0xaa) };
const SEG_B = { paddr: 16 * MiB + 0x200000, data: fill(0x100, 0xbb), memsz: 0x2000 };

test('ELF: loads PT_LOAD segments by p_paddr, zero-fills .bss, entry = e_entry', () => {
  const mem = mem64M();
  mem.fill(SEG_B.paddr, 0x2000, 0xee); // stale bytes where .bss goes
  const r = loadKernel(makeElf([SEG_A, SEG_B], 16 * MiB + 0x40), mem);
  assert.equal(r.format, 'elf');
  assert.equal(r.entry64, 16 * MiB + 0x40);
  assert.equal(r.pvhEntry, undefined);
  assert.equal(r.setupHeader, undefined);
  assert.equal(r.kernelEnd, SEG_B.paddr + 0x2000);
  assert.deepEqual(mem.read(SEG_A.paddr, 0x3000), SEG_A.data);
  assert.deepEqual(mem.read(SEG_B.paddr, 0x100), SEG_B.data);
  assert.deepEqual(mem.read(SEG_B.paddr + 0x100, 0x1f00), new Uint8Array(0x1f00));
});

test('ELF: a Xen PHYS32_ENTRY note selects PVH unless preferPvh is false', () => {
  for (const width of [4, 8] as const) {
    const img = makeElf([SEG_A], 16 * MiB, { name: 'Xen', type: 18, desc: le(16 * MiB + 0x1000, width) });
    assert.equal(loadKernel(img, mem64M()).pvhEntry, 16 * MiB + 0x1000, `${width}-byte desc`);
    const forced = loadKernel(img, mem64M(), { preferPvh: false });
    assert.equal(forced.pvhEntry, undefined);
    assert.equal(forced.entry64, 16 * MiB);
  }
  // Same type, other owner: not the PVH note.
  const gnu = makeElf([SEG_A], 16 * MiB, { name: 'GNU', type: 18, desc: le(16 * MiB, 4) });
  assert.equal(loadKernel(gnu, mem64M()).pvhEntry, undefined);
});

test('ELF: malformed images give clear errors', () => {
  const ok = makeElf([SEG_A], 16 * MiB);
  throwsKernel(() => parseKernel(ok.slice(0, 40)), /truncated: 40 bytes, the ELF64 header needs 64/);
  throwsKernel(() => parseKernel(ok.slice(0, 64 + 20)), /truncated: 1 program headers/);
  throwsKernel(() => parseKernel(ok.slice(0, ok.length - 1)), /truncated: PT_LOAD segment 0/);
  throwsKernel(() => parseKernel(makeElf([SEG_A], 16 * MiB, undefined, (b) => { b[4] = 1; })), /not ELF64/);
  throwsKernel(() => parseKernel(makeElf([SEG_A], 16 * MiB, undefined, (b) => { b[0x12] = 3; })), /e_machine 3 is not x86_64/);
  throwsKernel(() => parseKernel(makeElf([SEG_A], 16 * MiB, undefined, (b) => { b[0x10] = 3; })), /not ET_EXEC/);
  throwsKernel(() => parseKernel(makeElf([SEG_A], 8 * MiB)), /e_entry 0x800000 is not inside any PT_LOAD/);
  throwsKernel(() => parseKernel(makeElf([{ paddr: 0x80000, data: fill(16, 1) }], 0x80000)), /starts below 0x100000/);
  throwsKernel(
    () => parseKernel(makeElf([{ paddr: 3 * GiB - 0x1000, data: fill(16, 1), memsz: 0x2000 }], 3 * GiB - 0x1000)),
    /overlaps the MMIO gap/,
  );
  throwsKernel(() => parseKernel(makeElf([SEG_A, { paddr: 16 * MiB + 0x1000, data: fill(16, 1) }], 16 * MiB)), /overlap/);
  throwsKernel(() => parseKernel(makeElf([{ paddr: 16 * MiB, data: fill(0x100, 1), memsz: 0x10 }], 16 * MiB)), /p_filesz 0x100 exceeds p_memsz 0x10/);
  const hugeDesc = makeElf([SEG_A], 16 * MiB, { name: 'Xen', type: 18, desc: le(0, 4) }, (b) => {
    dv(b).setUint32(64 + 2 * 56 + 4, 0x7fffffff, true); // note n_descsz
  });
  throwsKernel(() => parseKernel(hugeDesc), /malformed note/);
  throwsKernel(() => parseKernel(makeElf([SEG_A], 16 * MiB, { name: 'Xen', type: 18, desc: le(2 ** 33, 8) })), /not a 32-bit address/);
});

test('ELF: a segment outside guest RAM is refused before anything is written', () => {
  const mem = mem64M();
  const img = makeElf([SEG_A, { paddr: 128 * MiB, data: fill(16, 1) }], 16 * MiB);
  throwsKernel(() => loadKernel(img, mem), /PT_LOAD segment 1 \[0x8000000, 0x8000010\) does not fit in guest RAM/);
  assert.deepEqual(mem.read(SEG_A.paddr, 16), new Uint8Array(16));
});

test('unknown formats are refused', () => {
  throwsKernel(() => parseKernel(fill(4096, 0x90)), /unsupported kernel image format/);
  throwsKernel(() => parseKernel(new Uint8Array(0)), /unsupported kernel image format/);
});

// --------------------------------------------------------------------------- cmdline

test('Cmdline: builds, trims and NUL-terminates', () => {
  const c = Cmdline.from('  console=ttyS0   reboot=k ').insert('panic', '1').append('   ').append('i8042.noaux');
  assert.equal(c.toString(), 'console=ttyS0   reboot=k panic=1 i8042.noaux');
  const b = c.toBytes();
  assert.equal(b.length, c.length + 1);
  assert.equal(b[b.length - 1], 0);
  assert.equal(new TextDecoder().decode(b.subarray(0, c.length)), c.toString());
  assert.equal(new Cmdline().toBytes().length, 1);
});

test('Cmdline: rejects NUL, non-printable characters and bad keys', () => {
  assert.throws(() => new Cmdline().append('a\0b'), (e: unknown) => e instanceof CmdlineError && /NUL/.test(e.message));
  assert.throws(() => new Cmdline().append('a\nb'), /non-printable/);
  assert.throws(() => new Cmdline().append('root=é'), /non-ASCII/);
  assert.throws(() => new Cmdline().insert('a=b', 'c'), /contains '='/);
  assert.throws(() => new Cmdline().insert('a b', 'c'), /contains a space/);
  assert.throws(() => new Cmdline().insert('', 'c'), /empty/);
  assert.throws(() => new Cmdline().insert('init', '/bin/sh -x'), /contains a space/);
});

test('Cmdline: length including the NUL must fit the capacity', () => {
  const c = new Cmdline(10);
  c.append('123456789'); // 9 chars + NUL = 10
  assert.throws(() => c.append('x'), /12 bytes including the NUL, over its capacity of 10/);
  assert.equal(c.toString(), '123456789');
  assert.throws(() => new Cmdline(2048).append('x'.repeat(2048)), /capacity of 2048/);
  assert.throws(() => new Cmdline(0), /capacity/);
});

// --------------------------------------------------------------------------- E820 and initrd

test('e820Map: low RAM without the EBDA..1 MiB hole, then the rest above 4 GiB', () => {
  assert.deepEqual(e820Map(128 * MiB), [
    { addr: 0, size: 0x9fc00, type: 1 },
    { addr: 0x100000, size: 127 * MiB, type: 1 },
  ]);
  assert.deepEqual(e820Map(3 * GiB), [
    { addr: 0, size: 0x9fc00, type: 1 },
    { addr: 0x100000, size: 3 * GiB - MiB, type: 1 },
  ]);
  assert.deepEqual(e820Map(5 * GiB), [
    { addr: 0, size: 0x9fc00, type: 1 },
    { addr: 0x100000, size: 3 * GiB - MiB, type: 1 },
    { addr: 4 * GiB, size: 2 * GiB, type: 1 },
  ]);
  assert.throws(() => e820Map(512 * KiB), /above 1048576 bytes/);
});

test('initrdAddress: page-aligned at the top of low RAM, below the gap and initrd_addr_max', () => {
  const size = 5_000_000;
  const a = initrdAddress(128 * MiB, size);
  assert.equal(a % 4096, 0);
  assert.ok(a + size <= 128 * MiB);
  assert.ok(128 * MiB - (a + size) < 4096);

  const big = initrdAddress(6 * GiB, size);
  assert.equal(big % 4096, 0);
  assert.ok(big + size <= 3 * GiB && 3 * GiB - (big + size) < 4096, 'just below the MMIO gap');

  const capped = initrdAddress(6 * GiB, size, 0x7fffffff);
  assert.ok(capped + size <= 0x80000000 && 0x80000000 - (capped + size) < 4096, 'below initrd_addr_max');

  assert.throws(() => initrdAddress(64 * MiB, 80 * MiB), /does not fit in low guest RAM/);
  assert.throws(() => initrdAddress(64 * MiB, 40 * MiB, undefined, 32 * MiB), /between 0x2000000 and 0x4000000/);
  assert.throws(() => initrdAddress(64 * MiB, 0), /positive/);
});

// --------------------------------------------------------------------------- zero page

test('buildZeroPage: copies the setup header and fills the loader fields at their offsets', () => {
  const bz = parseBzImage(makeBzImage());
  const e820 = e820Map(5 * GiB);
  const zp = buildZeroPage({
    setupHeader: bz.setupHeader,
    cmdlineAddr: 0x20000,
    cmdlineSize: 100,
    initrd: { addr: 0x7f00000, size: 0x123456 },
    e820,
    rsdpAddr: 0xe0000,
  });
  assert.equal(zp.length, 4096);
  assert.equal(u8(zp, 0x1f1), 4, 'setup_sects copied');
  assert.equal(u16(zp, 0x206), 0x020f, 'version copied');
  assert.equal(u32(zp, 0x214), 16 * MiB, 'code32_start = load address');
  assert.equal(u8(zp, 0x1ef), 0, 'sentinel clear');
  assert.equal(u8(zp, 0x210), 0xff, 'type_of_loader');
  assert.equal(u8(zp, 0x211), 0x81, 'loadflags LOADED_HIGH | CAN_USE_HEAP');
  assert.equal(u16(zp, 0x224), 0xde00, 'heap_end_ptr');
  assert.equal(u32(zp, 0x228), 0x20000, 'cmd_line_ptr');
  assert.equal(u32(zp, 0xc8), 0, 'ext_cmd_line_ptr');
  assert.equal(u32(zp, 0x238), 99, 'cmdline_size (without the NUL)');
  assert.equal(u32(zp, 0x218), 0x7f00000, 'ramdisk_image');
  assert.equal(u32(zp, 0x21c), 0x123456, 'ramdisk_size');
  assert.equal(u32(zp, 0xc0), 0, 'ext_ramdisk_image');
  assert.equal(u64(zp, 0x70), 0xe0000, 'acpi_rsdp_addr');
  assert.equal(u8(zp, 0x1e8), 3, 'e820_entries');
  e820.forEach((e, i) => {
    const at = 0x2d0 + i * 20;
    assert.equal(u64(zp, at), e.addr);
    assert.equal(u64(zp, at + 8), e.size);
    assert.equal(u32(zp, at + 16), 1);
  });
  assert.equal(u64(zp, 0x2d0 + 2 * 20), 4 * GiB);
  assert.deepEqual(zp.subarray(0x2d0 + 3 * 20, 0x2d0 + 4 * 20), new Uint8Array(20));
});

test('buildZeroPage: 64-bit addresses split into the ext_ fields', () => {
  const zp = buildZeroPage({
    cmdlineAddr: 0x1_0002_0000,
    cmdlineSize: 1,
    initrd: { addr: 0x1_2000_0000, size: 0x1_0000_0010 },
    e820: [],
  });
  assert.equal(u32(zp, 0x228), 0x20000);
  assert.equal(u32(zp, 0xc8), 1);
  assert.equal(u32(zp, 0x218), 0x20000000);
  assert.equal(u32(zp, 0xc0), 1);
  assert.equal(u32(zp, 0x21c), 0x10);
  assert.equal(u32(zp, 0xc4), 1);
});

test('buildZeroPage: ELF boot without a header writes the magic values', () => {
  const zp = buildZeroPage({ cmdlineAddr: 0x20000, cmdlineSize: 10, e820: e820Map(128 * MiB), rsdpAddr: 0xe0000 });
  assert.equal(u16(zp, 0x1fe), 0xaa55, 'boot_flag');
  assert.equal(u32(zp, 0x202), 0x53726448, 'HdrS');
  assert.equal(u8(zp, 0x210), 0xff);
  assert.equal(u8(zp, 0x211), 0x81);
  assert.equal(u32(zp, 0x228), 0x20000);
  assert.equal(u32(zp, 0x238), 9);
  assert.equal(u32(zp, 0x218), 0, 'no initrd');
  assert.equal(u64(zp, 0x70), 0xe0000);
  assert.equal(u8(zp, 0x1e8), 2);
});

test('buildZeroPage: acpi_rsdp_addr only for protocol >= 2.14; limits enforced', () => {
  const old = parseBzImage(makeBzImage({ version: 0x020d }));
  const zp = buildZeroPage({ setupHeader: old.setupHeader, cmdlineAddr: 0x20000, cmdlineSize: 1, e820: [], rsdpAddr: 0xe0000 });
  assert.equal(u64(zp, 0x70), 0);
  const hdr = parseBzImage(makeBzImage()).setupHeader;
  assert.throws(() => buildZeroPage({ setupHeader: hdr, cmdlineAddr: 0x20000, cmdlineSize: 2049, e820: [] }), /2048 characters exceeds the kernel's cmdline_size of 2047/);
  const many = Array.from({ length: 129 }, (_, i) => ({ addr: i * 4096, size: 4096, type: 1 }));
  assert.throws(() => buildZeroPage({ cmdlineAddr: 0x20000, cmdlineSize: 1, e820: many }), /129 E820 entries exceed/);
  assert.throws(() => buildZeroPage({ setupHeader: new Uint8Array(10), cmdlineAddr: 0, cmdlineSize: 1, e820: [] }), /HdrS/);
});

// --------------------------------------------------------------------------- PVH

test('buildPvhStartInfo: hvm_start_info v1, memmap and modlist', () => {
  const e820 = e820Map(5 * GiB);
  const p = buildPvhStartInfo({ cmdlineAddr: 0x20000, initrd: { addr: 0x7f00000, size: 0x1000 }, e820, rsdpAddr: 0xe0000 });
  assert.equal(p.startInfoAddr, 0x6000);
  const si = p.startInfo;
  assert.equal(si.length, 56);
  assert.equal(u32(si, 0x00), 0x336ec578, 'magic');
  assert.equal(u32(si, 0x04), 1, 'version');
  assert.equal(u32(si, 0x08), 0, 'flags');
  assert.equal(u32(si, 0x0c), 1, 'nr_modules');
  assert.equal(u64(si, 0x10), 0x6040, 'modlist_paddr');
  assert.equal(u64(si, 0x18), 0x20000, 'cmdline_paddr');
  assert.equal(u64(si, 0x20), 0xe0000, 'rsdp_paddr');
  assert.equal(u64(si, 0x28), p.memmapAddr, 'memmap_paddr');
  assert.equal(u32(si, 0x30), 3, 'memmap_entries');
  assert.equal(p.memmap.length, 3 * 24);
  assert.equal(u64(p.memmap, 24 * 2), 4 * GiB);
  assert.equal(u64(p.memmap, 24 * 2 + 8), 2 * GiB);
  assert.equal(u32(p.memmap, 24 * 2 + 16), 1);
  assert.equal(p.modlistAddr, 0x6040);
  assert.equal(u64(p.modlist!, 0), 0x7f00000);
  assert.equal(u64(p.modlist!, 8), 0x1000);
  assert.ok(p.modlistAddr! + p.modlist!.length <= p.memmapAddr, 'modlist ends before the memmap');

  const bare = buildPvhStartInfo({ cmdlineAddr: 0x20000, e820, rsdpAddr: 0 });
  assert.equal(u32(bare.startInfo, 0x0c), 0);
  assert.equal(u64(bare.startInfo, 0x10), 0);
  assert.equal(bare.modlist, undefined);
});

// --------------------------------------------------------------------------- real kernel

/** The Debian kernel that the guest-asset step downloads into .cache/guest/<version>/vmlinuz. */
function findDebianKernel(): string | undefined {
  const root = fileURLToPath(new URL('../../../', import.meta.url)); // dist/tests/unit -> project root
  const dir = join(root, '.cache', 'guest');
  if (!existsSync(dir)) return undefined;
  for (const sub of readdirSync(dir)) {
    const p = join(dir, sub, 'vmlinuz');
    if (existsSync(p)) return p;
  }
  return undefined;
}

const debianKernel = findDebianKernel();
// Conditional only because the asset step that downloads the kernel runs after unit tests in CI.
test('real Debian kernel (.cache/guest/*/vmlinuz, present after the guest-asset step) parses as a 64-bit bzImage', {
  skip: debianKernel === undefined ? 'no .cache/guest/*/vmlinuz yet (guest-asset step has not run)' : false,
}, () => {
  const img = new Uint8Array(readFileSync(debianKernel!));
  const parsed = parseKernel(img);
  assert.equal(parsed.format, 'bzimage');
  if (parsed.format !== 'bzimage') return;
  const bz = parsed.bzImage;
  assert.ok(bz.protocol >= 0x0206, `protocol ${bz.protocol.toString(16)}`);
  assert.ok(bz.xloadflags & 0x1, 'XLF_KERNEL_64');
  assert.equal(bz.entry64, bz.loadAddr + 0x200);
  assert.ok(bz.cmdlineMax >= 2047);
  const r = loadKernel(img, GuestMemory.forTest(ramRegions(256 * MiB)));
  assert.ok(r.kernelEnd < 256 * MiB);
});
