/**
 * The ACPI tables an x86_64 sparkler guest boots with: RSDP -> XSDT ->
 * {FADT -> DSDT, MADT}. The RSDP sits at RSDP_ADDR, inside the 0xe0000..
 * 0xfffff window the kernel scans (the loader may also pass the address in
 * boot_params.acpi_rsdp_addr); the other tables are packed, 8-byte aligned,
 * from ACPI_TABLES_START up to ACPI_TABLES_END. That region must be reported
 * to the guest as reserved, not RAM.
 *
 * Interrupt routing. We rely on the routing KVM installs with
 * KVM_CREATE_IRQCHIP (kvm_setup_default_irq_routing, arch/x86/kvm/irq_comm.c):
 * GSI n -> IOAPIC pin n for n = 0..23, and GSIs 0..15 additionally -> 8259
 * pin n%8. The in-kernel PIT raises GSI 0 (pit_do_work in
 * arch/x86/kvm/i8254.c), COM1 is raised on GSI 4 and the i8042 on GSI 1.
 * So every ISA IRQ arrives on the IOAPIC pin of the same number, edge
 * triggered and active high, which is exactly what ACPI assumes for ISA IRQs
 * that have no Interrupt Source Override (§5.2.12.5). The MADT therefore
 * carries NO overrides:
 * - QEMU's customary "IRQ0 -> GSI 2" override would be wrong here: QEMU
 *   installs its own routing with the PIT on pin 2; KVM's default puts it on
 *   pin 0, and the guest timer would be wired to a silent pin.
 * - Even an identity override for IRQ 0 is harmful: with HW_REDUCED_ACPI the
 *   FADT's SCI_INT is 0, and Linux's acpi_parse_int_src_ovr treats an
 *   override whose source equals SCI_INT as the SCI's, forcing
 *   "conforms" flags to level/active-low.
 * If the VMM ever replaces the default routing (KVM_SET_GSI_ROUTING), the
 * overrides must be derived from that routing instead.
 */

import { buildDsdt, type DsdtConfig } from '../../../acpi/dsdt.js';
import { buildFadt } from '../../../acpi/fadt.js';
import { buildMadt, type MadtInterruptOverride } from '../../../acpi/madt.js';
import { buildRsdp } from '../../../acpi/rsdp.js';
import { buildXsdt } from '../../../acpi/xsdt.js';
import {
  LOCAL_APIC_ID_INVALID,
  LOCAL_APIC_NMI_ALL_PROCESSORS,
  RSDP_LENGTH,
  RSDP_SIGNATURE,
  SIG_DSDT,
  SIG_FADT,
  SIG_MADT,
  SIG_XSDT,
} from '../../../generated/acpi.js';
import type { GuestMemory } from '../../../memory/guest_memory.js';
import {
  ACPI_TABLES_END,
  ACPI_TABLES_START,
  COM1_IRQ,
  COM1_PORT,
  I8042_COMMAND_PORT,
  I8042_DATA_PORT,
  I8042_IRQ,
  IOAPIC_ADDR,
  IRQ_MAX,
  LAPIC_ADDR,
  RSDP_ADDR,
} from './layout.js';

export interface VirtioMmioAcpiDevice {
  /** MMIO base, bytes (below 4 GiB). */
  addr: number;
  /** MMIO window size, bytes. */
  size: number;
  /** GSI = IOAPIC pin the device raises. */
  gsi: number;
}

export interface AcpiConfig {
  vcpuCount: number;
  virtioDevices: VirtioMmioAcpiDevice[];
  /** COM1 (16550 at COM1_PORT, IRQ COM1_IRQ) is emulated. */
  serial: boolean;
  /** The i8042 at I8042_DATA_PORT/I8042_COMMAND_PORT, IRQ I8042_IRQ, is emulated. */
  i8042: boolean;
  /** A CMOS RTC at 0x70/0x71 is emulated (default: no). */
  cmosRtc?: boolean;
}

export interface AcpiTables {
  rsdpAddr: number;
  /** Every table with its guest physical address; the RSDP's signature is "RSD PTR " (8 characters). */
  blobs: Array<{ addr: number; bytes: Uint8Array; signature: string }>;
}

/** Where the tables other than the RSDP may go: [start, end). */
export interface AcpiRegion {
  start: number;
  end: number;
}

/** KVM's default routing is the identity on GSIs 0..23 (see the file comment), so no ISA IRQ needs an override. */
export const KVM_DEFAULT_ROUTING_OVERRIDES: readonly MadtInterruptOverride[] = [];

/** A 16550 decodes 8 consecutive ports. */
const COM1_PORT_COUNT = 8;
/** GSI 0 carries the PIT and GSI 2 is the 8259 cascade input under KVM's default routing. */
const RESERVED_GSIS = [0, 2];
/** Tables are placed on 8-byte boundaries (natural alignment of their 64-bit fields). */
const TABLE_ALIGNMENT = 8;
/** The highest vCPU count xAPIC entries can describe: APIC IDs 0..254 (0xff is the broadcast ID). */
export const MAX_VCPUS = LOCAL_APIC_ID_INVALID;

const hex = (n: number): string => `0x${n.toString(16)}`;

function validate(cfg: AcpiConfig): void {
  if (!Number.isInteger(cfg.vcpuCount) || cfg.vcpuCount < 1 || cfg.vcpuCount > MAX_VCPUS) {
    throw new RangeError(`ACPI: vcpuCount ${cfg.vcpuCount} must be an integer in 1..${MAX_VCPUS}`);
  }
  const taken = new Map<number, string>(RESERVED_GSIS.map((g) => [g, g === 0 ? 'the PIT' : 'the 8259 cascade']));
  if (cfg.serial) taken.set(COM1_IRQ, 'COM1');
  if (cfg.i8042) taken.set(I8042_IRQ, 'the i8042');
  const ranges: Array<[number, number]> = [];
  cfg.virtioDevices.forEach((d, i) => {
    const what = `ACPI: virtio-mmio device ${i}`;
    if (!Number.isSafeInteger(d.addr) || !Number.isSafeInteger(d.size) || d.addr < 0 || d.size <= 0 || d.addr + d.size > 2 ** 32) {
      throw new RangeError(`${what}: MMIO window ${hex(d.addr)}+${hex(d.size)} must be non-empty and below 4 GiB`);
    }
    for (const [a, e] of ranges) {
      if (d.addr < e && a < d.addr + d.size) throw new RangeError(`${what}: MMIO window ${hex(d.addr)} overlaps another device`);
    }
    ranges.push([d.addr, d.addr + d.size]);
    if (!Number.isInteger(d.gsi) || d.gsi < 0 || d.gsi > IRQ_MAX) {
      throw new RangeError(`${what}: GSI ${d.gsi} is not an IOAPIC pin (0..${IRQ_MAX})`);
    }
    const owner = taken.get(d.gsi);
    if (owner !== undefined) throw new RangeError(`${what}: GSI ${d.gsi} is already used by ${owner}`);
    taken.set(d.gsi, `virtio-mmio device ${i}`);
  });
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Hands out 8-byte aligned addresses in [start, end), failing loudly when the tables do not fit. */
class TablePacker {
  private next: number;
  constructor(private readonly region: AcpiRegion) {
    this.next = region.start;
  }
  place(signature: string, length: number): number {
    const addr = alignUp(this.next, TABLE_ALIGNMENT);
    if (addr + length > this.region.end) {
      throw new RangeError(
        `ACPI: tables do not fit: ${signature} (${length} bytes) would end at ${hex(addr + length)}, ` +
          `past the ACPI region end ${hex(this.region.end)}; reduce vCPUs or devices or enlarge the region`,
      );
    }
    this.next = addr + length;
    return addr;
  }
}

/** Builds every table and decides where it goes. Pure: touches no guest memory. */
export function buildAcpiTables(cfg: AcpiConfig, region: AcpiRegion = { start: ACPI_TABLES_START, end: ACPI_TABLES_END }): AcpiTables {
  validate(cfg);
  if (RSDP_ADDR < region.end && region.start < RSDP_ADDR + RSDP_LENGTH) {
    throw new RangeError(`ACPI: table region ${hex(region.start)}..${hex(region.end)} overlaps the RSDP at ${hex(RSDP_ADDR)}`);
  }
  const packer = new TablePacker(region);

  const dsdtCfg: DsdtConfig = {
    serial: cfg.serial ? { port: COM1_PORT, portCount: COM1_PORT_COUNT, irq: COM1_IRQ, uid: 0 } : undefined,
    i8042: cfg.i8042 ? { dataPort: I8042_DATA_PORT, commandPort: I8042_COMMAND_PORT, irq: I8042_IRQ } : undefined,
    virtioDevices: cfg.virtioDevices,
  };
  const dsdt = buildDsdt(dsdtCfg);
  const dsdtAddr = packer.place(SIG_DSDT, dsdt.byteLength);

  const fadt = buildFadt({ dsdtAddr, i8042: cfg.i8042, cmosRtc: cfg.cmosRtc ?? false });
  const fadtAddr = packer.place(SIG_FADT, fadt.byteLength);

  const madt = buildMadt({
    lapicAddr: LAPIC_ADDR,
    // KVM_CREATE_IRQCHIP also creates the dual 8259, so the platform is PC-AT compatible.
    pcatCompat: true,
    // APIC ID = vCPU index, the initial APIC ID KVM gives vCPU i.
    localApics: Array.from({ length: cfg.vcpuCount }, (_, i) => ({ processorUid: i, apicId: i, enabled: true })),
    // KVM's in-kernel IOAPIC: 24 pins, reset ID 0, carrying GSIs 0..23.
    ioApics: [{ id: 0, addr: IOAPIC_ADDR, gsiBase: 0 }],
    overrides: KVM_DEFAULT_ROUTING_OVERRIDES,
    // LINT1 is the NMI input on every CPU (how the VMM and Linux program the LVT).
    localApicNmis: [{ processorUid: LOCAL_APIC_NMI_ALL_PROCESSORS, flags: 0, lint: 1 }],
  });
  const madtAddr = packer.place(SIG_MADT, madt.byteLength);

  const xsdt = buildXsdt([fadtAddr, madtAddr]);
  const xsdtAddr = packer.place(SIG_XSDT, xsdt.byteLength);

  const rsdp = buildRsdp(xsdtAddr);
  return {
    rsdpAddr: RSDP_ADDR,
    blobs: [
      { addr: RSDP_ADDR, bytes: rsdp, signature: RSDP_SIGNATURE },
      { addr: xsdtAddr, bytes: xsdt, signature: SIG_XSDT },
      { addr: fadtAddr, bytes: fadt, signature: SIG_FADT },
      { addr: madtAddr, bytes: madt, signature: SIG_MADT },
      { addr: dsdtAddr, bytes: dsdt, signature: SIG_DSDT },
    ],
  };
}

/** Writes all tables into guest memory; returns the RSDP address for boot_params.acpi_rsdp_addr. */
export function writeAcpiTables(mem: GuestMemory, cfg: AcpiConfig): number {
  const tables = buildAcpiTables(cfg);
  for (const blob of tables.blobs) mem.write(blob.addr, blob.bytes);
  return tables.rsdpAddr;
}
