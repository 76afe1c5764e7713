/**
 * Boot-time register state of a vCPU: general registers, segment/control
 * registers, FPU and MSRs, for the Linux 64-bit entry and the PVH 32-bit entry.
 */
import type { GuestMemory } from '../../../memory/guest_memory.js';
import type { VcpuFd } from '../../../kvm/vcpu_fd.js';
import { emptyRegs, FPU_OFFSET, type KvmSregs, type MsrEntry } from '../../../generated/kvm_structs.js';
import {
  CR0_PE, CR0_PG, CR4_PAE, EFER_LMA, EFER_LME, FPU_FCW_DEFAULT, MISC_ENABLE_FAST_STRING, MSR,
  MTRR_ENABLE, MTRR_MEM_TYPE_WB, MXCSR_DEFAULT, RFLAGS_RESERVED,
} from '../../../generated/x86.js';
import { bootGdt, GDT_INDEX, segmentFromGdt } from './gdt.js';
import { writeIdentityPageTables } from './paging.js';
import { BOOT_GDT_START, BOOT_IDT_START, BOOT_STACK_POINTER, PVH_INFO_START, ZERO_PAGE_START } from './layout.js';

export type BootEntry = { kind: 'linux64'; rip: number } | { kind: 'pvh'; rip: number };

/** General registers: Linux boot protocol §64-bit: RSI = boot_params; PVH: EBX = hvm_start_info. */
export function setupRegs(vcpu: VcpuFd, entry: BootEntry): void {
  const r = emptyRegs();
  r.rflags = RFLAGS_RESERVED;
  r.rip = BigInt(entry.rip);
  if (entry.kind === 'linux64') {
    r.rsp = BigInt(BOOT_STACK_POINTER);
    r.rbp = BigInt(BOOT_STACK_POINTER);
    r.rsi = BigInt(ZERO_PAGE_START);
  } else {
    r.rbx = BigInt(PVH_INFO_START);
  }
  vcpu.setRegs(r);
}

/** Writes the boot GDT/IDT (and for 64-bit, page tables) into guest memory and loads the matching sregs. */
export function setupSregs(mem: GuestMemory, vcpu: VcpuFd, kind: BootEntry['kind']): void {
  const gdt = bootGdt(kind === 'linux64' ? '64' : '32');
  gdt.forEach((e, i) => mem.writeU64(BOOT_GDT_START + i * 8, e));
  // An empty IDT: the kernel installs its own before enabling interrupts.
  mem.writeU64(BOOT_IDT_START, 0n);

  const s: KvmSregs = vcpu.getSregs();
  const code = segmentFromGdt(gdt[GDT_INDEX.CODE]!, GDT_INDEX.CODE);
  const data = segmentFromGdt(gdt[GDT_INDEX.DATA]!, GDT_INDEX.DATA);
  s.cs = code;
  s.ds = data; s.es = data; s.fs = data; s.gs = data; s.ss = data;
  s.tr = segmentFromGdt(gdt[GDT_INDEX.TSS]!, GDT_INDEX.TSS);
  s.gdt = { base: BigInt(BOOT_GDT_START), limit: gdt.length * 8 - 1 };
  s.idt = { base: BigInt(BOOT_IDT_START), limit: 7 };

  if (kind === 'linux64') {
    s.cr3 = writeIdentityPageTables(mem);
    s.cr4 |= CR4_PAE;
    s.cr0 |= CR0_PE | CR0_PG;
    s.efer |= EFER_LME | EFER_LMA;
  } else {
    // PVH: 32-bit protected mode, paging off (Xen's PVH ABI).
    s.cr0 = (s.cr0 | CR0_PE) & ~CR0_PG;
    s.cr4 = 0n;
    s.efer = 0n;
  }
  vcpu.setSregs(s);
}

/** x87 control word and MXCSR at their reset values. */
export function setupFpu(vcpu: VcpuFd): void {
  const fpu = new Uint8Array(416);
  const v = new DataView(fpu.buffer);
  v.setUint16(FPU_OFFSET.fcw, FPU_FCW_DEFAULT, true);
  v.setUint32(FPU_OFFSET.mxcsr, MXCSR_DEFAULT, true);
  vcpu.setFpu(fpu);
}

/** The MSRs a booting kernel expects in a known state (syscall MSRs cleared, fast strings, WB MTRR default). */
export function bootMsrs(): MsrEntry[] {
  return [
    { index: MSR.IA32_SYSENTER_CS, data: 0n },
    { index: MSR.IA32_SYSENTER_ESP, data: 0n },
    { index: MSR.IA32_SYSENTER_EIP, data: 0n },
    { index: MSR.STAR, data: 0n },
    { index: MSR.CSTAR, data: 0n },
    { index: MSR.KERNEL_GS_BASE, data: 0n },
    { index: MSR.SYSCALL_MASK, data: 0n },
    { index: MSR.LSTAR, data: 0n },
    { index: MSR.IA32_TSC, data: 0n },
    { index: MSR.IA32_MISC_ENABLE, data: MISC_ENABLE_FAST_STRING },
    { index: MSR.MTRR_DEF_TYPE, data: MTRR_ENABLE | MTRR_MEM_TYPE_WB },
  ];
}

export function setupMsrs(vcpu: VcpuFd): void {
  vcpu.setMsrs(bootMsrs());
}
