/**
 * Extended System Description Table (ACPI 6.5 §5.2.8): the list of 64-bit
 * addresses of every other table except the DSDT (reached through the FADT)
 * and the FACS.
 */

import { SIG_XSDT, XSDT_REVISION } from '../generated/acpi.js';
import { buildSdt, concatBytes, le64, SPARKLER_OEM, type OemInfo } from './sdt.js';

export function buildXsdt(tableAddrs: readonly number[], oem: OemInfo = SPARKLER_OEM): Uint8Array {
  return buildSdt(SIG_XSDT, XSDT_REVISION, concatBytes(tableAddrs.map((a) => le64(a, 'XSDT entry'))), oem);
}
