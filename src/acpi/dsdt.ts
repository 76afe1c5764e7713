/**
 * Differentiated System Description Table (ACPI 6.5 §5.2.11.1): the AML
 * namespace describing the platform devices Linux cannot find otherwise.
 * Everything lives under \_SB_:
 * - COM1, a 16550 (PNP0501): Linux's 8250_pnp driver binds to it;
 * - PS2K, the i8042 keyboard controller (PNP0303): the i8042 driver takes its
 *   data and command ports from the first two IO resources, in that order;
 * - Vnnn, one per virtio-mmio transport (_HID "LNRO0005"): the virtio_mmio
 *   driver's ACPI match. Debian kernels lack VIRTIO_MMIO_CMDLINE_DEVICES, so
 *   this is the only way those devices are found.
 */

import { DSDT_REVISION, SIG_DSDT } from '../generated/acpi.js';
import {
  device,
  eisaId,
  extendedInterrupt,
  integer,
  ioPort,
  irqNoFlags,
  memory32Fixed,
  name,
  resourceTemplate,
  scope,
  string,
  type Aml,
} from './aml.js';
import { buildSdt, SPARKLER_OEM, type OemInfo } from './sdt.js';

/** _HID of a 16550-compatible UART. */
export const HID_COM = 'PNP0501';
/** _HID of an IBM Enhanced (101/102-key) keyboard behind an 8042. */
export const HID_I8042_KBD = 'PNP0303';
/** _HID Linux's virtio_mmio driver matches (Linaro's ACPI ID). */
export const HID_VIRTIO_MMIO = 'LNRO0005';

export interface SerialPortDesc {
  /** First I/O port, e.g. 0x3f8. */
  readonly port: number;
  /** Number of I/O ports decoded (8 for a 16550). */
  readonly portCount: number;
  /** ISA IRQ (identity mapped to the same GSI). */
  readonly irq: number;
  /** _UID, distinguishing COM ports. */
  readonly uid: number;
}

export interface I8042Desc {
  readonly dataPort: number;
  readonly commandPort: number;
  /** ISA IRQ of the keyboard port. */
  readonly irq: number;
}

export interface VirtioMmioDesc {
  /** MMIO base, bytes; must lie below 4 GiB (Memory32Fixed). */
  readonly addr: number;
  /** MMIO window size, bytes. */
  readonly size: number;
  /** Global System Interrupt (IOAPIC pin) the device raises. */
  readonly gsi: number;
}

export function serialPortDevice(devName: string, d: SerialPortDesc): Aml {
  return device(devName, [
    name('_HID', eisaId(HID_COM)),
    name('_UID', integer(d.uid)),
    name(
      '_CRS',
      resourceTemplate([ioPort(d.port, d.port, 1, d.portCount), irqNoFlags([d.irq])]),
    ),
  ]);
}

export function i8042Device(devName: string, d: I8042Desc): Aml {
  return device(devName, [
    name('_HID', eisaId(HID_I8042_KBD)),
    name(
      '_CRS',
      resourceTemplate([ioPort(d.dataPort, d.dataPort, 1, 1), ioPort(d.commandPort, d.commandPort, 1, 1), irqNoFlags([d.irq])]),
    ),
  ]);
}

/**
 * A virtio-mmio transport. The interrupt is a GSI, hence an Extended
 * Interrupt descriptor rather than an ISA IRQ one: edge-triggered (the
 * device thread pulses the line with KVM_IRQ_LINE), active high, exclusive (one device per GSI).
 * _CCA = 1 declares DMA cache-coherent; x86 assumes that without it, other
 * architectures require it.
 */
export function virtioMmioDevice(devName: string, uid: number, d: VirtioMmioDesc): Aml {
  return device(devName, [
    name('_HID', string(HID_VIRTIO_MMIO)),
    name('_UID', integer(uid)),
    name('_CCA', integer(1)),
    name(
      '_CRS',
      resourceTemplate([
        memory32Fixed(true, d.addr, d.size),
        extendedInterrupt({ consumer: true, edge: true, activeLow: false, shared: false }, [d.gsi]),
      ]),
    ),
  ]);
}

/** Device names: V000, V001, ... (a NameSeg is 4 characters, so 4096 devices at most). */
export function virtioDeviceName(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > 0xfff) throw new RangeError(`virtio device index ${index} out of range`);
  return `V${index.toString(16).toUpperCase().padStart(3, '0')}`;
}

export interface DsdtConfig {
  readonly serial?: SerialPortDesc;
  readonly i8042?: I8042Desc;
  readonly virtioDevices: readonly VirtioMmioDesc[];
}

/** The DSDT: a definition block whose only content is Scope(\_SB_) with our devices. */
export function buildDsdt(cfg: DsdtConfig, oem: OemInfo = SPARKLER_OEM): Uint8Array {
  const devices: Aml[] = [];
  if (cfg.serial) devices.push(serialPortDevice('COM1', cfg.serial));
  if (cfg.i8042) devices.push(i8042Device('PS2K', cfg.i8042));
  cfg.virtioDevices.forEach((d, i) => devices.push(virtioMmioDevice(virtioDeviceName(i), i, d)));
  return buildSdt(SIG_DSDT, DSDT_REVISION, scope('\\_SB_', devices).toAml(), oem);
}
