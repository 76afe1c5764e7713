/**
 * Per-vCPU CPUID as the guest kernel reads it: APIC IDs and topology
 * consistent across leaves 1, 4, 0xb, 0x1f and AMD's 0x80000008/0x8000001e,
 * the hypervisor bit set, KVM's hypervisor leaves passed through unchanged,
 * and every (function, index) present exactly once.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { vcpuCpuid, type CpuTopology } from '../../src/vmm/arch/x86_64/cpuid.js';
import type { CpuidEntry } from '../../src/generated/kvm_structs.js';
import { decodeCpuid2, encodeCpuid2 } from '../../src/generated/kvm_structs.js';

const SIG = 1; // KVM_CPUID_FLAG_SIGNIFCANT_INDEX
const u32 = (x: number): number => x >>> 0;

function entry(fn: number, index: number, eax: number, ebx: number, ecx: number, edx: number, flags = 0): CpuidEntry {
  return { function: fn, index, flags, eax, ebx, ecx, edx };
}

/** A KVM_GET_SUPPORTED_CPUID answer of the shape an Intel host with AMD extended leaves gives. */
function supported(maxBasic = 0x1f): CpuidEntry[] {
  return [
    entry(0, 0, maxBasic, 0x756e6547, 0x6c65746e, 0x49656e69), // "GenuineIntel"
    // Host leaf 1: host APIC ID 0x0e, 16 logical CPUs, CLFLUSH 8; hypervisor and TSC-deadline bits clear
    // (KVM_GET_SUPPORTED_CPUID never reports TSC-deadline), HTT set.
    entry(1, 0, 0x000906ea, 0x0e100800, 0x7efafbff, 0xbfebfbff),
    // Leaf 4: L1d, L1i, L2, L3, then the terminating null entry; host sharing fields filled in.
    entry(4, 0, 0x1c004121, 0x01c0003f, 0x3f, 0, SIG),
    entry(4, 1, 0x1c004122, 0x01c0003f, 0x3f, 0, SIG),
    entry(4, 2, 0x1c004143, 0x00c0003f, 0x3ff, 0, SIG),
    entry(4, 3, 0x1c03c163, 0x03c0003f, 0x2fff, 6, SIG),
    entry(4, 4, 0, 0, 0, 0, SIG),
    entry(7, 0, 0, 0x029c6fbf, 0x40000000, 0xbc000400, SIG),
    // Host leaf 0xb / 0x1f: must be replaced, not duplicated.
    entry(0xb, 0, 1, 2, 0x100, 0x0e, SIG),
    entry(0xb, 1, 4, 16, 0x201, 0x0e, SIG),
    entry(0x1f, 0, 1, 2, 0x100, 0x0e, SIG),
    entry(0x1f, 1, 4, 16, 0x201, 0x0e, SIG),
    entry(0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x0000004d), // "KVMKVMKVM\0\0\0"
    entry(0x40000001, 0, 0x01007afb, 0, 0, 0),
    entry(0x80000000, 0, 0x8000001e, 0, 0, 0),
    entry(0x80000001, 0, 0, 0, 0x00000121, 0x2c100800),
    entry(0x80000008, 0, 0x00003030, 0, 0x0001700f, 0),
    entry(0x8000001e, 0, 0x0e, 0x0107, 0x0300, 0),
  ];
}

function find(es: readonly CpuidEntry[], fn: number, index = 0): CpuidEntry {
  const e = es.find((x) => x.function === fn && x.index === index);
  assert.ok(e, `leaf 0x${fn.toString(16)}.${index} missing`);
  return e;
}

function keys(es: readonly CpuidEntry[]): string[] {
  return es.map((e) => `${e.function.toString(16)}.${e.index}`);
}

// --------------------------------------------------------------------------- leaf 1

test('leaf 1: APIC ID in EBX[31:24], logical count in EBX[23:16], CLFLUSH 8, hypervisor and TSC-deadline bits, HTT', () => {
  const out = vcpuCpuid(supported(), { cpuIndex: 2, cpuCount: 4, smt: false });
  const l1 = find(out, 1);
  assert.equal(u32(l1.ebx) >>> 24, 2, 'initial APIC ID = vCPU index');
  assert.equal((l1.ebx >>> 16) & 0xff, 4, 'logical processors');
  assert.equal((l1.ebx >>> 8) & 0xff, 8, 'CLFLUSH line size (8 × 8 bytes)');
  assert.equal(u32(l1.ecx) >>> 31, 1, 'ECX[31] hypervisor present');
  assert.equal((l1.ecx >>> 24) & 1, 1, 'ECX[24] TSC-deadline timer (KVM\'s LAPIC has it; supported CPUID leaves it clear)');
  assert.equal((l1.edx >>> 28) & 1, 1, 'HTT with 4 vCPUs');
  // Everything else passes through.
  assert.equal(l1.eax, 0x000906ea);
  assert.equal(u32(l1.ecx), 0xfffafbff);
  assert.equal(u32(l1.edx), 0xbfebfbff);
});

test('leaf 1: HTT only when there is more than one vCPU', () => {
  const one = find(vcpuCpuid(supported(), { cpuIndex: 0, cpuCount: 1, smt: false }), 1);
  assert.equal((one.edx >>> 28) & 1, 0, 'HTT cleared for a single vCPU');
  assert.equal((one.ebx >>> 16) & 0xff, 1);
  assert.equal(u32(one.ebx) >>> 24, 0);
  assert.equal(u32(one.ecx) >>> 31, 1, 'hypervisor bit still set');
  assert.equal(u32(one.edx), 0xafebfbff);

  const hostWithoutHtt = supported();
  hostWithoutHtt[1]!.edx &= ~(1 << 28);
  const two = find(vcpuCpuid(hostWithoutHtt, { cpuIndex: 1, cpuCount: 2, smt: false }), 1);
  assert.equal((two.edx >>> 28) & 1, 1, 'HTT set for two vCPUs even if the host had it clear');
});

test('leaf 1: the APIC ID is each vCPU\'s own index', () => {
  for (let i = 0; i < 8; i++) {
    const l1 = find(vcpuCpuid(supported(), { cpuIndex: i, cpuCount: 8, smt: false }), 1);
    assert.equal(u32(l1.ebx) >>> 24, i);
  }
});

// --------------------------------------------------------------------------- leaves 0xb / 0x1f

function checkTopologyLeaf(out: readonly CpuidEntry[], fn: number, t: CpuTopology): void {
  const threads = t.smt ? 2 : 1;
  const s0 = find(out, fn, 0);
  const s1 = find(out, fn, 1);
  const s2 = find(out, fn, 2);
  for (const s of [s0, s1, s2]) {
    assert.equal(s.edx, t.cpuIndex, `0x${fn.toString(16)}.${s.index} EDX = x2APIC ID`);
    assert.equal(s.flags & SIG, SIG, 'subleaf-indexed');
  }
  // Subleaf 0: SMT level.
  assert.equal(s0.eax & 0x1f, threads === 2 ? 1 : 0, 'shift to the core ID');
  assert.equal(s0.ebx & 0xffff, threads, 'logical processors at this level');
  assert.equal((s0.ecx >> 8) & 0xff, 1, 'level type SMT');
  assert.equal(s0.ecx & 0xff, 0, 'level number');
  // Subleaf 1: core level, spans the package.
  assert.equal(s1.eax & 0x1f, Math.ceil(Math.log2(t.cpuCount)), 'shift to the package ID');
  assert.equal(s1.ebx & 0xffff, t.cpuCount);
  assert.equal((s1.ecx >> 8) & 0xff, 2, 'level type Core');
  assert.equal(s1.ecx & 0xff, 1);
  // Subleaf 2: invalid, terminates the enumeration.
  assert.equal(s2.eax, 0);
  assert.equal(s2.ebx, 0);
  assert.equal((s2.ecx >> 8) & 0xff, 0, 'level type Invalid');
  assert.equal(s2.ecx & 0xff, 2);
}

test('leaves 0xb and 0x1f: SMT/Core/Invalid subleaves with the x2APIC ID in EDX', () => {
  for (const t of [
    { cpuIndex: 2, cpuCount: 4, smt: false },
    { cpuIndex: 3, cpuCount: 4, smt: true },
    { cpuIndex: 0, cpuCount: 1, smt: false },
    { cpuIndex: 5, cpuCount: 6, smt: true },
  ]) {
    const out = vcpuCpuid(supported(), t);
    checkTopologyLeaf(out, 0xb, t);
    checkTopologyLeaf(out, 0x1f, t);
    assert.equal(out.filter((e) => e.function === 0xb).length, 3, 'host subleaves replaced');
    assert.equal(out.filter((e) => e.function === 0x1f).length, 3);
  }
});

test('topology leaves follow the maximum basic leaf', () => {
  const mid = vcpuCpuid(supported(0xd).filter((e) => e.function !== 0x1f), { cpuIndex: 1, cpuCount: 2, smt: false });
  assert.equal(mid.filter((e) => e.function === 0xb).length, 3, 'leaf 0xb when max basic ≥ 0xb');
  assert.equal(mid.filter((e) => e.function === 0x1f).length, 0, 'no leaf 0x1f when max basic < 0x1f');
  const old = vcpuCpuid(supported(0xa).filter((e) => e.function < 0xb || e.function >= 0x4000_0000), { cpuIndex: 1, cpuCount: 2, smt: false });
  assert.equal(old.filter((e) => e.function === 0xb || e.function === 0x1f).length, 0);
});

// --------------------------------------------------------------------------- leaf 4

test('leaf 4: cache sharing and cores per package follow the vCPU topology', () => {
  const noSmt = vcpuCpuid(supported(), { cpuIndex: 0, cpuCount: 4, smt: false });
  for (const i of [0, 1, 2]) {
    const e = find(noSmt, 4, i);
    assert.equal((e.eax >>> 14) & 0xfff, 0, `L${(e.eax >> 5) & 7} private to one thread`);
    assert.equal(u32(e.eax) >>> 26, 3, 'cores per package - 1');
    assert.equal(e.eax & 0x3fff, supported()[2 + i]!.eax & 0x3fff, 'type, level and flags untouched');
    assert.equal(e.ebx, supported()[2 + i]!.ebx, 'geometry untouched');
  }
  const l3 = find(noSmt, 4, 3);
  assert.equal((l3.eax >>> 14) & 0xfff, 3, 'L3 shared by all 4 vCPUs');
  assert.equal(u32(l3.eax) >>> 26, 3);
  assert.deepEqual(find(noSmt, 4, 4), supported()[6], 'null terminator untouched');

  const smt = vcpuCpuid(supported(), { cpuIndex: 0, cpuCount: 4, smt: true });
  assert.equal((find(smt, 4, 0).eax >>> 14) & 0xfff, 1, 'L1 shared by 2 threads');
  assert.equal(u32(find(smt, 4, 0).eax) >>> 26, 1, '2 cores');
  assert.equal((find(smt, 4, 3).eax >>> 14) & 0xfff, 3);
});

// --------------------------------------------------------------------------- hypervisor and AMD leaves

test('hypervisor leaves 0x40000000/0x40000001 are passed through unchanged ("KVMKVMKVM")', () => {
  const host = supported();
  const out = vcpuCpuid(host, { cpuIndex: 3, cpuCount: 4, smt: true });
  const base = find(out, 0x40000000);
  assert.deepEqual(base, host.find((e) => e.function === 0x40000000));
  assert.deepEqual(find(out, 0x40000001), host.find((e) => e.function === 0x40000001));
  const sig = Buffer.alloc(12);
  sig.writeUInt32LE(base.ebx, 0);
  sig.writeUInt32LE(base.ecx, 4);
  sig.writeUInt32LE(base.edx, 8);
  assert.equal(sig.toString('latin1'), 'KVMKVMKVM\0\0\0');
});

test('AMD 0x80000008 ECX: NC = count - 1, ApicIdCoreIdSize; other bits kept', () => {
  const e = find(vcpuCpuid(supported(), { cpuIndex: 0, cpuCount: 4, smt: false }), 0x80000008);
  assert.equal(e.ecx & 0xff, 3);
  assert.equal((e.ecx >> 12) & 0xf, 2);
  assert.equal(e.ecx & ~0xf0ff, 0x00010000);
  assert.equal(e.eax, 0x3030, 'address sizes untouched');
  const one = find(vcpuCpuid(supported(), { cpuIndex: 0, cpuCount: 1, smt: false }), 0x80000008);
  assert.equal(one.ecx & 0xf0ff, 0);
});

test('AMD 0x8000001e: extended APIC ID, core ID and threads per core', () => {
  const a = find(vcpuCpuid(supported(), { cpuIndex: 2, cpuCount: 4, smt: false }), 0x8000001e);
  assert.equal(a.eax, 2);
  assert.equal(a.ebx & 0xff, 2, 'core ID');
  assert.equal((a.ebx >> 8) & 0xff, 0, 'one thread per core');
  assert.equal(a.ecx, 0);
  const b = find(vcpuCpuid(supported(), { cpuIndex: 3, cpuCount: 4, smt: true }), 0x8000001e);
  assert.equal(b.eax, 3);
  assert.equal(b.ebx & 0xff, 1, 'core 1 (threads 2 and 3)');
  assert.equal((b.ebx >> 8) & 0xff, 1, 'two threads per core');
});

test('AMD 0x80000001: CmpLegacy set with several vCPUs', () => {
  const e = find(vcpuCpuid(supported(), { cpuIndex: 0, cpuCount: 2, smt: false }), 0x80000001);
  assert.equal((e.ecx >> 1) & 1, 1);
  assert.equal(e.edx, 0x2c100800);
});

// --------------------------------------------------------------------------- whole table

test('APIC IDs agree across leaves 1, 0xb, 0x1f and 0x8000001e for every vCPU', () => {
  const cpuCount = 6;
  for (let i = 0; i < cpuCount; i++) {
    const out = vcpuCpuid(supported(), { cpuIndex: i, cpuCount, smt: true });
    const ids = [u32(find(out, 1).ebx) >>> 24, find(out, 0xb).edx, find(out, 0x1f).edx, find(out, 0x8000001e).eax];
    assert.deepEqual(ids, [i, i, i, i]);
  }
});

test('each (function, index) appears once; other leaves pass through untouched', () => {
  const host = supported();
  for (const t of [{ cpuIndex: 0, cpuCount: 1, smt: false }, { cpuIndex: 7, cpuCount: 8, smt: true }]) {
    const out = vcpuCpuid(host, t);
    const k = keys(out);
    assert.deepEqual([...new Set(k)].sort(), [...k].sort(), `duplicates in ${k.join(' ')}`);
    // Every host leaf except the rebuilt topology ones is present, and 0xb/0x1f have 3 subleaves.
    const hostKeys = keys(host.filter((e) => e.function !== 0xb && e.function !== 0x1f));
    assert.deepEqual(k.filter((x) => !x.startsWith('b.') && !x.startsWith('1f.')), hostKeys);
    assert.deepEqual(find(out, 0), host[0]);
    assert.deepEqual(find(out, 7), host.find((e) => e.function === 7));
    assert.deepEqual(find(out, 0x80000000), host.find((e) => e.function === 0x80000000));
  }
});

test('the supported list is not modified', () => {
  const host = supported();
  const copy = structuredClone(host);
  vcpuCpuid(host, { cpuIndex: 3, cpuCount: 4, smt: true });
  assert.deepEqual(host, copy);
});

test('the result encodes into a kvm_cpuid2 that KVM_SET_CPUID2 reads back the same', () => {
  const out = vcpuCpuid(supported(), { cpuIndex: 1, cpuCount: 2, smt: false });
  const back = decodeCpuid2(encodeCpuid2(out));
  assert.equal(back.length, out.length);
  back.forEach((e, i) => {
    const o = out[i]!;
    assert.deepEqual(
      [e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx],
      [o.function, o.index, o.flags, o.eax, o.ebx, o.ecx, o.edx].map(u32),
    );
  });
});
