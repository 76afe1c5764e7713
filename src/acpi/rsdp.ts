/**
 * Root System Description Pointer (ACPI 6.5 §5.2.5.3). Revision 2, pointing
 * at the XSDT only: every table we build lives below 4 GiB, but Linux (and
 * ACPICA) prefer the XSDT whenever the RSDP revision is >= 2 and the XSDT
 * address is non-zero, so an RSDT would be dead weight.
 */

import { OEM_ID_LENGTH, RSDP, RSDP_LENGTH, RSDP_REVISION, RSDP_SIGNATURE, RSDP_V1_LENGTH } from '../generated/acpi.js';
import { asciiField, fixChecksum, le32, le64, putLe, u8, SPARKLER_OEM, type OemInfo } from './sdt.js';

export function buildRsdp(xsdtAddr: number, oem: OemInfo = SPARKLER_OEM): Uint8Array {
  const rsdp = new Uint8Array(RSDP_LENGTH);
  putLe(rsdp, RSDP.SIGNATURE, asciiField(RSDP_SIGNATURE, 8, 'RSDP signature'));
  putLe(rsdp, RSDP.OEM_ID, asciiField(oem.oemId, OEM_ID_LENGTH, 'OEM ID'));
  putLe(rsdp, RSDP.REVISION, u8(RSDP_REVISION));
  putLe(rsdp, RSDP.RSDT_ADDRESS, le32(0));
  putLe(rsdp, RSDP.LENGTH, le32(RSDP_LENGTH));
  putLe(rsdp, RSDP.XSDT_ADDRESS, le64(xsdtAddr, 'XSDT address'));
  // The v1 checksum covers only the first 20 bytes; the extended one covers
  // all 36 and so must be computed after the v1 checksum is in place.
  fixChecksum(rsdp, RSDP.CHECKSUM, RSDP_V1_LENGTH);
  fixChecksum(rsdp, RSDP.EXTENDED_CHECKSUM, RSDP_LENGTH);
  return rsdp;
}
