/**
 * Guest physical memory: every access that is not wholly inside one RAM
 * region (the region end, the 3–4 GiB MMIO gap, negative or non-integer
 * addresses) throws GuestMemoryError and writes nothing; views are zero-copy;
 * multi-byte values are little-endian as the guest sees them.
 *
 * Regions at high guest addresses are built by hand with small sizes: no
 * test allocates gigabytes.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { GuestMemory, GuestMemoryError } from '../../src/memory/guest_memory.js';
import { MMIO_GAP_END, MMIO_GAP_START, ramRegions } from '../../src/vmm/arch/x86_64/layout.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const PAGE = 4 * KiB;

/** Snapshot of every byte of every region, to prove a failed access wrote nothing. */
function snapshot(m: GuestMemory): Uint8Array[] {
  return m.regions.map((r) => r.bytes.slice());
}

function assertRejected(m: GuestMemory, what: string, fn: () => unknown): void {
  const before = snapshot(m);
  assert.throws(fn, (e: unknown) => e instanceof GuestMemoryError && e.name === 'GuestMemoryError', what);
  assert.deepEqual(snapshot(m), before, `${what}: memory changed`);
}

/** Every accessor that could write, aimed at [addr, addr+len). */
function writers(m: GuestMemory, addr: number, len: number): Array<[string, () => unknown]> {
  const w: Array<[string, () => unknown]> = [
    ['fill', () => m.fill(addr, len, 0xbb)],
    ['slice', () => m.slice(addr, len).fill(0xcc)],
  ];
  // (No host buffer of a huge length is built just to be refused.)
  if (len <= MiB) w.push(['write', () => m.write(addr, new Uint8Array(len).fill(0xaa))]);
  if (len === 1) w.push(['writeU8', () => m.writeU8(addr, 0xdd)]);
  if (len === 2) w.push(['writeU16', () => m.writeU16(addr, 0xdddd)]);
  if (len === 4) w.push(['writeU32', () => m.writeU32(addr, 0xdddddddd)]);
  if (len === 8) w.push(['writeU64', () => m.writeU64(addr, 0xddddddddddddddddn)]);
  return w;
}

function readers(m: GuestMemory, addr: number, len: number): Array<[string, () => unknown]> {
  const r: Array<[string, () => unknown]> = [
    ['read', () => m.read(addr, len)],
    ['hostAddress', () => m.hostAddress(addr, len)],
  ];
  if (len === 1) r.push(['readU8', () => m.readU8(addr)]);
  if (len === 2) r.push(['readU16', () => m.readU16(addr)]);
  if (len === 4) r.push(['readU32', () => m.readU32(addr)]);
  if (len === 8) r.push(['readU64', () => m.readU64(addr)]);
  return r;
}

function assertOutOfBounds(m: GuestMemory, addr: number, len: number, label: string): void {
  for (const [name, fn] of [...writers(m, addr, len), ...readers(m, addr, len)]) {
    assertRejected(m, `${label}: ${name}(0x${addr.toString(16)}, ${len})`, fn);
  }
  assert.equal(m.isValidRange(addr, len), false, `${label}: isValidRange`);
}

// --------------------------------------------------------------------------- bounds

test('an access spanning the end of a region throws and writes nothing', () => {
  const m = GuestMemory.forTest([{ guestAddr: 0, size: PAGE }]);
  for (const len of [2, 4, 8, 16]) assertOutOfBounds(m, PAGE - len + 1, len, 'spanning end');
  // The last bytes themselves are fine.
  m.writeU64(PAGE - 8, 0x0102030405060708n);
  assert.equal(m.readU64(PAGE - 8), 0x0102030405060708n);
  m.writeU8(PAGE - 1, 0x7f);
  assert.equal(m.readU8(PAGE - 1), 0x7f);
  assert.equal(m.isValidRange(0, PAGE), true);
  assert.equal(m.isValidRange(PAGE, 0), true, 'an empty range at the end is inside');
});

test('an access wholly beyond the end of RAM throws', () => {
  const m = GuestMemory.forTest([{ guestAddr: 0, size: PAGE }]);
  assertOutOfBounds(m, PAGE, 1, 'at end');
  assertOutOfBounds(m, PAGE + 100, 4, 'beyond end');
  assertOutOfBounds(m, 0x1_0000_0000, 8, 'at 4 GiB');
  assertOutOfBounds(m, Number.MAX_SAFE_INTEGER, 1, 'at 2^53-1');
});

test('negative, non-integer and non-finite addresses or lengths throw', () => {
  const m = GuestMemory.forTest([{ guestAddr: 0, size: PAGE }]);
  assertOutOfBounds(m, -1, 1, 'negative addr');
  assertOutOfBounds(m, -8, 8, 'negative addr, ends in RAM');
  assertOutOfBounds(m, 0.5, 4, 'fractional addr');
  assertOutOfBounds(m, NaN, 1, 'NaN addr');
  assertOutOfBounds(m, Infinity, 1, 'infinite addr');
  assertOutOfBounds(m, 2 ** 53, 1, 'unsafe addr');
  for (const len of [-1, 1.5, NaN, Infinity]) {
    assertRejected(m, `len ${len}: slice`, () => m.slice(0, len));
    assertRejected(m, `len ${len}: fill`, () => m.fill(0, len, 0xff));
    assertRejected(m, `len ${len}: read`, () => m.read(0, len));
    assert.equal(m.isValidRange(0, len), false);
  }
});

test('GuestMemoryError names the faulting range', () => {
  const m = GuestMemory.forTest([{ guestAddr: 0, size: PAGE }]);
  try {
    m.read(0xfff, 2);
    assert.fail('no error');
  } catch (e) {
    assert.ok(e instanceof GuestMemoryError);
    assert.equal(e.addr, 0xfff);
    assert.equal(e.len, 2);
    assert.match(e.message, /0xfff/);
  }
});

test('ramRegions leaves the 3–4 GiB MMIO gap out of RAM', () => {
  assert.deepEqual(ramRegions(128 * MiB), [{ guestAddr: 0, size: 128 * MiB }]);
  assert.deepEqual(ramRegions(3 * GiB), [{ guestAddr: 0, size: 3 * GiB }]);
  assert.deepEqual(ramRegions(6 * GiB), [
    { guestAddr: 0, size: 3 * GiB },
    { guestAddr: 4 * GiB, size: 3 * GiB },
  ]);
  assert.equal(MMIO_GAP_START, 0xc000_0000);
  assert.equal(MMIO_GAP_END, 0x1_0000_0000);
});

test('accesses into or across the 3–4 GiB gap of a >4 GiB layout throw and write nothing', () => {
  // The edges of ramRegions(3 GiB + 2 pages): the last page below the gap and the
  // first pages above 4 GiB, with the same guest addresses, small backing.
  const [low, high] = ramRegions(3 * GiB + 2 * PAGE);
  assert.ok(low && high);
  assert.equal(low.guestAddr + low.size, MMIO_GAP_START);
  assert.equal(high.guestAddr, MMIO_GAP_END);
  assert.equal(high.size, 2 * PAGE);
  const m = GuestMemory.forTest([
    { guestAddr: low.guestAddr + low.size - PAGE, size: PAGE },
    high,
  ]);
  assert.equal(m.endAddr, MMIO_GAP_END + 2 * PAGE);
  assert.equal(m.totalSize, 3 * PAGE);

  // The last byte below the gap and the first above it are RAM.
  m.writeU32(MMIO_GAP_START - 4, 0x11223344);
  m.writeU32(MMIO_GAP_END, 0x55667788);
  assert.equal(m.readU32(MMIO_GAP_START - 4), 0x11223344);
  assert.equal(m.readU32(MMIO_GAP_END), 0x55667788);

  assertOutOfBounds(m, MMIO_GAP_START - 2, 4, 'spanning into the gap');
  assertOutOfBounds(m, MMIO_GAP_START, 8, 'at the gap start');
  assertOutOfBounds(m, 0xfee0_0000, 4, 'LAPIC page in the gap');
  assertOutOfBounds(m, MMIO_GAP_END - 1, 2, 'spanning out of the gap');
  assertOutOfBounds(m, MMIO_GAP_START - 8, 1 * GiB + 16, 'across the whole gap');
  assertOutOfBounds(m, MMIO_GAP_END + 2 * PAGE - 4, 8, 'spanning the end of high RAM');
});

test('an access spanning two adjacent regions is refused (it is not inside one region)', () => {
  const m = GuestMemory.forTest([{ guestAddr: 0, size: PAGE }, { guestAddr: PAGE, size: PAGE }]);
  assertOutOfBounds(m, PAGE - 2, 4, 'spanning adjacent regions');
  m.writeU16(PAGE - 2, 0xbeef);
  m.writeU16(PAGE, 0xcafe);
  assert.equal(m.readU16(PAGE - 2), 0xbeef);
  assert.equal(m.readU16(PAGE), 0xcafe);
});

test('regionIndex names the region holding a whole range, or -1 without throwing', () => {
  const m = GuestMemory.forTest([{ guestAddr: 0, size: PAGE }, { guestAddr: 4 * PAGE, size: PAGE }]);
  assert.equal(m.regionIndex(0, PAGE), 0);
  assert.equal(m.regionIndex(4 * PAGE + 10, 6), 1);
  assert.equal(m.regionIndex(PAGE - 1, 2), -1, 'past the end of a region');
  assert.equal(m.regionIndex(2 * PAGE, 1), -1, 'in the hole');
  for (const [a, l] of [[-1, 1], [0.5, 1], [0, -1], [Number.NaN, 1], [2 ** 60, 1]] as const) assert.equal(m.regionIndex(a, l), -1, `${a}+${l}`);
  // Field accessors in the second region use offsets within it.
  m.writeU32(4 * PAGE + 8, 0x11223344);
  assert.equal(m.regionView(1).getUint32(8, true), 0x11223344);
});

// --------------------------------------------------------------------------- data access

test('slice is a zero-copy view: writes through it reach guest memory and vice versa', () => {
  const m = GuestMemory.forTest([{ guestAddr: 0x10_0000, size: PAGE }]);
  const s = m.slice(0x10_0010, 16);
  assert.equal(s.byteLength, 16);
  s[0] = 0x42;
  s[15] = 0x43;
  assert.equal(m.readU8(0x10_0010), 0x42);
  assert.equal(m.readU8(0x10_001f), 0x43);
  assert.equal(m.regions[0]!.bytes[0x10], 0x42);
  m.writeU8(0x10_0011, 0x99);
  assert.equal(s[1], 0x99);
});

test('read returns a copy; write and fill land at the guest address', () => {
  const m = GuestMemory.forTest([{ guestAddr: 0x1000, size: PAGE }]);
  m.write(0x1100, Uint8Array.of(1, 2, 3, 4));
  const r = m.read(0x1100, 4);
  assert.deepEqual([...r], [1, 2, 3, 4]);
  r[0] = 0xff;
  assert.equal(m.readU8(0x1100), 1, 'mutating the copy does not touch the guest');
  m.fill(0x1102, 2, 0xee);
  assert.deepEqual([...m.read(0x1100, 5)], [1, 2, 0xee, 0xee, 0]);
  m.fill(0x1100, 4);
  assert.deepEqual([...m.read(0x1100, 4)], [0, 0, 0, 0]);
});

test('u16/u32/u64 are little-endian', () => {
  const m = GuestMemory.forTest([{ guestAddr: 0, size: PAGE }]);
  m.writeU16(0x10, 0x1234);
  assert.deepEqual([...m.read(0x10, 2)], [0x34, 0x12]);
  m.writeU32(0x20, 0xdeadbeef);
  assert.deepEqual([...m.read(0x20, 4)], [0xef, 0xbe, 0xad, 0xde]);
  m.writeU64(0x30, 0x0102030405060708n);
  assert.deepEqual([...m.read(0x30, 8)], [8, 7, 6, 5, 4, 3, 2, 1]);
  m.writeU64(0x40, 0x1_0000_0000); // a number is accepted too
  assert.deepEqual([...m.read(0x40, 8)], [0, 0, 0, 0, 1, 0, 0, 0]);

  m.write(0x50, Uint8Array.of(0x78, 0x56, 0x34, 0x12, 0xf0, 0xde, 0xbc, 0x9a));
  assert.equal(m.readU16(0x50), 0x5678);
  assert.equal(m.readU32(0x50), 0x12345678);
  assert.equal(m.readU64(0x50), 0x9abcdef012345678n);
  // Values are unsigned.
  m.writeU32(0x60, -1);
  assert.equal(m.readU32(0x60), 0xffffffff);
  assert.equal(m.readU16(0x60), 0xffff);
  // Unaligned access works.
  m.writeU32(0x71, 0xa1b2c3d4);
  assert.equal(m.readU32(0x71), 0xa1b2c3d4);
});

test('accessors in a region above 4 GiB use the guest address, not the region offset', () => {
  const m = GuestMemory.forTest([{ guestAddr: 0, size: PAGE }, { guestAddr: 0x1_0000_0000, size: PAGE }]);
  m.writeU32(0x1_0000_0010, 0xcafef00d);
  assert.equal(m.readU32(0x1_0000_0010), 0xcafef00d);
  assert.equal(m.readU32(0x10), 0, 'low RAM untouched');
  assert.equal(new DataView(m.regions[1]!.bytes.buffer).getUint32(0x10, true), 0xcafef00d);
});

test('hostAddress offsets into the region mapping', () => {
  const bytes = new Uint8Array(PAGE);
  const m = new GuestMemory([{ guestAddr: 0x2000, size: PAGE, hostAddr: 0x7f00_0000_0000n, bytes }]);
  assert.equal(m.hostAddress(0x2000, 1), 0x7f00_0000_0000n);
  assert.equal(m.hostAddress(0x2abc, 4), 0x7f00_0000_0abcn);
  assert.throws(() => m.hostAddress(0x1fff, 1), GuestMemoryError);
});

// --------------------------------------------------------------------------- construction

test('overlapping regions are rejected, in any order; adjacent ones are fine', () => {
  assert.throws(() => GuestMemory.forTest([{ guestAddr: 0, size: 2 * PAGE }, { guestAddr: PAGE, size: PAGE }]), /overlap/);
  assert.throws(() => GuestMemory.forTest([{ guestAddr: PAGE, size: PAGE }, { guestAddr: 0, size: PAGE + 1 }]), /overlap/);
  assert.throws(() => GuestMemory.forTest([{ guestAddr: 0, size: PAGE }, { guestAddr: 0, size: PAGE }]), /overlap/);
  assert.throws(() => GuestMemory.forTest([
    { guestAddr: 0x1_0000_0000, size: PAGE },
    { guestAddr: 0, size: PAGE },
    { guestAddr: 0x1_0000_0000 + PAGE - 1, size: PAGE },
  ]), /overlap/);
  const m = GuestMemory.forTest([{ guestAddr: PAGE, size: PAGE }, { guestAddr: 0, size: PAGE }]);
  assert.deepEqual(m.regions.map((r) => r.guestAddr), [0, PAGE], 'regions sorted by address');
});

test('a region whose view does not match its size is rejected', () => {
  assert.throws(() => new GuestMemory([{ guestAddr: 0, size: PAGE, hostAddr: 0n, bytes: new Uint8Array(PAGE - 1) }]));
});

test('totalSize and endAddr', () => {
  const m = GuestMemory.forTest([{ guestAddr: 0, size: PAGE }, { guestAddr: 0x1_0000_0000, size: 2 * PAGE }]);
  assert.equal(m.totalSize, 3 * PAGE);
  assert.equal(m.endAddr, 0x1_0000_0000 + 2 * PAGE);
  const empty = new GuestMemory([]);
  assert.equal(empty.totalSize, 0);
  assert.equal(empty.endAddr, 0);
  assert.throws(() => empty.readU8(0), GuestMemoryError);
});
