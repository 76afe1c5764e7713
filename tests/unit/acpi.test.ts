/**
 * ACPI tables: AML encodings of known values, table structure and checksums,
 * placement in guest memory, and finally ACPICA's own tools (Debian package
 * acpica-tools): `iasl -d` must disassemble every table cleanly, recompiling
 * the disassembly must give back our bytes, and `acpiexec` (the interpreter
 * Linux also uses) must load the DSDT and evaluate every device's objects.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

import {
  buffer,
  device,
  eisaId,
  eisaIdValue,
  extendedInterrupt,
  integer,
  ioPort,
  irqNoFlags,
  memory32Fixed,
  method,
  name,
  nameString,
  pkg,
  pkgLength,
  resourceTemplate,
  ret,
  scope,
  string,
  type Aml,
} from '../../src/acpi/aml.js';
import { buildSdt, readSdtHeader, sum8 } from '../../src/acpi/sdt.js';
import { FADT, FADT_FLAG, IAPC_BOOT_ARCH, MADT_TYPE, RSDP, SDT_HEADER_LENGTH } from '../../src/generated/acpi.js';
import { GuestMemory } from '../../src/memory/guest_memory.js';
import { buildAcpiTables, writeAcpiTables, type AcpiConfig, type AcpiTables } from '../../src/vmm/arch/x86_64/acpi.js';
import {
  ACPI_TABLES_END,
  ACPI_TABLES_START,
  IOAPIC_ADDR,
  IRQ_MAX,
  LAPIC_ADDR,
  RSDP_ADDR,
  VIRTIO_IRQ_BASE,
  VIRTIO_MMIO_SIZE,
  VIRTIO_MMIO_START,
} from '../../src/vmm/arch/x86_64/layout.js';

const bytes = (a: Aml | Uint8Array): number[] => [...(a instanceof Uint8Array ? a : a.toAml())];
const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

function virtioDevices(n: number): AcpiConfig['virtioDevices'] {
  return Array.from({ length: n }, (_, i) => ({
    addr: VIRTIO_MMIO_START + i * VIRTIO_MMIO_SIZE,
    size: VIRTIO_MMIO_SIZE,
    gsi: VIRTIO_IRQ_BASE + i,
  }));
}

/** The largest machine the GSI space allows: every free IOAPIC pin from VIRTIO_IRQ_BASE on is a virtio device. */
const MAX_VIRTIO = IRQ_MAX - VIRTIO_IRQ_BASE + 1;
const BIG: AcpiConfig = { vcpuCount: 32, serial: true, i8042: true, virtioDevices: virtioDevices(MAX_VIRTIO) };
const SMALL: AcpiConfig = { vcpuCount: 1, serial: false, i8042: false, virtioDevices: [] };

function blob(t: AcpiTables, sig: string): { addr: number; bytes: Uint8Array } {
  const b = t.blobs.find((x) => x.signature === sig);
  assert.ok(b, `no ${sig} table`);
  return b;
}

const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

// ---------------------------------------------------------------------------
// AML encoder
// ---------------------------------------------------------------------------

/** Decodes a PkgLength (value includes its own bytes) for the round-trip test. */
function decodePkgLength(b: Uint8Array): { value: number; size: number } {
  const lead = b[0]!;
  const follow = lead >> 6;
  if (follow === 0) return { value: lead & 0x3f, size: 1 };
  let value = lead & 0x0f;
  for (let i = 1; i <= follow; i++) value |= b[i]! << (4 + 8 * (i - 1));
  return { value, size: follow + 1 };
}

test('AML PkgLength: encodings at every size boundary', () => {
  assert.deepEqual(bytes(pkgLength(0)), [0x01]);
  assert.deepEqual(bytes(pkgLength(62)), [0x3f]); // 62 + 1 = 63, the 1-byte maximum
  assert.deepEqual(bytes(pkgLength(63)), [0x41, 0x04]); // 63 + 2 = 65 = 0x041
  assert.deepEqual(bytes(pkgLength(4093)), [0x4f, 0xff]); // 4093 + 2 = 0xfff, the 2-byte maximum
  assert.deepEqual(bytes(pkgLength(4094)), [0x81, 0x00, 0x01]); // 4094 + 3 = 0x1001
  assert.deepEqual(bytes(pkgLength(2 ** 20 - 4)), [0x8f, 0xff, 0xff]); // 0xfffff, the 3-byte maximum
  assert.deepEqual(bytes(pkgLength(2 ** 20 - 3)), [0xc1, 0x00, 0x00, 0x01]); // 0x100001
  assert.deepEqual(bytes(pkgLength(2 ** 28 - 5)), [0xcf, 0xff, 0xff, 0xff]); // 0xfffffff, the 4-byte maximum
  assert.throws(() => pkgLength(2 ** 28 - 4), RangeError);
  assert.throws(() => pkgLength(-1), RangeError);
});

test('AML PkgLength: value always counts content plus its own bytes, in the smallest size', () => {
  const samples = [0, 1, 61, 62, 63, 64, 100, 4092, 4093, 4094, 4095, 65535, 2 ** 20 - 5, 2 ** 20 - 4, 2 ** 20 - 3, 2 ** 24];
  for (const n of samples) {
    const enc = pkgLength(n);
    const { value, size } = decodePkgLength(enc);
    assert.equal(size, enc.byteLength, `size for ${n}`);
    assert.equal(value, n + size, `value for ${n}`);
    if (size > 1) assert.equal(enc[0]! & 0x30, 0, 'bits 5:4 of a multi-byte lead are reserved');
    if (size > 1) assert.ok(n + size - 1 > [0x3f, 0xfff, 0xfffff][size - 2]!, `${n} should fit in ${size - 1} bytes`);
  }
});

test('AML integers use the smallest encoding', () => {
  assert.deepEqual(bytes(integer(0)), [0x00]);
  assert.deepEqual(bytes(integer(1)), [0x01]);
  assert.deepEqual(bytes(integer(2)), [0x0a, 0x02]);
  assert.deepEqual(bytes(integer(0xff)), [0x0a, 0xff]);
  assert.deepEqual(bytes(integer(0x100)), [0x0b, 0x00, 0x01]);
  assert.deepEqual(bytes(integer(0xffff)), [0x0b, 0xff, 0xff]);
  assert.deepEqual(bytes(integer(0x10000)), [0x0c, 0x00, 0x00, 0x01, 0x00]);
  assert.deepEqual(bytes(integer(0xffffffff)), [0x0c, 0xff, 0xff, 0xff, 0xff]);
  assert.deepEqual(bytes(integer(2 ** 32)), [0x0e, 0, 0, 0, 0, 1, 0, 0, 0]);
  assert.deepEqual(bytes(integer(2n ** 64n - 1n)), [0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  assert.throws(() => integer(-1), RangeError);
  assert.throws(() => integer(2n ** 64n), RangeError);
  assert.throws(() => integer(1.5), RangeError);
  assert.throws(() => integer(2 ** 60), RangeError, 'unsafe numbers must be passed as bigint');
});

test('AML EISAID packs three letters and four hex digits', () => {
  assert.equal(eisaIdValue('PNP0501'), 0x0105d041);
  assert.equal(eisaIdValue('PNP0303'), 0x0303d041);
  assert.equal(eisaIdValue('PNP0A03'), 0x030ad041);
  assert.deepEqual(bytes(eisaId('PNP0501')), [0x0c, 0x41, 0xd0, 0x05, 0x01]);
  assert.throws(() => eisaIdValue('pnp0501'), RangeError);
  assert.throws(() => eisaIdValue('PNP050'), RangeError);
  assert.throws(() => eisaIdValue('PNP050G'), RangeError);
});

test('AML name strings: segments, root and parent prefixes, dual and multi paths', () => {
  assert.deepEqual(bytes(nameString('_HID')), ascii('_HID'));
  assert.deepEqual(bytes(nameString('AB')), ascii('AB__'), 'short segments pad with _');
  assert.deepEqual(bytes(nameString('\\_SB_')), [0x5c, ...ascii('_SB_')]);
  assert.deepEqual(bytes(nameString('\\_SB_.COM1')), [0x5c, 0x2e, ...ascii('_SB_COM1')]);
  assert.deepEqual(bytes(nameString('\\_SB_.PCI0.S08_')), [0x5c, 0x2f, 3, ...ascii('_SB_PCI0S08_')]);
  assert.deepEqual(bytes(nameString('^^FOO')), [0x5e, 0x5e, ...ascii('FOO_')]);
  assert.deepEqual(bytes(nameString('\\')), [0x5c, 0x00], 'the root alone is RootChar NullName');
  for (const bad of ['1ABC', 'abcd', 'TOOLONG', 'A-B', '', '\\_SB_..X']) {
    assert.throws(() => nameString(bad), RangeError, bad);
  }
});

test('AML strings, buffers, packages, Name, Device, Scope, Method, Return', () => {
  assert.deepEqual(bytes(string('LNRO0005')), [0x0d, ...ascii('LNRO0005'), 0x00]);
  assert.deepEqual(bytes(string('')), [0x0d, 0x00]);
  assert.throws(() => string('é'), RangeError);
  assert.deepEqual(bytes(buffer(Uint8Array.of(0xaa, 0xbb))), [0x11, 0x05, 0x0a, 0x02, 0xaa, 0xbb]);
  assert.deepEqual(bytes(pkg([integer(1), integer(2)])), [0x12, 0x05, 0x02, 0x01, 0x0a, 0x02]);
  assert.deepEqual(bytes(name('_UID', integer(0))), [0x08, ...ascii('_UID'), 0x00]);
  assert.deepEqual(bytes(device('COM1', [])), [0x5b, 0x82, 0x05, ...ascii('COM1')]);
  assert.deepEqual(bytes(scope('\\_SB_', [])), [0x10, 0x06, 0x5c, ...ascii('_SB_')]);
  assert.deepEqual(bytes(method('_STA', 0, false, [ret(integer(0x0f))])), [0x14, 0x09, ...ascii('_STA'), 0x00, 0xa4, 0x0a, 0x0f]);
  assert.deepEqual(bytes(method('FOO_', 2, true, [])).slice(6), [0x0a], 'flags: 2 args | serialized');
  assert.throws(() => method('FOO_', 8, false, []), RangeError);
  // A big buffer needs a 3-byte PkgLength inside a Name.
  const big = buffer(new Uint8Array(5000)).toAml();
  assert.equal(big[0], 0x11);
  assert.equal(decodePkgLength(big.subarray(1)).value, big.byteLength - 1);
});

test('resource descriptors encode per ACPI §6.4', () => {
  assert.deepEqual(bytes(ioPort(0x3f8, 0x3f8, 1, 8).bytes), [0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08]);
  assert.deepEqual(bytes(irqNoFlags([4]).bytes), [0x22, 0x10, 0x00]);
  assert.deepEqual(bytes(irqNoFlags([1, 12]).bytes), [0x22, 0x02, 0x10]);
  assert.throws(() => irqNoFlags([16]), RangeError);
  assert.deepEqual(
    bytes(memory32Fixed(true, 0xc0001000, 0x1000).bytes),
    [0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xc0, 0x00, 0x10, 0x00, 0x00],
  );
  assert.throws(() => memory32Fixed(true, 0xfffff000, 0x2000), RangeError);
  assert.deepEqual(
    bytes(extendedInterrupt({ consumer: true, edge: true, activeLow: false, shared: false }, [5]).bytes),
    [0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00],
  );
  assert.deepEqual(
    bytes(extendedInterrupt({ consumer: true, edge: false, activeLow: true, shared: true, wakeCapable: true }, [16, 17]).bytes),
    [0x89, 0x0a, 0x00, 0x1d, 0x02, 16, 0, 0, 0, 17, 0, 0, 0],
  );
});

test('ResourceTemplate is a Buffer ending in an End Tag whose checksum zeroes the sum', () => {
  const rt = resourceTemplate([ioPort(0x60, 0x60, 1, 1), irqNoFlags([1])]).toAml();
  assert.equal(rt[0], 0x11, 'BufferOp');
  const { size } = decodePkgLength(rt.subarray(1));
  const sizeOp = rt.subarray(1 + size);
  assert.equal(sizeOp[0], 0x0a, 'BufferSize as a ByteConst');
  const data = sizeOp.subarray(2);
  assert.equal(data.byteLength, sizeOp[1]);
  assert.equal(data[data.byteLength - 2], 0x79, 'End Tag');
  assert.equal(sum8(data), 0, 'resource data sums to zero');
});

// ---------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------

test('every table has a correct length and checksum; the RSDP both checksums', () => {
  for (const cfg of [SMALL, BIG]) {
    const t = buildAcpiTables(cfg);
    assert.equal(t.rsdpAddr, RSDP_ADDR);
    assert.equal(t.rsdpAddr % 16, 0, 'the RSDP is found by a 16-byte aligned scan');
    for (const b of t.blobs) {
      if (b.signature === 'RSD PTR ') continue;
      const h = readSdtHeader(b.bytes);
      assert.equal(h.signature, b.signature);
      assert.equal(h.length, b.bytes.byteLength, `${b.signature} length`);
      assert.equal(sum8(b.bytes), 0, `${b.signature} checksum`);
      assert.equal(h.oemId, 'SPRKLR');
      assert.equal(h.oemTableId, 'SPARKLER');
    }
    const rsdp = blob(t, 'RSD PTR ').bytes;
    assert.equal(rsdp.byteLength, 36);
    assert.equal(String.fromCharCode(...rsdp.subarray(0, 8)), 'RSD PTR ');
    assert.equal(sum8(rsdp.subarray(0, 20)), 0, 'ACPI 1.0 checksum over 20 bytes');
    assert.equal(sum8(rsdp), 0, 'extended checksum over 36 bytes');
    assert.equal(rsdp[RSDP.REVISION], 2);
    assert.equal(dv(rsdp).getUint32(RSDP.LENGTH, true), 36);
    assert.equal(dv(rsdp).getUint32(RSDP.RSDT_ADDRESS, true), 0);
    assert.equal(Number(dv(rsdp).getBigUint64(RSDP.XSDT_ADDRESS, true)), blob(t, 'XSDT').addr);
  }
});

test('buildSdt rejects bad header fields', () => {
  assert.throws(() => buildSdt('TOOLONG', 1, new Uint8Array(0)), RangeError);
  assert.throws(() => buildSdt('TEST', 1, new Uint8Array(0), { oemId: 'TOOLONGID', oemTableId: 'X', oemRevision: 0, creatorId: 'X', creatorRevision: 0 }), RangeError);
});

test('XSDT points at the FADT and MADT; the FADT points at the DSDT', () => {
  const t = buildAcpiTables(BIG);
  const xsdt = blob(t, 'XSDT').bytes;
  const entries: number[] = [];
  for (let off = SDT_HEADER_LENGTH; off < xsdt.byteLength; off += 8) entries.push(Number(dv(xsdt).getBigUint64(off, true)));
  assert.deepEqual(entries, [blob(t, 'FACP').addr, blob(t, 'APIC').addr]);

  const fadt = blob(t, 'FACP').bytes;
  assert.equal(fadt.byteLength, 276);
  assert.equal(fadt[8], 6, 'FADT revision 6');
  assert.equal(fadt[FADT.MINOR_VERSION], 5, 'FADT minor revision 5');
  assert.equal(Number(dv(fadt).getBigUint64(FADT.X_DSDT, true)), blob(t, 'DSDT').addr);
  assert.equal(dv(fadt).getUint32(FADT.DSDT, true), 0, 'only X_DSDT is set');
  const flags = dv(fadt).getUint32(FADT.FLAGS, true);
  assert.ok(flags & FADT_FLAG.HW_REDUCED_ACPI, 'hardware-reduced ACPI');
  assert.ok(flags & FADT_FLAG.PWR_BUTTON && flags & FADT_FLAG.SLP_BUTTON, 'no fixed-feature buttons');
  const iapc = dv(fadt).getUint16(FADT.IAPC_BOOT_ARCH, true);
  assert.ok(iapc & IAPC_BOOT_ARCH.I8042, 'i8042 present');
  assert.ok(iapc & IAPC_BOOT_ARCH.VGA_NOT_PRESENT);
  assert.ok(iapc & IAPC_BOOT_ARCH.CMOS_RTC_NOT_PRESENT);
  assert.equal(iapc & IAPC_BOOT_ARCH.LEGACY_DEVICES, 0);
  assert.equal(String.fromCharCode(...fadt.subarray(FADT.HYPERVISOR_VENDOR_ID, FADT.HYPERVISOR_VENDOR_ID + 8)), 'SPARKLER');

  const noKbd = blob(buildAcpiTables({ ...SMALL, cmosRtc: true }), 'FACP').bytes;
  const iapc2 = dv(noKbd).getUint16(FADT.IAPC_BOOT_ARCH, true);
  assert.equal(iapc2 & IAPC_BOOT_ARCH.I8042, 0, 'no i8042 flag without an i8042');
  assert.equal(iapc2 & IAPC_BOOT_ARCH.CMOS_RTC_NOT_PRESENT, 0, 'CMOS RTC advertised when emulated');
});

interface MadtEntry {
  type: number;
  body: Uint8Array;
}

function madtEntries(madt: Uint8Array): MadtEntry[] {
  const out: MadtEntry[] = [];
  for (let off = 44; off < madt.byteLength; ) {
    const len = madt[off + 1]!;
    assert.ok(len >= 2 && off + len <= madt.byteLength, 'MADT entry fits');
    out.push({ type: madt[off]!, body: madt.subarray(off, off + len) });
    off += len;
  }
  return out;
}

test('MADT: N enabled local APICs with APIC ID = vCPU index, one IOAPIC, no overrides', () => {
  for (const n of [1, 2, 32]) {
    const madt = blob(buildAcpiTables({ ...BIG, vcpuCount: n }), 'APIC').bytes;
    assert.equal(madt[8], 6, 'MADT revision 6');
    assert.equal(dv(madt).getUint32(36, true), LAPIC_ADDR);
    assert.equal(dv(madt).getUint32(40, true) & 1, 1, 'PC-AT compatible (KVM has a dual 8259)');
    const entries = madtEntries(madt);
    const lapics = entries.filter((e) => e.type === MADT_TYPE.LOCAL_APIC);
    assert.equal(lapics.length, n);
    lapics.forEach((e, i) => {
      assert.equal(e.body.byteLength, 8);
      assert.equal(e.body[2], i, 'processor UID');
      assert.equal(e.body[3], i, 'APIC ID');
      assert.equal(dv(e.body).getUint32(4, true), 1, 'enabled');
    });
    const ioapics = entries.filter((e) => e.type === MADT_TYPE.IO_APIC);
    assert.equal(ioapics.length, 1);
    const io = ioapics[0]!.body;
    assert.equal(io[2], 0, 'IOAPIC id 0');
    assert.equal(dv(io).getUint32(4, true), IOAPIC_ADDR);
    assert.equal(dv(io).getUint32(8, true), 0, 'GSI base 0');
    // KVM's default routing is the identity (GSI n -> IOAPIC pin n, PIT on GSI 0):
    // ISA IRQs need no override, and an IRQ0 override would be misread as the SCI's.
    assert.equal(entries.filter((e) => e.type === MADT_TYPE.INTERRUPT_SOURCE_OVERRIDE).length, 0);
    const nmis = entries.filter((e) => e.type === MADT_TYPE.LOCAL_APIC_NMI);
    assert.equal(nmis.length, 1);
    assert.deepEqual(bytes(nmis[0]!.body), [4, 6, 0xff, 0, 0, 1], 'all processors, LINT1');
  }
});

test('tables are packed 8-byte aligned inside the ACPI region without overlap', () => {
  const t = buildAcpiTables(BIG);
  const placed = t.blobs.filter((b) => b.signature !== 'RSD PTR ').sort((a, b) => a.addr - b.addr);
  let end = ACPI_TABLES_START;
  for (const b of placed) {
    assert.equal(b.addr % 8, 0, `${b.signature} aligned`);
    assert.ok(b.addr >= end, `${b.signature} does not overlap`);
    end = b.addr + b.bytes.byteLength;
  }
  assert.ok(end <= ACPI_TABLES_END, '32 vCPUs and every possible virtio device fit');
  assert.ok(RSDP_ADDR + 36 <= ACPI_TABLES_START);
});

test('tables that do not fit fail with a clear error', () => {
  assert.throws(
    () => buildAcpiTables(BIG, { start: ACPI_TABLES_START, end: ACPI_TABLES_START + 512 }),
    /ACPI: tables do not fit: .* past the ACPI region end/,
  );
  assert.throws(() => buildAcpiTables(SMALL, { start: RSDP_ADDR, end: ACPI_TABLES_END }), /overlaps the RSDP/);
});

test('invalid configurations are rejected', () => {
  assert.throws(() => buildAcpiTables({ ...SMALL, vcpuCount: 0 }), /vcpuCount/);
  assert.throws(() => buildAcpiTables({ ...SMALL, vcpuCount: 256 }), /vcpuCount/);
  const dev = { addr: VIRTIO_MMIO_START, size: VIRTIO_MMIO_SIZE, gsi: 5 };
  assert.throws(() => buildAcpiTables({ ...SMALL, virtioDevices: [dev, { ...dev, addr: dev.addr + 0x1000 }] }), /GSI 5 is already used/);
  assert.throws(() => buildAcpiTables({ ...SMALL, serial: true, virtioDevices: [{ ...dev, gsi: 4 }] }), /used by COM1/);
  assert.throws(() => buildAcpiTables({ ...SMALL, virtioDevices: [{ ...dev, gsi: 0 }] }), /used by the PIT/);
  assert.throws(() => buildAcpiTables({ ...SMALL, virtioDevices: [{ ...dev, gsi: IRQ_MAX + 1 }] }), /not an IOAPIC pin/);
  assert.throws(() => buildAcpiTables({ ...SMALL, virtioDevices: [dev, { ...dev, gsi: 6 }] }), /overlaps/);
  assert.throws(() => buildAcpiTables({ ...SMALL, virtioDevices: [{ ...dev, addr: 0xfffff000, size: 0x2000 }] }), /below 4 GiB/);
});

test('writeAcpiTables writes every blob into guest memory and returns the RSDP address', () => {
  const mem = GuestMemory.forTest([{ guestAddr: 0, size: 2 * 1024 * 1024 }]);
  const cfg: AcpiConfig = { vcpuCount: 2, serial: true, i8042: true, virtioDevices: virtioDevices(3) };
  assert.equal(writeAcpiTables(mem, cfg), RSDP_ADDR);
  for (const b of buildAcpiTables(cfg).blobs) {
    assert.deepEqual(mem.read(b.addr, b.bytes.byteLength), b.bytes, b.signature);
  }
});

// ---------------------------------------------------------------------------
// ACPICA (acpica-tools): iasl and acpiexec
// ---------------------------------------------------------------------------

function findTool(tool: string): string {
  const dirs = ['/usr/bin', ...(process.env['PATH'] ?? '').split(delimiter)];
  for (const d of dirs) {
    const p = join(d, tool);
    if (d && existsSync(p)) return p;
  }
  assert.fail(`${tool} not found: install Debian's acpica-tools package (apt-get install acpica-tools) to validate the ACPI tables`);
}

function run(tool: string, args: string[], cwd: string): string {
  const r = spawnSync(tool, args, { cwd, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, `${tool} ${args.join(' ')} exited ${r.status}:\n${out}`);
  return out;
}

/** ACPICA reports problems as "Error"/"Warning" lines, and marks bad fields in the .dsl. */
function assertClean(what: string, text: string): void {
  const bad = text.split('\n').filter((l) => /\b(error|warning|incorrect|invalid)\b/i.test(l) && !/\b0 Errors, 0 Warnings\b/.test(l));
  assert.deepEqual(bad, [], `${what} reports problems`);
}

function withTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'sparkler-acpi-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** iasl compiles with its own creator ID and hence checksum; everything else must match our bytes. */
function assertSameTableBody(ours: Uint8Array, theirs: Uint8Array, what: string, ignoreEndTagChecksums: boolean): void {
  assert.equal(theirs.byteLength, ours.byteLength, `${what}: recompiled length`);
  const diffs: number[] = [];
  for (let i = 0; i < ours.byteLength; i++) {
    if (ours[i] === theirs[i]) continue;
    if (i === 9 || (i >= 28 && i < 36)) continue; // checksum, creator ID and revision
    // iasl writes End Tag checksums as 0 ("treated as valid"); ours are real.
    if (ignoreEndTagChecksums && ours[i - 1] === 0x79 && theirs[i - 1] === 0x79 && theirs[i] === 0) continue;
    diffs.push(i);
  }
  assert.deepEqual(diffs, [], `${what}: bytes differ from iasl's compilation of the disassembly`);
}

test('iasl -d disassembles every table cleanly and recompiles it to the same bytes', () => {
  const iasl = findTool('iasl');
  for (const [label, cfg] of [['big', BIG], ['small', SMALL]] as const) {
    withTempDir((dir) => {
      const t = buildAcpiTables(cfg);
      for (const b of t.blobs) {
        if (b.signature === 'RSD PTR ') continue; // iasl -d only takes SDTs; the RSDP is checked above
        const base = b.signature;
        writeFileSync(join(dir, `${base}.dat`), b.bytes);
        assertClean(`iasl -d ${base} (${label})`, run(iasl, ['-d', `${base}.dat`], dir));
        const dsl = readFileSync(join(dir, `${base}.dsl`), 'utf8');
        assertClean(`${base}.dsl (${label})`, dsl);

        // Round trip: compiling the disassembly (no optimizations, so names and
        // integers are encoded as written) must reproduce our table.
        writeFileSync(join(dir, `${base}.rt.dsl`), dsl);
        const out = run(iasl, ['-oa', '-p', `rt_${base}`, `${base}.rt.dsl`], dir);
        assert.match(out, /0 Errors, 0 Warnings, 0 Remarks/, `iasl compile of ${base}`);
        assertSameTableBody(b.bytes, readFileSync(join(dir, `rt_${base}.aml`)), `${base} (${label})`, base === 'DSDT');
      }
    });
  }
});

test('the disassembled DSDT names every device, range and interrupt we put in', () => {
  const iasl = findTool('iasl');
  withTempDir((dir) => {
    const dsdt = blob(buildAcpiTables(BIG), 'DSDT').bytes;
    writeFileSync(join(dir, 'dsdt.dat'), dsdt);
    run(iasl, ['-d', 'dsdt.dat'], dir);
    const text = readFileSync(join(dir, 'dsdt.dsl'), 'utf8');
    const flat = text.replace(/\s+/g, ' ');
    assert.match(flat, /Scope \(\\_SB\)/);
    assert.match(flat, /Device \(COM1\) \{ Name \(_HID, EisaId \("PNP0501"\)/);
    assert.match(flat, /IO \(Decode16, 0x03F8, \/\/ Range Minimum 0x03F8, \/\/ Range Maximum 0x01, \/\/ Alignment 0x08, \/\/ Length \) IRQNoFlags \(\) \{4\}/);
    assert.match(flat, /Device \(PS2K\) \{ Name \(_HID, EisaId \("PNP0303"\)/);
    assert.match(flat, /0x0060, \/\/ Range Minimum 0x0060, .*0x0064, \/\/ Range Minimum 0x0064, .*IRQNoFlags \(\) \{1\}/);
    const virtio = BIG.virtioDevices;
    assert.equal(text.match(/"LNRO0005"/g)?.length, virtio.length);
    virtio.forEach((d, i) => {
      const base = `0x${d.addr.toString(16).toUpperCase().padStart(8, '0')}`;
      const len = `0x${d.size.toString(16).toUpperCase().padStart(8, '0')}`;
      const gsi = `0x${d.gsi.toString(16).toUpperCase().padStart(8, '0')}`;
      const devName = `V${i.toString(16).toUpperCase().padStart(3, '0')}`;
      const uid = i === 0 ? 'Zero' : i === 1 ? 'One' : `0x${i.toString(16).toUpperCase().padStart(2, '0')}`;
      const re = new RegExp(
        `Device \\(${devName}\\) \\{ Name \\(_HID, "LNRO0005"\\) // _HID: Hardware ID Name \\(_UID, ${uid}\\) .*?` +
          `Memory32Fixed \\(ReadWrite, ${base}, // Address Base ${len}, // Address Length \\) ` +
          `Interrupt \\(ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, \\) \\{ ${gsi}, \\}`,
      );
      assert.match(flat, re, `virtio device ${i}`);
    });
  });
});

test('iasl agrees on a synthetic DSDT with methods, packages and a 3-byte PkgLength', () => {
  const iasl = findTool('iasl');
  withTempDir((dir) => {
    const body = scope('\\_SB_', [
      device('TST0', [
        name('_HID', string('SPRK0001')),
        name('STR0', string('sparkler test')),
        name('PKG0', pkg([integer(0), integer(1), integer(0xff), integer(0x100), integer(0x10000), integer(2 ** 32), string('x')])),
        name('BIG0', buffer(Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff))),
        method('_STA', 0, false, [ret(integer(0x0f))]),
        method('M2A_', 2, true, [ret(integer(7))]),
      ]),
    ]).toAml();
    const dsdt = buildSdt('DSDT', 2, body);
    writeFileSync(join(dir, 'syn.dat'), dsdt);
    assertClean('iasl -d synthetic', run(iasl, ['-d', 'syn.dat'], dir));
    const dsl = readFileSync(join(dir, 'syn.dsl'), 'utf8');
    assertClean('synthetic .dsl', dsl);
    assert.match(dsl, /Method \(M2A, 2, Serialized\)/);
    writeFileSync(join(dir, 'syn.rt.dsl'), dsl);
    run(iasl, ['-oa', '-p', 'syn_rt', 'syn.rt.dsl'], dir);
    assertSameTableBody(dsdt, readFileSync(join(dir, 'syn_rt.aml')), 'synthetic DSDT', false);
  });
});

test("acpiexec (ACPICA's interpreter, as in Linux) loads the DSDT and evaluates every device", () => {
  const acpiexec = findTool('acpiexec');
  withTempDir((dir) => {
    const dsdt = blob(buildAcpiTables(BIG), 'DSDT').bytes;
    writeFileSync(join(dir, 'dsdt.dat'), dsdt);
    const paths = ['\\_SB.COM1', '\\_SB.PS2K', ...BIG.virtioDevices.map((_, i) => `\\_SB.V${i.toString(16).toUpperCase().padStart(3, '0')}`)];
    // acpiexec caps a batch command line at 1023 characters: a few devices per run.
    let out = '';
    for (let i = 0; i < paths.length; i += 8) {
      const cmds = paths.slice(i, i + 8).flatMap((p) => [`evaluate ${p}._HID`, `evaluate ${p}._CRS`]).join('; ');
      const chunk = run(acpiexec, ['-b', cmds, 'dsdt.dat'], dir);
      assertClean('acpiexec', chunk);
      assert.match(chunk, /1 ACPI AML tables successfully acquired and loaded/);
      out += chunk;
    }
    for (const p of paths) {
      assert.match(out, new RegExp(`Evaluation of \\${p}\\._HID returned object`), `${p}._HID`);
      assert.match(out, new RegExp(`Evaluation of \\${p}\\._CRS returned object`), `${p}._CRS`);
    }
    assert.match(out, /\[Integer\] = 000000000105D041/);
    assert.match(out, /\[Integer\] = 000000000303D041/);
  });
});
