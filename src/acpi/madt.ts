/**
 * Multiple APIC Description Table (ACPI 6.5 §5.2.12): the local APICs (one
 * per vCPU), the IOAPICs, ISA interrupt source overrides and local APIC NMI
 * wiring. With CONFIG_X86_MPPARSE off this table is the only way a Linux
 * guest learns about its CPUs and its IOAPIC.
 */

import {
  ISO_BUS_ISA,
  LOCAL_APIC_ENABLED,
  LOCAL_APIC_ID_INVALID,
  MADT_FLAG_PCAT_COMPAT,
  MADT_LEN,
  MADT_REVISION,
  MADT_TYPE,
  SIG_MADT,
} from '../generated/acpi.js';
import { buildSdt, concatBytes, le16, le32, u8, SPARKLER_OEM, type OemInfo } from './sdt.js';

export interface MadtLocalApic {
  /** ACPI Processor UID (matches a Processor/Device _UID; we have none, so it equals the APIC ID). */
  readonly processorUid: number;
  readonly apicId: number;
  readonly enabled: boolean;
}

export interface MadtIoApic {
  readonly id: number;
  /** MMIO base, bytes. */
  readonly addr: number;
  /** First Global System Interrupt this IOAPIC's pin 0 carries. */
  readonly gsiBase: number;
}

/** An ISA IRQ that does not arrive on the identity-mapped GSI, or needs non-ISA flags (§5.2.12.5). */
export interface MadtInterruptOverride {
  readonly isaIrq: number;
  readonly gsi: number;
  /** MPS INTI flags (polarity | trigger), see MPS_INTI. */
  readonly flags: number;
}

/** Which LINT input of which processor(s) is wired to NMI (§5.2.12.7). */
export interface MadtLocalApicNmi {
  /** 0xff = all processors. */
  readonly processorUid: number;
  /** MPS INTI flags; 0 = conforms to the bus (edge, active high for NMI). */
  readonly flags: number;
  /** 0 = LINT0, 1 = LINT1. */
  readonly lint: 0 | 1;
}

export interface MadtConfig {
  /** Local APIC MMIO base (32-bit), bytes. */
  readonly lapicAddr: number;
  /** A PC-AT dual 8259 is also present (it must then be masked by the OS in APIC mode). */
  readonly pcatCompat: boolean;
  readonly localApics: readonly MadtLocalApic[];
  readonly ioApics: readonly MadtIoApic[];
  readonly overrides?: readonly MadtInterruptOverride[];
  readonly localApicNmis?: readonly MadtLocalApicNmi[];
}

export function localApicEntry(e: MadtLocalApic): Uint8Array {
  if (e.apicId === LOCAL_APIC_ID_INVALID) throw new RangeError('APIC ID 0xff is reserved; use x2APIC entries beyond 254');
  return concatBytes([
    u8(MADT_TYPE.LOCAL_APIC),
    u8(MADT_LEN.LOCAL_APIC),
    u8(e.processorUid, 'ACPI processor UID'),
    u8(e.apicId, 'APIC ID'),
    le32(e.enabled ? LOCAL_APIC_ENABLED : 0),
  ]);
}

export function ioApicEntry(e: MadtIoApic): Uint8Array {
  return concatBytes([
    u8(MADT_TYPE.IO_APIC),
    u8(MADT_LEN.IO_APIC),
    u8(e.id, 'IOAPIC ID'),
    u8(0), // reserved
    le32(e.addr, 'IOAPIC address'),
    le32(e.gsiBase, 'IOAPIC GSI base'),
  ]);
}

export function interruptOverrideEntry(e: MadtInterruptOverride): Uint8Array {
  return concatBytes([
    u8(MADT_TYPE.INTERRUPT_SOURCE_OVERRIDE),
    u8(MADT_LEN.INTERRUPT_SOURCE_OVERRIDE),
    u8(ISO_BUS_ISA),
    u8(e.isaIrq, 'ISA IRQ'),
    le32(e.gsi, 'GSI'),
    le16(e.flags, 'MPS INTI flags'),
  ]);
}

export function localApicNmiEntry(e: MadtLocalApicNmi): Uint8Array {
  return concatBytes([
    u8(MADT_TYPE.LOCAL_APIC_NMI),
    u8(MADT_LEN.LOCAL_APIC_NMI),
    u8(e.processorUid, 'ACPI processor UID'),
    le16(e.flags, 'MPS INTI flags'),
    u8(e.lint),
  ]);
}

export function buildMadt(cfg: MadtConfig, oem: OemInfo = SPARKLER_OEM): Uint8Array {
  const body = concatBytes([
    le32(cfg.lapicAddr, 'local APIC address'),
    le32(cfg.pcatCompat ? MADT_FLAG_PCAT_COMPAT : 0),
    // Linux numbers CPUs in MADT order, so the boot CPU (APIC ID 0) comes first.
    ...cfg.localApics.map(localApicEntry),
    ...cfg.ioApics.map(ioApicEntry),
    ...(cfg.overrides ?? []).map(interruptOverrideEntry),
    ...(cfg.localApicNmis ?? []).map(localApicNmiEntry),
  ]);
  return buildSdt(SIG_MADT, MADT_REVISION, body, oem);
}
