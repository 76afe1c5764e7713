/**
 * The KVM ABI as the kernel sees it: ioctl numbers, constants, struct layouts
 * and the boot GDT. Expected values are literals from <linux/kvm.h>,
 * <asm/kvm.h> and the Intel SDM (and Firecracker's boot GDT), never derived
 * from the module under test, so a wrong size or offset cannot hide behind
 * itself.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  KVM,
  KVM_API_VERSION,
  KVM_CAP,
  KVM_CLOCK_TSC_STABLE,
  KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
  KVM_EXIT,
  KVM_EXIT_NAMES,
  KVM_INTERNAL_ERROR,
  KVM_IOEVENTFD_FLAG,
  KVM_IRQFD_FLAG,
  KVM_MP_STATE,
  KVM_PIT_SPEAKER_DUMMY,
  KVM_RUN_OFFSET,
  KVM_SYSTEM_EVENT,
  SIZEOF,
} from '../../src/generated/kvm.js';
import {
  APIC_MODE,
  APIC_REG,
  FPU_OFFSET,
  REG_NAMES,
  SEGMENT_NAMES,
  cpuid2Buffer,
  decodeCpuid2,
  decodeMsrs,
  decodeRegs,
  decodeSregs,
  emptyRegs,
  encodeCpuid2,
  encodeIoeventfd,
  encodeIrqLevel,
  encodeIrqfd,
  encodeMsrs,
  encodePitConfig,
  encodeRegs,
  encodeSregs,
  encodeUserspaceMemoryRegion,
  setLvtDeliveryMode,
  type CpuidEntry,
  type KvmSegment,
  type KvmSregs,
} from '../../src/generated/kvm_structs.js';
import { GDT_FLAGS, GDT_INDEX, bootGdt, gdtEntry, segmentFromGdt } from '../../src/vmm/arch/x86_64/gdt.js';

const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

// --------------------------------------------------------------------------- ioctl numbers

test('ioctl numbers equal the values of <linux/kvm.h> on x86_64', () => {
  // Literal values as the kernel headers expand them (_IO/_IOR/_IOW/_IOWR with KVMIO = 0xae).
  const expected: Record<keyof typeof KVM, number> = {
    GET_API_VERSION: 0xae00,
    CREATE_VM: 0xae01,
    GET_MSR_INDEX_LIST: 0xc004ae02,
    CHECK_EXTENSION: 0xae03,
    GET_VCPU_MMAP_SIZE: 0xae04,
    GET_SUPPORTED_CPUID: 0xc008ae05,
    CREATE_VCPU: 0xae41,
    SET_USER_MEMORY_REGION: 0x4020ae46,
    SET_TSS_ADDR: 0xae47,
    SET_IDENTITY_MAP_ADDR: 0x4008ae48,
    CREATE_IRQCHIP: 0xae60,
    IRQ_LINE: 0x4008ae61,
    IRQFD: 0x4020ae76,
    CREATE_PIT2: 0x4040ae77,
    IOEVENTFD: 0x4040ae79,
    SET_CLOCK: 0x4030ae7b,
    GET_CLOCK: 0x8030ae7c,
    RUN: 0xae80,
    GET_REGS: 0x8090ae81,
    SET_REGS: 0x4090ae82,
    GET_SREGS: 0x8138ae83,
    SET_SREGS: 0x4138ae84,
    GET_MSRS: 0xc008ae88,
    SET_MSRS: 0x4008ae89,
    GET_FPU: 0x81a0ae8c,
    SET_FPU: 0x41a0ae8d,
    GET_LAPIC: 0x8400ae8e,
    SET_LAPIC: 0x4400ae8f,
    SET_CPUID2: 0x4008ae90,
    GET_CPUID2: 0xc008ae91,
    GET_MP_STATE: 0x8004ae98,
    SET_MP_STATE: 0x4004ae99,
    GET_VCPU_EVENTS: 0x8040ae9f,
    SET_VCPU_EVENTS: 0x4040aea0,
    GET_TSC_KHZ: 0xaea3,
    KVMCLOCK_CTRL: 0xaead,
  };
  for (const [name, value] of Object.entries(expected)) {
    assert.equal(
      KVM[name as keyof typeof KVM],
      value,
      `KVM_${name} = 0x${KVM[name as keyof typeof KVM].toString(16)}, want 0x${value.toString(16)}`,
    );
  }
  // Nothing issued that this table does not check.
  assert.deepEqual(Object.keys(KVM).sort(), Object.keys(expected).sort());
});

test('ioctl numbers are unsigned 32-bit values usable as an ioctl request', () => {
  for (const [name, v] of Object.entries(KVM)) {
    assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffffffff, `KVM_${name} = ${v}`);
    assert.equal((v >>> 8) & 0xff, 0xae, `KVM_${name} type byte`);
  }
});

test('struct sizes match the kernel ABI', () => {
  assert.deepEqual({ ...SIZEOF }, {
    kvm_userspace_memory_region: 32,
    kvm_regs: 144, // 18 × __u64
    kvm_sregs: 312, // 8 × kvm_segment(24) + 2 × kvm_dtable(16) + 7 × __u64 + 4 × __u64 bitmap
    kvm_fpu: 416,
    kvm_lapic_state: 1024,
    kvm_cpuid2_header: 8,
    kvm_cpuid_entry2: 40,
    kvm_msrs_header: 8,
    kvm_msr_entry: 16,
    kvm_msr_list_header: 4,
    kvm_pit_config: 64,
    kvm_irqfd: 32,
    kvm_ioeventfd: 64,
    kvm_irq_level: 8,
    kvm_clock_data: 48,
    kvm_mp_state: 4,
    kvm_vcpu_events: 64,
    kvm_xsave: 4096,
    kvm_xcrs: 392,
    kvm_debugregs: 128,
  });
});

test('API version, capabilities, exit reasons and flags match <linux/kvm.h>', () => {
  assert.equal(KVM_API_VERSION, 12);
  assert.deepEqual({ ...KVM_CAP }, {
    IRQCHIP: 0, HLT: 1, USER_MEMORY: 3, SET_TSS_ADDR: 4, EXT_CPUID: 7, NR_VCPUS: 9, NR_MEMSLOTS: 10,
    PIT2: 33, SET_IDENTITY_MAP_ADDR: 37, IOEVENTFD: 36, IRQFD: 32, MAX_VCPUS: 66, IMMEDIATE_EXIT: 136,
  });
  assert.deepEqual({ ...KVM_EXIT }, {
    UNKNOWN: 0, EXCEPTION: 1, IO: 2, HYPERCALL: 3, DEBUG: 4, HLT: 5, MMIO: 6, IRQ_WINDOW_OPEN: 7,
    SHUTDOWN: 8, FAIL_ENTRY: 9, INTR: 10, SET_TPR: 11, TPR_ACCESS: 12, NMI: 16, INTERNAL_ERROR: 17,
    SYSTEM_EVENT: 24,
  });
  assert.equal(KVM_EXIT_NAMES[2], 'KVM_EXIT_IO');
  assert.equal(KVM_EXIT_NAMES[24], 'KVM_EXIT_SYSTEM_EVENT');
  assert.deepEqual({ ...KVM_SYSTEM_EVENT }, { SHUTDOWN: 1, RESET: 2, CRASH: 3 });
  assert.deepEqual({ ...KVM_INTERNAL_ERROR }, { EMULATION: 1, SIMUL_EX: 2, DELIVERY_EV: 3, UNEXPECTED_EXIT_REASON: 4 });
  assert.deepEqual({ ...KVM_IOEVENTFD_FLAG }, { DATAMATCH: 1, PIO: 2, DEASSIGN: 4 });
  assert.deepEqual({ ...KVM_IRQFD_FLAG }, { DEASSIGN: 1, RESAMPLE: 2 });
  assert.deepEqual({ ...KVM_MP_STATE }, { RUNNABLE: 0, UNINITIALIZED: 1, INIT_RECEIVED: 2, HALTED: 3, SIPI_RECEIVED: 4 });
  assert.equal(KVM_PIT_SPEAKER_DUMMY, 1);
  assert.equal(KVM_CPUID_FLAG_SIGNIFCANT_INDEX, 1);
  assert.equal(KVM_CLOCK_TSC_STABLE, 2);
});

test('struct kvm_run offsets match <linux/kvm.h> on x86_64', () => {
  assert.deepEqual({ ...KVM_RUN_OFFSET }, {
    request_interrupt_window: 0,
    immediate_exit: 1,
    exit_reason: 8,
    ready_for_interrupt_injection: 12,
    if_flag: 13,
    flags: 14,
    cr8: 16,
    apic_base: 24,
    exit: 32,
    io_direction: 32,
    io_size: 33,
    io_port: 34,
    io_count: 36,
    io_data_offset: 40,
    mmio_phys_addr: 32,
    mmio_data: 40,
    mmio_len: 48,
    mmio_is_write: 52,
    fail_entry_reason: 32,
    internal_suberror: 32,
    internal_ndata: 36,
    internal_data: 40,
    system_event_type: 32,
  });
});

// --------------------------------------------------------------------------- struct kvm_regs

test('kvm_regs: registers at 8-byte slots in <asm/kvm.h> order, round trip', () => {
  assert.deepEqual([...REG_NAMES], [
    'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
    'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
  ]);
  const r = emptyRegs();
  REG_NAMES.forEach((n, i) => { r[n] = 0x1111_0000_0000_0000n * BigInt(i % 15 + 1) + BigInt(i); });
  r.rip = 0x0100_0000n;
  r.rsi = 0x7000n;
  r.rflags = 2n;
  r.rax = 0xffff_ffff_ffff_ffffn;
  const b = encodeRegs(r);
  assert.equal(b.byteLength, 144);
  const v = dv(b);
  assert.equal(v.getBigUint64(0, true), 0xffff_ffff_ffff_ffffn, 'rax at 0');
  assert.equal(v.getBigUint64(4 * 8, true), 0x7000n, 'rsi at 32');
  assert.equal(v.getBigUint64(16 * 8, true), 0x0100_0000n, 'rip at 128');
  assert.equal(v.getBigUint64(17 * 8, true), 2n, 'rflags at 136');
  assert.deepEqual(decodeRegs(b), r);
});

// --------------------------------------------------------------------------- struct kvm_sregs

function seg(i: number): KvmSegment {
  return {
    base: 0x1000n * BigInt(i + 1) + 0xffff_0000_0000n, limit: 0xffff_ffff - i, selector: (i + 1) * 8,
    type: 0xb - (i % 4), present: 1, dpl: i % 4, db: i & 1, s: 1, l: (i + 1) & 1, g: 1, avl: 0, unusable: i === 7 ? 1 : 0,
  };
}
function sampleSregs(): KvmSregs {
  const s = Object.fromEntries(SEGMENT_NAMES.map((n, i) => [n, seg(i)])) as unknown as KvmSregs;
  s.gdt = { base: 0x500n, limit: 31 };
  s.idt = { base: 0x520n, limit: 7 };
  s.cr0 = 0x8000_0011n; s.cr2 = 0xdead_beefn; s.cr3 = 0x9000n; s.cr4 = 0x20n;
  s.cr8 = 0xfn; s.efer = 0x500n; s.apic_base = 0xfee0_0900n;
  s.interrupt_bitmap = [1n, 1n << 63n, 0x55n, 0n];
  return s;
}

test('kvm_sregs: segments, tables and control registers at kernel offsets, round trip', () => {
  assert.deepEqual([...SEGMENT_NAMES], ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt']);
  const s = sampleSregs();
  const b = encodeSregs(s);
  assert.equal(b.byteLength, 312);
  const v = dv(b);
  // struct kvm_segment cs at 0: base(0) limit(8) selector(12) type(14) present(15) dpl(16)
  // db(17) s(18) l(19) g(20) avl(21) unusable(22).
  assert.equal(v.getBigUint64(0, true), s.cs.base);
  assert.equal(v.getUint32(8, true), s.cs.limit);
  assert.equal(v.getUint16(12, true), 8, 'cs.selector at byte 12');
  assert.equal(b[14], s.cs.type);
  assert.equal(b[15], 1);
  assert.equal(b[16], s.cs.dpl);
  assert.equal(b[17], s.cs.db);
  assert.equal(b[18], s.cs.s);
  assert.equal(b[19], s.cs.l);
  assert.equal(b[20], s.cs.g);
  assert.equal(b[21], s.cs.avl);
  assert.equal(b[22], s.cs.unusable);
  // Segment stride 24: ds.selector at 36, tr at 6×24, ldt.unusable at 7×24+22.
  assert.equal(v.getUint16(24 + 12, true), 16, 'ds.selector');
  assert.equal(v.getUint16(6 * 24 + 12, true), 56, 'tr.selector');
  assert.equal(b[7 * 24 + 22], 1, 'ldt.unusable');
  // struct kvm_dtable gdt at 192, idt at 208.
  assert.equal(v.getBigUint64(192, true), 0x500n);
  assert.equal(v.getUint16(200, true), 31);
  assert.equal(v.getBigUint64(208, true), 0x520n);
  assert.equal(v.getUint16(216, true), 7);
  // cr0 224, cr2 232, cr3 240, cr4 248, cr8 256, efer 264, apic_base 272, interrupt_bitmap 280.
  assert.equal(v.getBigUint64(224, true), 0x8000_0011n);
  assert.equal(v.getBigUint64(232, true), 0xdead_beefn);
  assert.equal(v.getBigUint64(240, true), 0x9000n);
  assert.equal(v.getBigUint64(248, true), 0x20n);
  assert.equal(v.getBigUint64(256, true), 0xfn);
  assert.equal(v.getBigUint64(264, true), 0x500n);
  assert.equal(v.getBigUint64(272, true), 0xfee0_0900n);
  assert.equal(v.getBigUint64(280, true), 1n);
  assert.equal(v.getBigUint64(288, true), 1n << 63n);
  assert.equal(v.getBigUint64(296, true), 0x55n);
  assert.deepEqual(decodeSregs(b), s);
});

test('kvm_sregs decode reads what KVM wrote into a raw buffer', () => {
  const b = new Uint8Array(312);
  const v = dv(b);
  v.setUint16(5 * 24 + 12, 0x18, true); // ss.selector
  b[5 * 24 + 15] = 1; // ss.present
  v.setBigUint64(264, 0x500n, true); // efer: LME|LMA
  const s = decodeSregs(b);
  assert.equal(s.ss.selector, 0x18);
  assert.equal(s.ss.present, 1);
  assert.equal(s.cs.selector, 0);
  assert.equal(s.efer, 0x500n);
});

// --------------------------------------------------------------------------- kvm_fpu, lapic

test('kvm_fpu offsets match <asm/kvm.h>', () => {
  assert.deepEqual({ ...FPU_OFFSET }, { fcw: 128, fsw: 130, ftwx: 132, last_opcode: 134, last_ip: 136, last_dp: 144, xmm: 152, mxcsr: 408 });
});

test('setLvtDeliveryMode rewrites only LVT bits 10:8', () => {
  assert.deepEqual({ ...APIC_REG }, { ID: 0x20, LVT_LINT0: 0x350, LVT_LINT1: 0x360 });
  const lapic = new Uint8Array(1024);
  dv(lapic).setUint32(0x350, 0x0001_07ff, true); // masked, ExtINT, vector 0xff
  dv(lapic).setUint32(0x360, 0xffff_ffff, true);
  setLvtDeliveryMode(lapic, APIC_REG.LVT_LINT0, APIC_MODE.EXTINT);
  setLvtDeliveryMode(lapic, APIC_REG.LVT_LINT1, APIC_MODE.NMI);
  assert.equal(dv(lapic).getUint32(0x350, true), 0x0001_07ff);
  assert.equal(dv(lapic).getUint32(0x360, true), 0xffff_fcff);
  setLvtDeliveryMode(lapic, APIC_REG.LVT_LINT0, APIC_MODE.FIXED);
  assert.equal(dv(lapic).getUint32(0x350, true), 0x0001_00ff);
});

// --------------------------------------------------------------------------- kvm_cpuid2

test('kvm_cpuid2: nent header, 40-byte entries, round trip', () => {
  const entries: CpuidEntry[] = [
    { function: 0, index: 0, flags: 0, eax: 0x1f, ebx: 0x756e6547, ecx: 0x6c65746e, edx: 0x49656e69 },
    { function: 4, index: 3, flags: 1, eax: 0xffff_ffff, ebx: 0x8000_0000, ecx: 3, edx: 4 },
    { function: 0x8000_001e, index: 0, flags: 0, eax: 7, ebx: 0x100, ecx: 0, edx: 0 },
  ];
  const b = encodeCpuid2(entries);
  assert.equal(b.byteLength, 8 + 3 * 40);
  const v = dv(b);
  assert.equal(v.getUint32(0, true), 3, 'nent');
  assert.equal(v.getUint32(4, true), 0, 'padding');
  // Second entry at 8 + 40: function, index, flags, eax, ebx, ecx, edx.
  assert.equal(v.getUint32(48, true), 4);
  assert.equal(v.getUint32(52, true), 3);
  assert.equal(v.getUint32(56, true), 1);
  assert.equal(v.getUint32(60, true), 0xffff_ffff);
  assert.equal(v.getUint32(64, true), 0x8000_0000);
  assert.equal(v.getUint32(68, true), 3);
  assert.equal(v.getUint32(72, true), 4);
  assert.equal(v.getUint32(8 + 80, true), 0x8000_001e, 'third entry at 88');
  assert.deepEqual(decodeCpuid2(b), entries);
});

test('kvm_cpuid2: negative (signed) register values are stored as their unsigned bits', () => {
  const b = encodeCpuid2([{ function: 1, index: 0, flags: 0, eax: 0, ebx: 0, ecx: 1 << 31, edx: -1 }]);
  const [e] = decodeCpuid2(b);
  assert.equal(e!.ecx, 0x8000_0000);
  assert.equal(e!.edx, 0xffff_ffff);
});

test('kvm_cpuid2: an empty buffer for KVM to fill advertises its capacity in nent', () => {
  const b = cpuid2Buffer(80);
  assert.equal(b.byteLength, 8 + 80 * 40);
  assert.equal(dv(b).getUint32(0, true), 80);
  // KVM rewrites nent to the count it filled in; decode honours that.
  dv(b).setUint32(0, 2, true);
  dv(b).setUint32(8 + 40, 0xd, true);
  dv(b).setUint32(8 + 40 + 4, 1, true);
  const d = decodeCpuid2(b);
  assert.equal(d.length, 2);
  assert.equal(d[1]!.function, 0xd);
  assert.equal(d[1]!.index, 1);
});

// --------------------------------------------------------------------------- kvm_msrs

test('kvm_msrs: nmsrs header, 16-byte entries (index, reserved, data), round trip', () => {
  const entries = [
    { index: 0x10, data: 0n },
    { index: 0xc000_0082, data: 0xffff_ffff_8100_0000n },
    { index: 0x2ff, data: (1n << 11n) | 6n },
  ];
  const b = encodeMsrs(entries);
  assert.equal(b.byteLength, 8 + 3 * 16);
  const v = dv(b);
  assert.equal(v.getUint32(0, true), 3);
  assert.equal(v.getUint32(8 + 16, true), 0xc000_0082);
  assert.equal(v.getUint32(8 + 16 + 4, true), 0, 'reserved');
  assert.equal(v.getBigUint64(8 + 16 + 8, true), 0xffff_ffff_8100_0000n);
  assert.equal(v.getUint32(8 + 32, true), 0x2ff);
  assert.deepEqual(decodeMsrs(b), entries);
});

// --------------------------------------------------------------------------- small structs

test('kvm_userspace_memory_region, pit_config, irqfd, ioeventfd and irq_level layouts', () => {
  const mr = dv(encodeUserspaceMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: 0x1_0000_0000, memorySize: 0x4000_0000, userspaceAddr: 0x7f00_1234_5000n }));
  assert.equal(mr.byteLength, 32);
  assert.equal(mr.getUint32(0, true), 1);
  assert.equal(mr.getBigUint64(8, true), 0x1_0000_0000n);
  assert.equal(mr.getBigUint64(16, true), 0x4000_0000n);
  assert.equal(mr.getBigUint64(24, true), 0x7f00_1234_5000n);

  const pit = encodePitConfig(1);
  assert.equal(pit.byteLength, 64);
  assert.equal(dv(pit).getUint32(0, true), 1);
  assert.ok(pit.subarray(4).every((x) => x === 0));

  const irqfd = dv(encodeIrqfd(17, 4, 2, 18));
  assert.equal(irqfd.byteLength, 32);
  assert.deepEqual([0, 4, 8, 12].map((o) => irqfd.getUint32(o, true)), [17, 4, 2, 18]);

  const io = dv(encodeIoeventfd({ datamatch: 0xabn, addr: 0xd000_0050, len: 4, fd: 9, flags: 1 }));
  assert.equal(io.byteLength, 64);
  assert.equal(io.getBigUint64(0, true), 0xabn);
  assert.equal(io.getBigUint64(8, true), 0xd000_0050n);
  assert.equal(io.getUint32(16, true), 4);
  assert.equal(io.getInt32(20, true), 9);
  assert.equal(io.getUint32(24, true), 1);

  const lvl = dv(encodeIrqLevel(4, 1));
  assert.equal(lvl.byteLength, 8);
  assert.equal(lvl.getUint32(0, true), 4);
  assert.equal(lvl.getUint32(4, true), 1);
});

// --------------------------------------------------------------------------- boot GDT

test('gdtEntry builds Firecracker-style flat descriptors', () => {
  assert.equal(gdtEntry(0xa09b, 0, 0xfffff), 0x00af9b000000ffffn, 'code64');
  assert.equal(gdtEntry(0xc09b, 0, 0xfffff), 0x00cf9b000000ffffn, 'code32');
  assert.equal(gdtEntry(0xc093, 0, 0xfffff), 0x00cf93000000ffffn, 'data');
  assert.equal(gdtEntry(0x808b, 0, 0xfffff), 0x008f8b000000ffffn, 'tss');
  assert.equal(gdtEntry(0, 0, 0), 0n, 'null');
  assert.equal(GDT_FLAGS.CODE64, 0xa09b);
  assert.equal(GDT_FLAGS.DATA, 0xc093);
  assert.equal(GDT_FLAGS.TSS, 0x808b);
});

test('gdtEntry splits base and limit into their descriptor fields', () => {
  // base 0x12345678: low 24 bits at 16..39, high byte at 56..63; limit 0xabcde: low 16 at 0..15, high nibble at 48..51.
  assert.equal(gdtEntry(0x4093, 0x12345678, 0xabcde), 0x124a_9334_5678_bcden);
});

test('bootGdt: null, code, data, TSS', () => {
  assert.deepEqual(bootGdt('64'), [0n, 0x00af9b000000ffffn, 0x00cf93000000ffffn, 0x008f8b000000ffffn]);
  assert.deepEqual(bootGdt('32'), [0n, 0x00cf9b000000ffffn, 0x00cf93000000ffffn, 0x008f8b000000ffffn]);
  assert.deepEqual({ ...GDT_INDEX }, { NULL: 0, CODE: 1, DATA: 2, TSS: 3 });
});

test('segmentFromGdt: what the CPU caches after loading the descriptor', () => {
  const code = segmentFromGdt(0x00af9b000000ffffn, 1);
  assert.deepEqual(code, {
    base: 0n, limit: 0xffff_ffff, selector: 8, type: 0xb, s: 1, dpl: 0, present: 1, avl: 0, l: 1, db: 0, g: 1, unusable: 0,
  });
  const data = segmentFromGdt(0x00cf93000000ffffn, 2);
  assert.deepEqual(data, {
    base: 0n, limit: 0xffff_ffff, selector: 16, type: 0x3, s: 1, dpl: 0, present: 1, avl: 0, l: 0, db: 1, g: 1, unusable: 0,
  });
  const tss = segmentFromGdt(0x008f8b000000ffffn, 3);
  assert.deepEqual(tss, {
    base: 0n, limit: 0xffff_ffff, selector: 24, type: 0xb, s: 0, dpl: 0, present: 1, avl: 0, l: 0, db: 0, g: 1, unusable: 0,
  });
  const code32 = segmentFromGdt(0x00cf9b000000ffffn, 1);
  assert.equal(code32.l, 0);
  assert.equal(code32.db, 1);
});

test('segmentFromGdt: byte granularity, base, DPL, AVL and a not-present descriptor', () => {
  // G=0, AVL=1, DPL=3, base 0x12345678, limit 0xabcde.
  const s = segmentFromGdt(gdtEntry(0x10f3, 0x12345678, 0xabcde), 5);
  assert.equal(s.base, 0x12345678n);
  assert.equal(s.limit, 0xabcde, 'no 4 KiB scaling without G');
  assert.equal(s.g, 0);
  assert.equal(s.avl, 1);
  assert.equal(s.dpl, 3);
  assert.equal(s.selector, 40);
  assert.equal(s.unusable, 0);
  const absent = segmentFromGdt(gdtEntry(0xc013, 0, 0xfffff), 2);
  assert.equal(absent.present, 0);
  assert.equal(absent.unusable, 1);
});

test('segmentFromGdt agrees with gdtEntry for the boot GDT (as written to KVM_SET_SREGS)', () => {
  const gdt = bootGdt('64');
  for (const [i, e] of gdt.entries()) {
    if (i === 0) continue;
    const s = segmentFromGdt(e, i);
    const roundTrip = decodeSregs(encodeSregs({ ...sampleSregs(), cs: s })).cs;
    assert.deepEqual(roundTrip, s);
  }
});
