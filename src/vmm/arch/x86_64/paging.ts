/** Identity page tables for the 64-bit boot: the first 1 GiB mapped with 2 MiB pages. */
import type { GuestMemory } from '../../../memory/guest_memory.js';
import { PTE_PAGE_SIZE, PTE_PRESENT, PTE_WRITABLE } from '../../../generated/x86.js';
import { PDE_START, PDPTE_START, PML4_START } from './layout.js';

const ENTRIES = 512;
const PAGE_2M = 2n * 1024n * 1024n;

/** Writes PML4 → PDPT → PD and returns the CR3 value (the PML4 address). */
export function writeIdentityPageTables(mem: GuestMemory): bigint {
  const rw = PTE_PRESENT | PTE_WRITABLE;
  mem.writeU64(PML4_START, BigInt(PDPTE_START) | rw);
  mem.writeU64(PDPTE_START, BigInt(PDE_START) | rw);
  for (let i = 0; i < ENTRIES; i++) {
    mem.writeU64(PDE_START + i * 8, (BigInt(i) * PAGE_2M) | rw | PTE_PAGE_SIZE);
  }
  return BigInt(PML4_START);
}
