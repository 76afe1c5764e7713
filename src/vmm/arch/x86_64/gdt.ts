/** The boot GDT and the KVM segment descriptors that mirror it. */
import type { KvmSegment } from '../../../generated/kvm_structs.js';

/**
 * Descriptor "flags" as one 16-bit value: bits 0–7 the access byte
 * (P, DPL, S, type), bits 12–15 the G, D/B, L and AVL nibble (SDM vol. 3 §3.4.5).
 */
export const GDT_FLAGS = {
  CODE64: 0xa09b, // present, ring 0, exec/read, accessed; L=1, G=1
  CODE32: 0xc09b, // as above with D=1 instead of L (PVH enters in 32-bit protected mode)
  DATA: 0xc093, // present, ring 0, read/write, accessed; D/B=1, G=1
  TSS: 0x808b, // present, busy 64-bit TSS; G=1
} as const;

/** Selector = index × 8 (TI=0, RPL=0). */
export const GDT_INDEX = { NULL: 0, CODE: 1, DATA: 2, TSS: 3 } as const;

export function gdtEntry(flags: number, base: number, limit: number): bigint {
  const b = BigInt(base >>> 0);
  const l = BigInt(limit >>> 0);
  const f = BigInt(flags);
  return ((b & 0xff000000n) << 32n) | ((f & 0xf0ffn) << 40n) | ((l & 0xf0000n) << 32n) | ((b & 0xffffffn) << 16n) | (l & 0xffffn);
}

/** The KVM view of a descriptor, as the CPU would cache it after loading `index`. */
export function segmentFromGdt(entry: bigint, index: number): KvmSegment {
  const base = Number(((entry >> 16n) & 0xffffffn) | ((entry >> 32n) & 0xff000000n));
  const rawLimit = Number((entry & 0xffffn) | ((entry >> 32n) & 0xf0000n));
  const access = Number((entry >> 40n) & 0xffn);
  const high = Number((entry >> 52n) & 0xfn);
  const g = (high >> 3) & 1;
  return {
    base: BigInt(base),
    limit: g ? ((rawLimit << 12) | 0xfff) >>> 0 : rawLimit,
    selector: index * 8,
    type: access & 0xf,
    s: (access >> 4) & 1,
    dpl: (access >> 5) & 3,
    present: (access >> 7) & 1,
    avl: high & 1,
    l: (high >> 1) & 1,
    db: (high >> 2) & 1,
    g,
    unusable: (access >> 7) & 1 ? 0 : 1,
  };
}

/** The four boot descriptors: null, code (64- or 32-bit), data, TSS; flat 4 GiB. */
export function bootGdt(mode: '64' | '32'): bigint[] {
  return [
    gdtEntry(0, 0, 0),
    gdtEntry(mode === '64' ? GDT_FLAGS.CODE64 : GDT_FLAGS.CODE32, 0, 0xfffff),
    gdtEntry(GDT_FLAGS.DATA, 0, 0xfffff),
    gdtEntry(GDT_FLAGS.TSS, 0, 0xfffff),
  ];
}
