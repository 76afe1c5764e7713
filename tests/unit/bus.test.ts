/**
 * The device bus: non-overlapping ranges, dispatch with the offset inside the
 * device's range, and "unclaimed" reported to the caller.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Bus, BusError, type BusDevice } from '../../src/vmm/devices/bus.js';

class Recorder implements BusDevice {
  readonly reads: Array<[number, number]> = [];
  readonly writes: Array<[number, number[]]> = [];
  constructor(private readonly tag: number) {}
  read(offset: number, data: Uint8Array): void {
    this.reads.push([offset, data.byteLength]);
    data.fill(this.tag);
    data[0] = offset;
  }
  write(offset: number, data: Uint8Array): void {
    this.writes.push([offset, [...data]]);
  }
}

test('overlapping ranges are rejected with a message naming both devices', () => {
  const bus = new Bus('pio');
  bus.insert(new Recorder(1), 0x3f8, 8, 'com1');
  for (const [base, len] of [[0x3f8, 8], [0x3f0, 9], [0x3ff, 1], [0x3fa, 2], [0x3f0, 0x20]] as const) {
    assert.throws(
      () => bus.insert(new Recorder(2), base, len, 'intruder'),
      (e: unknown) => e instanceof BusError && /intruder/.test(e.message) && /com1/.test(e.message) && /pio/.test(e.message),
      `0x${base.toString(16)}+${len}`,
    );
  }
  assert.deepEqual(bus.devices, [{ base: 0x3f8, len: 8, name: 'com1' }], 'a rejected device is not added');
});

test('adjacent ranges are fine on both sides', () => {
  const bus = new Bus('mmio');
  bus.insert(new Recorder(1), 0xd000_1000, 0x1000, 'virtio1');
  bus.insert(new Recorder(2), 0xd000_0000, 0x1000, 'virtio0');
  bus.insert(new Recorder(3), 0xd000_2000, 0x1000, 'virtio2');
  assert.deepEqual(bus.devices.map((d) => d.name), ['virtio0', 'virtio1', 'virtio2']);
});

test('empty ranges are rejected', () => {
  const bus = new Bus('pio');
  assert.throws(() => bus.insert(new Recorder(1), 0x60, 0, 'i8042'), BusError);
  assert.throws(() => bus.insert(new Recorder(1), 0x60, -1, 'i8042'), BusError);
});

test('reads and writes reach the device owning the address, with the offset into its range', () => {
  const bus = new Bus('pio');
  const kbd = new Recorder(0xa);
  const com1 = new Recorder(0xb);
  const com2 = new Recorder(0xc);
  bus.insert(com1, 0x3f8, 8, 'com1');
  bus.insert(kbd, 0x60, 5, 'i8042');
  bus.insert(com2, 0x2f8, 8, 'com2');

  const d = new Uint8Array(1);
  assert.equal(bus.read(0x3fd, d), true);
  assert.deepEqual(com1.reads, [[5, 1]]);
  assert.equal(d[0], 5);

  assert.equal(bus.write(0x64, Uint8Array.of(0xfe)), true);
  assert.deepEqual(kbd.writes, [[4, [0xfe]]]);
  assert.equal(bus.write(0x60, Uint8Array.of(0xf4)), true);
  assert.deepEqual(kbd.writes[1], [0, [0xf4]]);

  const d4 = new Uint8Array(4);
  assert.equal(bus.read(0x2f8, d4), true);
  assert.deepEqual([...d4], [0, 0xc, 0xc, 0xc]);
  assert.deepEqual(com2.reads, [[0, 4]]);
  assert.equal(bus.write(0x2ff, Uint8Array.of(1, 2)), true);
  assert.deepEqual(com2.writes, [[7, [1, 2]]]);
  assert.deepEqual(com1.writes, []);
});

test('unclaimed addresses return false and touch no device or buffer', () => {
  const bus = new Bus('mmio');
  const dev = new Recorder(1);
  bus.insert(dev, 0xc000_1000, 0x1000, 'virtio0');
  const d = Uint8Array.of(0x5a, 0x5a, 0x5a, 0x5a);
  for (const addr of [0, 0xc000_0fff, 0xc000_2000, 0xfee0_0000]) {
    assert.equal(bus.read(addr, d), false, `read 0x${addr.toString(16)}`);
    assert.equal(bus.write(addr, d), false, `write 0x${addr.toString(16)}`);
  }
  assert.deepEqual([...d], [0x5a, 0x5a, 0x5a, 0x5a]);
  assert.deepEqual(dev.reads, []);
  assert.deepEqual(dev.writes, []);
  assert.equal(new Bus('pio').read(0x80, d), false, 'an empty bus claims nothing');
});

test('lookup stays right with many devices inserted out of order', () => {
  const bus = new Bus('mmio');
  const devs = Array.from({ length: 32 }, (_, i) => new Recorder(i));
  const order = Array.from({ length: 32 }, (_, i) => (i * 13) % 32);
  for (const i of order) bus.insert(devs[i]!, 0x1_0000 + i * 0x100, 0x80, `dev${i}`);
  for (let i = 0; i < 32; i++) {
    const d = new Uint8Array(2);
    assert.equal(bus.read(0x1_0000 + i * 0x100 + 0x7f, d), true);
    assert.deepEqual(devs[i]!.reads.at(-1), [0x7f, 2]);
    assert.equal(d[1], i);
    assert.equal(bus.read(0x1_0000 + i * 0x100 + 0x80, d), false, 'hole between devices');
  }
});

test('lookups stay right when accesses alternate between devices and holes (last-hit cache)', () => {
  const bus = new Bus('mmio');
  const a = new Recorder(1);
  const b = new Recorder(2);
  bus.insert(a, 0xc000_1000, 0x1000, 'a');
  bus.insert(b, 0xc000_3000, 0x1000, 'b');
  const d = new Uint8Array(4);
  const cases: Array<[number, Recorder | null, number]> = [
    [0xc000_1060, a, 0x60], [0xc000_1064, a, 0x64], [0xc000_1fff, a, 0xfff],
    [0xc000_2000, null, 0], [0xc000_0fff, null, 0], [0xc000_3000, b, 0], [0xc000_1000, a, 0], [0xc000_4000, null, 0],
    [0xc000_3ffc, b, 0xffc], [0xc000_2fff, null, 0],
  ];
  for (const [addr, dev, off] of cases) {
    const before = [a.reads.length, b.reads.length];
    assert.equal(bus.read(addr, d), dev !== null, `0x${addr.toString(16)}`);
    if (dev) assert.deepEqual(dev.reads.at(-1), [off, 4], `0x${addr.toString(16)}`);
    assert.equal(a.reads.length + b.reads.length, before[0]! + before[1]! + (dev ? 1 : 0));
  }
  // A device inserted after lookups is found too.
  const c = new Recorder(3);
  bus.insert(c, 0xc000_2000, 0x1000, 'c');
  assert.equal(bus.write(0xc000_2008, d), true);
  assert.deepEqual(c.writes.at(-1)?.[0], 8);
});
