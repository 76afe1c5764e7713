/**
 * Constants from the ACPI Specification, version 6.5 (August 2022), transcribed
 * by hand. Section numbers refer to that version. Offsets and lengths are in
 * bytes; multi-byte fields are little-endian.
 */

// ---------------------------------------------------------------------------
// §5.2.5.3 Root System Description Pointer (RSDP)
// ---------------------------------------------------------------------------

/** 8-byte signature, note the trailing space. */
export const RSDP_SIGNATURE = 'RSD PTR ';
/** Revision 2 = ACPI 2.0+ layout with XsdtAddress and extended checksum. */
export const RSDP_REVISION = 2;
/** The ACPI 1.0 part covered by the first checksum. */
export const RSDP_V1_LENGTH = 20;
/** The whole ACPI 2.0+ structure, covered by the extended checksum. */
export const RSDP_LENGTH = 36;
export const RSDP = {
  SIGNATURE: 0, // 8 bytes
  CHECKSUM: 8, // 1: bytes 0..19 sum to zero
  OEM_ID: 9, // 6
  REVISION: 15, // 1
  RSDT_ADDRESS: 16, // 4
  LENGTH: 20, // 4
  XSDT_ADDRESS: 24, // 8
  EXTENDED_CHECKSUM: 32, // 1: bytes 0..35 sum to zero
  // 33..35 reserved
} as const;
/** §5.2.5.1: on IA-PC the OS scans 0xe0000..0xfffff for the RSDP on 16-byte boundaries. */
export const RSDP_ALIGNMENT = 16;

// ---------------------------------------------------------------------------
// §5.2.6 System Description Table Header
// ---------------------------------------------------------------------------

export const SDT_HEADER_LENGTH = 36;
export const SDT = {
  SIGNATURE: 0, // 4
  LENGTH: 4, // 4: whole table including the header
  REVISION: 8, // 1
  CHECKSUM: 9, // 1: whole table sums to zero
  OEM_ID: 10, // 6
  OEM_TABLE_ID: 16, // 8
  OEM_REVISION: 24, // 4
  CREATOR_ID: 28, // 4
  CREATOR_REVISION: 32, // 4
} as const;
export const OEM_ID_LENGTH = 6;
export const OEM_TABLE_ID_LENGTH = 8;
export const CREATOR_ID_LENGTH = 4;

/** Table signatures (§5.2.6 Table 5.5). */
export const SIG_XSDT = 'XSDT';
export const SIG_FADT = 'FACP';
export const SIG_MADT = 'APIC';
export const SIG_DSDT = 'DSDT';

// ---------------------------------------------------------------------------
// §5.2.8 Extended System Description Table (XSDT)
// ---------------------------------------------------------------------------

export const XSDT_REVISION = 1;
/** Each entry is a 64-bit physical address. */
export const XSDT_ENTRY_SIZE = 8;

// ---------------------------------------------------------------------------
// §5.2.9 Fixed ACPI Description Table (FADT)
// ---------------------------------------------------------------------------

export const FADT_REVISION = 6;
export const FADT_MINOR_REVISION = 5;
/** Length of a revision 6 FADT (up to and including the Hypervisor Vendor Identity). */
export const FADT_LENGTH = 276;
export const FADT = {
  FIRMWARE_CTRL: 36, // 4
  DSDT: 40, // 4
  PREFERRED_PM_PROFILE: 45, // 1
  SCI_INT: 46, // 2 (ignored when HW_REDUCED_ACPI is set)
  IAPC_BOOT_ARCH: 109, // 2 (§5.2.9.3)
  FLAGS: 112, // 4 (§5.2.9 Table 5.10)
  RESET_REG: 116, // 12 (GAS)
  RESET_VALUE: 128, // 1
  ARM_BOOT_ARCH: 129, // 2
  MINOR_VERSION: 131, // 1
  X_FIRMWARE_CTRL: 132, // 8
  X_DSDT: 140, // 8
  SLEEP_CONTROL_REG: 244, // 12 (GAS)
  SLEEP_STATUS_REG: 256, // 12 (GAS)
  HYPERVISOR_VENDOR_ID: 268, // 8
} as const;
export const FADT_HYPERVISOR_VENDOR_ID_LENGTH = 8;

/** §5.2.9.1 Preferred_PM_Profile. */
export const PM_PROFILE_UNSPECIFIED = 0;

/** §5.2.9 Table 5.10 Fixed ACPI Description Table Fixed Feature Flags (bit masks). */
export const FADT_FLAG = {
  /** Set: there is no fixed-feature power button (or it is a control-method device). */
  PWR_BUTTON: 1 << 4,
  /** Set: there is no fixed-feature sleep button (or it is a control-method device). */
  SLP_BUTTON: 1 << 5,
  /** Set: the platform implements the Hardware-Reduced ACPI interface (§4.1). */
  HW_REDUCED_ACPI: 1 << 20,
} as const;

/** §5.2.9.3 IA-PC Boot Architecture Flags (bit masks). */
export const IAPC_BOOT_ARCH = {
  /** User-visible ISA/LPC devices beyond those in the DSDT. */
  LEGACY_DEVICES: 1 << 0,
  /** An 8042 (or equivalent) keyboard controller is present. */
  I8042: 1 << 1,
  /** Probing for VGA hardware is not safe / no VGA present. */
  VGA_NOT_PRESENT: 1 << 2,
  /** OSPM must not enable MSI on this platform. */
  MSI_NOT_SUPPORTED: 1 << 3,
  /** OSPM must not enable PCIe ASPM control. */
  PCIE_ASPM_CONTROLS: 1 << 4,
  /** No CMOS RTC at the legacy ports. */
  CMOS_RTC_NOT_PRESENT: 1 << 5,
} as const;

// ---------------------------------------------------------------------------
// §5.2.12 Multiple APIC Description Table (MADT)
// ---------------------------------------------------------------------------

export const MADT_REVISION = 6;
/** SDT header + Local Interrupt Controller Address (4) + Flags (4). */
export const MADT_HEADER_LENGTH = 44;
export const MADT = {
  LOCAL_APIC_ADDRESS: 36, // 4
  FLAGS: 40, // 4
} as const;
/** §5.2.12 Table 5.19 Multiple APIC Flags: a PC-AT dual 8259 is also present. */
export const MADT_FLAG_PCAT_COMPAT = 1 << 0;

/** §5.2.12 Table 5.20 Interrupt Controller Structure Types, with their fixed lengths. */
export const MADT_TYPE = {
  LOCAL_APIC: 0, // §5.2.12.2
  IO_APIC: 1, // §5.2.12.3
  INTERRUPT_SOURCE_OVERRIDE: 2, // §5.2.12.5
  LOCAL_APIC_NMI: 4, // §5.2.12.7
} as const;
export const MADT_LEN = {
  LOCAL_APIC: 8,
  IO_APIC: 12,
  INTERRUPT_SOURCE_OVERRIDE: 10,
  LOCAL_APIC_NMI: 6,
} as const;
/** §5.2.12.2 Table 5.23 Local APIC Flags. */
export const LOCAL_APIC_ENABLED = 1 << 0;
/** §5.2.12.2: an APIC ID of 0xff is not a valid xAPIC ID (it is the broadcast ID). */
export const LOCAL_APIC_ID_INVALID = 0xff;
/** §5.2.12.7: ACPI Processor UID 0xff in a Local APIC NMI means "all processors". */
export const LOCAL_APIC_NMI_ALL_PROCESSORS = 0xff;
/** §5.2.12.5 Interrupt Source Override: Bus 0 = ISA. */
export const ISO_BUS_ISA = 0;
/** §5.2.12.5 Table 5.26 MPS INTI Flags: polarity (bits 1:0) and trigger mode (bits 3:2). */
export const MPS_INTI = {
  POLARITY_CONFORMS: 0b00,
  POLARITY_ACTIVE_HIGH: 0b01,
  POLARITY_ACTIVE_LOW: 0b11,
  TRIGGER_CONFORMS: 0b00 << 2,
  TRIGGER_EDGE: 0b01 << 2,
  TRIGGER_LEVEL: 0b11 << 2,
} as const;

// ---------------------------------------------------------------------------
// §5.2.11.1 Differentiated System Description Table (DSDT)
// ---------------------------------------------------------------------------

/** Revision 2+: AML integers are 64 bits wide (§19.6.28 DefinitionBlock). */
export const DSDT_REVISION = 2;

// ---------------------------------------------------------------------------
// §20 ACPI Machine Language (AML) encodings
// ---------------------------------------------------------------------------

/** §20.2.3 Data Objects Encoding, §20.2.5 Term Objects Encoding. */
export const AML = {
  ZERO_OP: 0x00,
  ONE_OP: 0x01,
  ALIAS_OP: 0x06,
  NAME_OP: 0x08,
  BYTE_PREFIX: 0x0a,
  WORD_PREFIX: 0x0b,
  DWORD_PREFIX: 0x0c,
  STRING_PREFIX: 0x0d,
  QWORD_PREFIX: 0x0e,
  SCOPE_OP: 0x10,
  BUFFER_OP: 0x11,
  PACKAGE_OP: 0x12,
  METHOD_OP: 0x14,
  /** §20.2.2 Name Objects Encoding. */
  DUAL_NAME_PREFIX: 0x2e,
  MULTI_NAME_PREFIX: 0x2f,
  ROOT_CHAR: 0x5c, // '\'
  PARENT_PREFIX_CHAR: 0x5e, // '^'
  NULL_NAME: 0x00,
  EXT_OP_PREFIX: 0x5b,
  /** Second byte after EXT_OP_PREFIX. */
  DEVICE_OP: 0x82,
  RETURN_OP: 0xa4,
  ONES_OP: 0xff,
} as const;

/** §20.2.4 Package Length Encoding: largest value each encoding size can hold (it includes its own bytes). */
export const PKG_LENGTH_MAX = [0x3f, 0xfff, 0xfffff, 0xfffffff] as const;
/** §20.2.3: a Package's NumElements is a single byte. */
export const PACKAGE_MAX_ELEMENTS = 255;
/** §20.2.5.2 MethodFlags: bits 2:0 ArgCount, bit 3 SerializeFlag, bits 7:4 SyncLevel. */
export const METHOD_MAX_ARGS = 7;
export const METHOD_FLAG_SERIALIZED = 1 << 3;

// ---------------------------------------------------------------------------
// §6.4 Resource Data Types for ACPI
// ---------------------------------------------------------------------------

/** §6.4.2 Small resource data: tag byte = (item name << 3) | length. */
export const RES_SMALL = {
  IRQ_NO_FLAGS: (0x04 << 3) | 2, // §6.4.2.1, 0x22
  IRQ: (0x04 << 3) | 3, // §6.4.2.1, 0x23
  IO: (0x08 << 3) | 7, // §6.4.2.5, 0x47
  END_TAG: (0x0f << 3) | 1, // §6.4.2.9, 0x79
} as const;
/** §6.4.3 Large resource data: tag byte = 0x80 | item name, then a 16-bit length. */
export const RES_LARGE = {
  MEMORY32_FIXED: 0x80 | 0x06, // §6.4.3.4, 0x86
  EXTENDED_INTERRUPT: 0x80 | 0x09, // §6.4.3.6, 0x89
} as const;
/** §6.4.3.4: body length of a Memory32Fixed descriptor. */
export const MEMORY32_FIXED_LENGTH = 9;
/** §6.4.3.4 information byte bit 0: 1 = read/write, 0 = read-only. */
export const MEMORY32_FIXED_READ_WRITE = 1 << 0;
/** §6.4.2.5 IO information byte bit 0: 1 = decodes 16 address bits, 0 = 10 bits. */
export const IO_DECODE_16 = 1 << 0;
/** §6.4.2.1: IRQ mask covers IRQ 0..15. */
export const IRQ_DESCRIPTOR_MAX_IRQ = 15;
/** §6.4.3.6 Extended Interrupt Descriptor flag bits. */
export const EXT_IRQ = {
  CONSUMER: 1 << 0, // 1 = ResourceConsumer
  EDGE: 1 << 1, // 1 = edge-triggered, 0 = level
  ACTIVE_LOW: 1 << 2, // 1 = active-low, 0 = active-high
  SHARED: 1 << 3, // 1 = shared, 0 = exclusive
  WAKE_CAPABLE: 1 << 4,
} as const;

// ---------------------------------------------------------------------------
// §6.1 Device identification objects
// ---------------------------------------------------------------------------

/** §6.3.7 _STA bits: present, enabled, shown in UI, functioning. */
export const STA_PRESENT_ENABLED_SHOWN_FUNCTIONING = 0x0f;
