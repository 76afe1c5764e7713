/**
 * Fixed ACPI Description Table (ACPI 6.5 §5.2.9), revision 6.5, for a
 * Hardware-Reduced ACPI platform (§4.1): no PM1/GPE register blocks, no SCI,
 * no FACS, no fixed-feature buttons. All the fixed-hardware fields stay zero,
 * which the spec allows when HW_REDUCED_ACPI is set. The DSDT is given only
 * through X_DSDT (§5.2.9: when X_DSDT is usable the 32-bit DSDT field must be
 * ignored, and ACPICA warns when the two disagree, so we leave DSDT at 0).
 *
 * What Linux does with the flags (arch/x86/kernel/acpi/boot.c,
 * acpi_parse_fadt / acpi_generic_reduced_hw_init; drivers/pci/pci-acpi.c):
 * - HW_REDUCED_ACPI: x86 skips the legacy timer setup and uses a null legacy
 *   PIC; every interrupt goes through the IOAPIC as described by the MADT
 *   and the DSDT _CRS objects.
 * - PWR_BUTTON/SLP_BUTTON set: no fixed-feature buttons, so the ACPI core
 *   does not register LNXPWRBN/LNXSLPBN devices that would poke PM1 registers
 *   we do not have.
 * - IAPC 8042 (when an i8042 is emulated): keeps x86_platform.legacy.i8042 at
 *   "expected present". The i8042 driver finds the controller through the
 *   DSDT's PNP0303 device anyway; the flag only matters as its fallback.
 * - IAPC VGA_NOT_PRESENT: sets x86_platform.legacy.no_vga, so nothing probes
 *   the VGA ports/legacy framebuffer we do not emulate.
 * - IAPC CMOS_RTC_NOT_PRESENT (unless a CMOS RTC is emulated): clears
 *   x86_platform.legacy.rtc, so no rtc_cmos platform device probes 0x70/0x71.
 * - IAPC MSI_NOT_SUPPORTED and PCIE_ASPM_CONTROLS: pci_no_msi() and
 *   pcie_no_aspm(). There is no PCI bus at all (virtio-mmio only), so these
 *   are statements of fact; a future PCI transport with MSI must drop them.
 * - LEGACY_DEVICES stays clear: every ISA device we have is in the DSDT
 *   (Linux only uses the bit to turn PnP BIOS probing off, which we want).
 */

import {
  FADT,
  FADT_FLAG,
  FADT_HYPERVISOR_VENDOR_ID_LENGTH,
  FADT_LENGTH,
  FADT_MINOR_REVISION,
  FADT_REVISION,
  IAPC_BOOT_ARCH,
  PM_PROFILE_UNSPECIFIED,
  SDT_HEADER_LENGTH,
  SIG_FADT,
} from '../generated/acpi.js';
import { asciiField, buildSdt, le16, le32, le64, putLe, u8, SPARKLER_OEM, type OemInfo } from './sdt.js';

export interface FadtConfig {
  /** Guest physical address of the DSDT (written to X_DSDT). */
  readonly dsdtAddr: number;
  /** An i8042 keyboard controller answers at ports 0x60/0x64. */
  readonly i8042: boolean;
  /** A CMOS RTC answers at ports 0x70/0x71 (sparkler emulates none by default). */
  readonly cmosRtc?: boolean;
  /** 8 ASCII characters in the FADT's Hypervisor Vendor Identity field. */
  readonly hypervisorVendorId?: string;
}

export const SPARKLER_HYPERVISOR_VENDOR_ID = 'SPARKLER';

/** The FADT Flags word: hardware-reduced ACPI without fixed-feature buttons. */
export const FADT_FLAGS = FADT_FLAG.HW_REDUCED_ACPI | FADT_FLAG.PWR_BUTTON | FADT_FLAG.SLP_BUTTON;

/** IA-PC Boot Architecture Flags for a VM with no VGA, no PCI and optionally an i8042 / CMOS RTC. */
export function iapcBootArchFlags(cfg: Pick<FadtConfig, 'i8042' | 'cmosRtc'>): number {
  let flags = IAPC_BOOT_ARCH.VGA_NOT_PRESENT | IAPC_BOOT_ARCH.MSI_NOT_SUPPORTED | IAPC_BOOT_ARCH.PCIE_ASPM_CONTROLS;
  if (cfg.i8042) flags |= IAPC_BOOT_ARCH.I8042;
  if (!cfg.cmosRtc) flags |= IAPC_BOOT_ARCH.CMOS_RTC_NOT_PRESENT;
  return flags;
}

export function buildFadt(cfg: FadtConfig, oem: OemInfo = SPARKLER_OEM): Uint8Array {
  // Build the body with table-relative offsets, then strip the header part:
  // buildSdt prepends the real header.
  const t = new Uint8Array(FADT_LENGTH);
  putLe(t, FADT.FIRMWARE_CTRL, le32(0)); // no FACS: allowed with HW_REDUCED_ACPI (§5.2.10)
  putLe(t, FADT.DSDT, le32(0));
  putLe(t, FADT.PREFERRED_PM_PROFILE, u8(PM_PROFILE_UNSPECIFIED));
  putLe(t, FADT.SCI_INT, le16(0)); // no SCI on a hardware-reduced platform
  putLe(t, FADT.IAPC_BOOT_ARCH, le16(iapcBootArchFlags(cfg)));
  putLe(t, FADT.FLAGS, le32(FADT_FLAGS));
  putLe(t, FADT.MINOR_VERSION, u8(FADT_MINOR_REVISION));
  putLe(t, FADT.X_FIRMWARE_CTRL, le64(0));
  putLe(t, FADT.X_DSDT, le64(cfg.dsdtAddr, 'DSDT address'));
  putLe(
    t,
    FADT.HYPERVISOR_VENDOR_ID,
    asciiField(cfg.hypervisorVendorId ?? SPARKLER_HYPERVISOR_VENDOR_ID, FADT_HYPERVISOR_VENDOR_ID_LENGTH, 'hypervisor vendor ID', 0),
  );
  return buildSdt(SIG_FADT, FADT_REVISION, t.subarray(SDT_HEADER_LENGTH), oem);
}
