/**
 * C struct layouts of the KVM ABI (x86_64), as typed encoders/decoders over
 * little-endian byte buffers. Offsets come from <asm/kvm.h> / <linux/kvm.h>;
 * sizes are checked against SIZEOF in kvm.ts by the unit tests.
 */
import { SIZEOF } from './kvm.js';

const le = true;
const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

// ---- struct kvm_regs ------------------------------------------------------
export const REG_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
] as const;
export type KvmRegs = Record<(typeof REG_NAMES)[number], bigint>;

export function emptyRegs(): KvmRegs {
  return Object.fromEntries(REG_NAMES.map((n) => [n, 0n])) as KvmRegs;
}
export function encodeRegs(r: KvmRegs): Uint8Array {
  const b = new Uint8Array(SIZEOF.kvm_regs);
  const v = dv(b);
  REG_NAMES.forEach((n, i) => v.setBigUint64(i * 8, r[n], le));
  return b;
}
export function decodeRegs(b: Uint8Array): KvmRegs {
  const v = dv(b);
  return Object.fromEntries(REG_NAMES.map((n, i) => [n, v.getBigUint64(i * 8, le)])) as KvmRegs;
}

// ---- struct kvm_segment (24 bytes) / kvm_dtable (16) / kvm_sregs (312) ------
export interface KvmSegment {
  base: bigint; limit: number; selector: number; type: number;
  present: number; dpl: number; db: number; s: number; l: number; g: number; avl: number; unusable: number;
}
export interface KvmDtable { base: bigint; limit: number }
export const SEGMENT_NAMES = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
export interface KvmSregs extends Record<(typeof SEGMENT_NAMES)[number], KvmSegment> {
  gdt: KvmDtable; idt: KvmDtable;
  cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; cr8: bigint; efer: bigint; apic_base: bigint;
  interrupt_bitmap: [bigint, bigint, bigint, bigint];
}
const SEG_SIZE = 24;
const SREGS_GDT = 192;
const SREGS_IDT = 208;
const SREGS_CR0 = 224;
const SREGS_CR_NAMES = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apic_base'] as const;
const SREGS_BITMAP = 280;

function readSeg(v: DataView, o: number): KvmSegment {
  return {
    base: v.getBigUint64(o, le), limit: v.getUint32(o + 8, le), selector: v.getUint16(o + 12, le),
    type: v.getUint8(o + 14), present: v.getUint8(o + 15), dpl: v.getUint8(o + 16), db: v.getUint8(o + 17),
    s: v.getUint8(o + 18), l: v.getUint8(o + 19), g: v.getUint8(o + 20), avl: v.getUint8(o + 21), unusable: v.getUint8(o + 22),
  };
}
function writeSeg(v: DataView, o: number, s: KvmSegment): void {
  v.setBigUint64(o, s.base, le); v.setUint32(o + 8, s.limit >>> 0, le); v.setUint16(o + 12, s.selector, le);
  v.setUint8(o + 14, s.type); v.setUint8(o + 15, s.present); v.setUint8(o + 16, s.dpl); v.setUint8(o + 17, s.db);
  v.setUint8(o + 18, s.s); v.setUint8(o + 19, s.l); v.setUint8(o + 20, s.g); v.setUint8(o + 21, s.avl); v.setUint8(o + 22, s.unusable);
}
export function decodeSregs(b: Uint8Array): KvmSregs {
  const v = dv(b);
  const s: Partial<KvmSregs> = {};
  SEGMENT_NAMES.forEach((n, i) => { s[n] = readSeg(v, i * SEG_SIZE); });
  s.gdt = { base: v.getBigUint64(SREGS_GDT, le), limit: v.getUint16(SREGS_GDT + 8, le) };
  s.idt = { base: v.getBigUint64(SREGS_IDT, le), limit: v.getUint16(SREGS_IDT + 8, le) };
  SREGS_CR_NAMES.forEach((n, i) => { s[n] = v.getBigUint64(SREGS_CR0 + i * 8, le); });
  s.interrupt_bitmap = [0, 1, 2, 3].map((i) => v.getBigUint64(SREGS_BITMAP + i * 8, le)) as KvmSregs['interrupt_bitmap'];
  return s as KvmSregs;
}
export function encodeSregs(s: KvmSregs): Uint8Array {
  const b = new Uint8Array(SIZEOF.kvm_sregs);
  const v = dv(b);
  SEGMENT_NAMES.forEach((n, i) => writeSeg(v, i * SEG_SIZE, s[n]));
  v.setBigUint64(SREGS_GDT, s.gdt.base, le); v.setUint16(SREGS_GDT + 8, s.gdt.limit, le);
  v.setBigUint64(SREGS_IDT, s.idt.base, le); v.setUint16(SREGS_IDT + 8, s.idt.limit, le);
  SREGS_CR_NAMES.forEach((n, i) => v.setBigUint64(SREGS_CR0 + i * 8, s[n], le));
  s.interrupt_bitmap.forEach((x, i) => v.setBigUint64(SREGS_BITMAP + i * 8, x, le));
  return b;
}

// ---- struct kvm_fpu (416 bytes) -------------------------------------------
export const FPU_OFFSET = { fcw: 128, fsw: 130, ftwx: 132, last_opcode: 134, last_ip: 136, last_dp: 144, xmm: 152, mxcsr: 408 } as const;

// ---- struct kvm_cpuid2 / kvm_cpuid_entry2 (40 bytes each) -------------------
export interface CpuidEntry { function: number; index: number; flags: number; eax: number; ebx: number; ecx: number; edx: number }
/** A kvm_cpuid2 with room for `capacity` entries; nent = capacity when `entries` is empty (a buffer for KVM to fill). */
export function encodeCpuid2(entries: readonly CpuidEntry[], capacity = entries.length): Uint8Array {
  const b = new Uint8Array(SIZEOF.kvm_cpuid2_header + capacity * SIZEOF.kvm_cpuid_entry2);
  const v = dv(b);
  v.setUint32(0, entries.length || capacity, le);
  entries.forEach((e, i) => {
    const o = SIZEOF.kvm_cpuid2_header + i * SIZEOF.kvm_cpuid_entry2;
    v.setUint32(o, e.function >>> 0, le); v.setUint32(o + 4, e.index >>> 0, le); v.setUint32(o + 8, e.flags >>> 0, le);
    v.setUint32(o + 12, e.eax >>> 0, le); v.setUint32(o + 16, e.ebx >>> 0, le); v.setUint32(o + 20, e.ecx >>> 0, le); v.setUint32(o + 24, e.edx >>> 0, le);
  });
  return b;
}
/** A kvm_cpuid2 buffer with room for `capacity` entries, for KVM to fill. */
export function cpuid2Buffer(capacity: number): Uint8Array {
  return encodeCpuid2([], capacity);
}
export function decodeCpuid2(b: Uint8Array): CpuidEntry[] {
  const v = dv(b);
  const n = v.getUint32(0, le);
  const out: CpuidEntry[] = [];
  for (let i = 0; i < n; i++) {
    const o = SIZEOF.kvm_cpuid2_header + i * SIZEOF.kvm_cpuid_entry2;
    out.push({
      function: v.getUint32(o, le), index: v.getUint32(o + 4, le), flags: v.getUint32(o + 8, le),
      eax: v.getUint32(o + 12, le), ebx: v.getUint32(o + 16, le), ecx: v.getUint32(o + 20, le), edx: v.getUint32(o + 24, le),
    });
  }
  return out;
}

// ---- struct kvm_msrs / kvm_msr_entry (16 bytes each) ------------------------
export interface MsrEntry { index: number; data: bigint }
export function encodeMsrs(entries: readonly MsrEntry[]): Uint8Array {
  const b = new Uint8Array(SIZEOF.kvm_msrs_header + entries.length * SIZEOF.kvm_msr_entry);
  const v = dv(b);
  v.setUint32(0, entries.length, le);
  entries.forEach((e, i) => {
    const o = SIZEOF.kvm_msrs_header + i * SIZEOF.kvm_msr_entry;
    v.setUint32(o, e.index >>> 0, le);
    v.setBigUint64(o + 8, e.data, le);
  });
  return b;
}
export function decodeMsrs(b: Uint8Array): MsrEntry[] {
  const v = dv(b);
  const n = v.getUint32(0, le);
  const out: MsrEntry[] = [];
  for (let i = 0; i < n; i++) {
    const o = SIZEOF.kvm_msrs_header + i * SIZEOF.kvm_msr_entry;
    out.push({ index: v.getUint32(o, le), data: v.getBigUint64(o + 8, le) });
  }
  return out;
}

// ---- small fixed structs ---------------------------------------------------
export function encodeUserspaceMemoryRegion(r: { slot: number; flags: number; guestPhysAddr: number; memorySize: number; userspaceAddr: bigint }): Uint8Array {
  const b = new Uint8Array(SIZEOF.kvm_userspace_memory_region);
  const v = dv(b);
  v.setUint32(0, r.slot, le); v.setUint32(4, r.flags, le);
  v.setBigUint64(8, BigInt(r.guestPhysAddr), le); v.setBigUint64(16, BigInt(r.memorySize), le); v.setBigUint64(24, r.userspaceAddr, le);
  return b;
}
export function encodePitConfig(flags: number): Uint8Array {
  const b = new Uint8Array(SIZEOF.kvm_pit_config);
  dv(b).setUint32(0, flags, le);
  return b;
}
export function encodeIrqfd(fd: number, gsi: number, flags: number, resamplefd = 0): Uint8Array {
  const b = new Uint8Array(SIZEOF.kvm_irqfd);
  const v = dv(b);
  v.setUint32(0, fd, le); v.setUint32(4, gsi, le); v.setUint32(8, flags, le); v.setUint32(12, resamplefd, le);
  return b;
}
export function encodeIoeventfd(e: { datamatch: bigint; addr: number; len: number; fd: number; flags: number }): Uint8Array {
  const b = new Uint8Array(SIZEOF.kvm_ioeventfd);
  const v = dv(b);
  v.setBigUint64(0, e.datamatch, le); v.setBigUint64(8, BigInt(e.addr), le);
  v.setUint32(16, e.len, le); v.setInt32(20, e.fd, le); v.setUint32(24, e.flags, le);
  return b;
}
export function encodeIrqLevel(irq: number, level: number): Uint8Array {
  const b = new Uint8Array(SIZEOF.kvm_irq_level);
  const v = dv(b);
  v.setUint32(0, irq, le); v.setUint32(4, level, le);
  return b;
}

// ---- struct kvm_lapic_state: the 1 KiB APIC register page --------------------
/** Register offsets in the LAPIC page (Intel SDM vol. 3, table 11-1). */
export const APIC_REG = { ID: 0x20, LVT_LINT0: 0x350, LVT_LINT1: 0x360 } as const;
/** LVT delivery mode field, bits 10:8. */
export const APIC_MODE = { FIXED: 0, NMI: 4, EXTINT: 7 } as const;
export function setLvtDeliveryMode(lapic: Uint8Array, reg: number, mode: number): void {
  const v = dv(lapic);
  const cur = v.getUint32(reg, le);
  v.setUint32(reg, (cur & ~0x700) | (mode << 8), le);
}
