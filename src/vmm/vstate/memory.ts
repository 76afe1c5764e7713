/** Guest RAM backed by anonymous host mappings and registered with KVM. */
import { GuestMemory, type GuestRegion } from '../../memory/guest_memory.js';
import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../generated/libc.js';
import * as libc from '../../sys/libc.js';
import type { VmFd } from '../../kvm/vm_fd.js';
import { ramRegions, SIZES } from '../arch/x86_64/layout.js';

/**
 * Largest single JS view of guest RAM. Views over 2 GiB are avoided because
 * typed-array indices beyond 2^31 are slow paths in V8; a large region is
 * exposed as several adjacent regions instead (one KVM slot each).
 */
const MAX_VIEW_BYTES = 2 * SIZES.GiB;

export interface GuestMemoryMapping {
  memory: GuestMemory;
  /** The host mappings, for munmap at teardown. */
  mappings: Array<{ addr: bigint; len: number }>;
}

/** Maps `memSize` bytes of guest RAM (laid out around the MMIO gap). Pages are only touched when the guest uses them. */
export function createGuestMemory(memSize: number): GuestMemoryMapping {
  const regions: GuestRegion[] = [];
  const mappings: Array<{ addr: bigint; len: number }> = [];
  for (const r of ramRegions(memSize)) {
    const host = libc.mmap(r.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    mappings.push({ addr: host, len: r.size });
    for (let off = 0; off < r.size; off += MAX_VIEW_BYTES) {
      const size = Math.min(MAX_VIEW_BYTES, r.size - off);
      const hostAddr = host + BigInt(off);
      regions.push({ guestAddr: r.guestAddr + off, size, hostAddr, bytes: new Uint8Array(libc.view(hostAddr, size)) });
    }
  }
  return { memory: new GuestMemory(regions), mappings };
}

/** One KVM memory slot per region. */
export function registerGuestMemory(vm: VmFd, memory: GuestMemory): void {
  memory.regions.forEach((r, slot) => vm.setUserMemoryRegion(slot, r.guestAddr, r.size, r.hostAddr));
}

export function unmapGuestMemory(m: GuestMemoryMapping): void {
  for (const { addr, len } of m.mappings) libc.munmap(addr, len);
}

/** Where each region of guest RAM is mapped: enough for another thread to build its own views. */
export interface GuestMemoryLayout { regions: Array<{ guestAddr: number; size: number; hostAddr: bigint }> }

export function guestMemoryLayout(memory: GuestMemory): GuestMemoryLayout {
  return { regions: memory.regions.map(({ guestAddr, size, hostAddr }) => ({ guestAddr, size, hostAddr })) };
}

/** This thread's zero-copy view of guest RAM mapped by another thread of the process. */
export function attachGuestMemory(layout: GuestMemoryLayout): GuestMemory {
  return new GuestMemory(layout.regions.map((r) => ({ ...r, bytes: new Uint8Array(libc.view(r.hostAddr, r.size)) })));
}
