/**
 * Per-vCPU CPUID: start from KVM_GET_SUPPORTED_CPUID and fix up what differs
 * between vCPUs or that KVM leaves to the VMM: APIC IDs, topology (leaves 1,
 * 4, 0xb, 0x1f and AMD's 0x80000008/0x8000001d/0x8000001e) and the
 * hypervisor-present and TSC-deadline bits. The hypervisor leaves (0x40000000…) are passed
 * through as KVM reports them, so guests find kvm-clock and PVM guests detect KVM.
 *
 * Topology: one socket, `cpuCount / threadsPerCore` cores, APIC ID = vCPU index.
 */
import { KVM_CPUID_FLAG_SIGNIFCANT_INDEX } from '../../../generated/kvm.js';
import type { CpuidEntry } from '../../../generated/kvm_structs.js';
import { CPUID } from '../../../generated/x86.js';

export interface CpuTopology {
  cpuIndex: number;
  cpuCount: number;
  /** SMT: 2 threads per core when true (Firecracker's `smt`). */
  smt: boolean;
}

/** Bits needed to number `n` items (x86 topology "shift" fields). */
function bitsFor(n: number): number {
  return n <= 1 ? 0 : Math.ceil(Math.log2(n));
}

/** CLFLUSH line size in 8-byte units, CPUID.1:EBX[15:8] (64-byte lines). */
const CLFLUSH_LINE_QWORDS = 8;

function topologyLeaf(fn: number, apicId: number, t: CpuTopology): CpuidEntry[] {
  const threads = t.smt ? 2 : 1;
  const threadShift = bitsFor(threads);
  const pkgShift = bitsFor(t.cpuCount);
  const flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
  return [
    { function: fn, index: 0, flags, eax: threadShift, ebx: threads, ecx: (CPUID.LEVEL_TYPE_THREAD << 8) | 0, edx: apicId },
    { function: fn, index: 1, flags, eax: pkgShift, ebx: t.cpuCount, ecx: (CPUID.LEVEL_TYPE_CORE << 8) | 1, edx: apicId },
    { function: fn, index: 2, flags, eax: 0, ebx: 0, ecx: 2, edx: apicId },
  ];
}

export function vcpuCpuid(supported: readonly CpuidEntry[], t: CpuTopology): CpuidEntry[] {
  const apicId = t.cpuIndex;
  const threads = t.smt ? 2 : 1;
  const cores = Math.max(1, Math.floor(t.cpuCount / threads));
  const maxBasic = supported.find((e) => e.function === 0)?.eax ?? 0;
  const out: CpuidEntry[] = [];

  for (const src of supported) {
    const e = { ...src };
    switch (e.function) {
      case CPUID.LEAF_FEATURES:
        e.ebx = ((apicId & 0xff) << 24) | ((t.cpuCount & 0xff) << 16) | (CLFLUSH_LINE_QWORDS << 8);
        e.ecx |= CPUID.ECX_HYPERVISOR | CPUID.ECX_TSC_DEADLINE;
        if (t.cpuCount > 1) e.edx |= CPUID.EDX_HTT;
        else e.edx &= ~CPUID.EDX_HTT;
        break;
      case CPUID.LEAF_CACHE_PARAMS: {
        if ((e.eax & 0x1f) === 0) break; // no cache at this index
        const level = (e.eax >> 5) & 0x7;
        const sharing = level >= 3 ? t.cpuCount : threads;
        e.eax = (e.eax & 0x3fff) | (((sharing - 1) & 0xfff) << 14) | (((cores - 1) & 0x3f) << 26);
        break;
      }
      case CPUID.LEAF_EXT_TOPOLOGY:
      case CPUID.LEAF_V2_EXT_TOPOLOGY:
        continue; // rebuilt below
      case CPUID.LEAF_AMD_EXT_FEATURES:
        if (t.cpuCount > 1) e.ecx |= CPUID.AMD_ECX_CMP_LEGACY;
        break;
      case CPUID.LEAF_AMD_SIZE_IDS:
        // ECX[7:0] = NC (logical processors - 1), ECX[15:12] = ApicIdCoreIdSize.
        e.ecx = (e.ecx & ~0xf0ff) | ((t.cpuCount - 1) & 0xff) | (bitsFor(t.cpuCount) << 12);
        break;
      case CPUID.LEAF_AMD_CACHE_TOPOLOGY: {
        if ((e.eax & 0x1f) === 0) break;
        const level = (e.eax >> 5) & 0x7;
        const sharing = level >= 3 ? t.cpuCount : threads;
        e.eax = (e.eax & ~(0xfff << 14)) | (((sharing - 1) & 0xfff) << 14);
        break;
      }
      case CPUID.LEAF_AMD_EXT_APIC_ID:
        e.eax = apicId;
        e.ebx = (Math.floor(apicId / threads) & 0xff) | (((threads - 1) & 0xff) << 8);
        e.ecx = 0; // node 0, one node per processor
        break;
      default:
        break;
    }
    out.push(e);
  }
  if (maxBasic >= CPUID.LEAF_EXT_TOPOLOGY) out.push(...topologyLeaf(CPUID.LEAF_EXT_TOPOLOGY, apicId, t));
  if (maxBasic >= CPUID.LEAF_V2_EXT_TOPOLOGY) out.push(...topologyLeaf(CPUID.LEAF_V2_EXT_TOPOLOGY, apicId, t));
  return out;
}
