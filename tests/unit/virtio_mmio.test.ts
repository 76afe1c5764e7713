/**
 * The virtio-mmio transport (version 2) driven the way Linux's virtio_mmio
 * driver drives it: 32-bit register accesses by offset, the §3.1.1
 * initialization sequence, feature pages, queue setup. Register offsets and
 * status bits in this file are literals from the virtio 1.2 spec (table 4.1,
 * §2.1) / <linux/virtio_mmio.h>, not the implementation's constants.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { logger } from '../../src/logger/logger.js';
import { MmioTransport, type MmioDeviceSpec } from '../../src/vmm/devices/virtio/mmio/transport.js';

// The transport logs ignored accesses as Firecracker does; keep test output quiet.
logger.configure({ level: 'Error' });

const MAGIC = 0x000, VERSION = 0x004, DEVICE_ID = 0x008, VENDOR_ID = 0x00c;
const DEVICE_FEATURES = 0x010, DEVICE_FEATURES_SEL = 0x014, DRIVER_FEATURES = 0x020, DRIVER_FEATURES_SEL = 0x024;
const QUEUE_SEL = 0x030, QUEUE_NUM_MAX = 0x034, QUEUE_NUM = 0x038, QUEUE_READY = 0x044, QUEUE_NOTIFY = 0x050;
const INTERRUPT_STATUS = 0x060, INTERRUPT_ACK = 0x064, STATUS = 0x070;
const QUEUE_DESC_LOW = 0x080, QUEUE_DESC_HIGH = 0x084, QUEUE_DRIVER_LOW = 0x090, QUEUE_DRIVER_HIGH = 0x094;
const QUEUE_DEVICE_LOW = 0x0a0, QUEUE_DEVICE_HIGH = 0x0a4, SHM_SEL = 0x0ac, SHM_LEN_LOW = 0x0b0, SHM_LEN_HIGH = 0x0b4;
const CONFIG_GENERATION = 0x0fc, CONFIG = 0x100;

const ACKNOWLEDGE = 1, DRIVER = 2, DRIVER_OK = 4, FEATURES_OK = 8, DEVICE_NEEDS_RESET = 0x40, FAILED = 0x80;
const INT_VRING = 1, INT_CONFIG = 2;

const F_VERSION_1 = 1n << 32n;
// A block-like device: VIRTIO_BLK_F_SEG_MAX (2), F_BLK_SIZE (6), F_FLUSH (9), VIRTIO_F_RING_EVENT_IDX (29), VIRTIO_F_ACCESS_PLATFORM (33).
const OFFER = (1n << 2n) | (1n << 6n) | (1n << 9n) | (1n << 29n) | (1n << 33n);

const SPEC: MmioDeviceSpec = { deviceId: 2, deviceFeatures: OFFER, queueMaxSizes: [256, 128], configSize: 16 };

class Driver {
  constructor(readonly t: MmioTransport) {}
  readl(off: number): number {
    const d = new Uint8Array(4);
    this.t.read(off, d);
    return new DataView(d.buffer).getUint32(0, true);
  }
  writel(off: number, v: number): void {
    const d = new Uint8Array(4);
    new DataView(d.buffer).setUint32(0, v >>> 0, true);
    this.t.write(off, d);
  }
  addStatus(bits: number): void {
    this.writel(STATUS, this.readl(STATUS) | bits);
  }
  deviceFeatures(): bigint {
    this.writel(DEVICE_FEATURES_SEL, 1);
    const hi = BigInt(this.readl(DEVICE_FEATURES));
    this.writel(DEVICE_FEATURES_SEL, 0);
    return (hi << 32n) | BigInt(this.readl(DEVICE_FEATURES));
  }
  ackFeatures(f: bigint): void {
    this.writel(DRIVER_FEATURES_SEL, 1);
    this.writel(DRIVER_FEATURES, Number(f >> 32n));
    this.writel(DRIVER_FEATURES_SEL, 0);
    this.writel(DRIVER_FEATURES, Number(f & 0xffffffffn));
  }
  /** vm_setup_vq for modern devices. */
  setupQueue(i: number, num: number, desc: number, driver: number, device: number): void {
    this.writel(QUEUE_SEL, i);
    this.writel(QUEUE_NUM, num);
    this.writel(QUEUE_DESC_LOW, desc % 2 ** 32);
    this.writel(QUEUE_DESC_HIGH, Math.floor(desc / 2 ** 32));
    this.writel(QUEUE_DRIVER_LOW, driver % 2 ** 32);
    this.writel(QUEUE_DRIVER_HIGH, Math.floor(driver / 2 ** 32));
    this.writel(QUEUE_DEVICE_LOW, device % 2 ** 32);
    this.writel(QUEUE_DEVICE_HIGH, Math.floor(device / 2 ** 32));
    this.writel(QUEUE_READY, 1);
  }
  /** ACKNOWLEDGE, DRIVER, features, FEATURES_OK (returns whether it stuck). */
  negotiate(features: bigint): boolean {
    this.writel(STATUS, 0);
    this.addStatus(ACKNOWLEDGE);
    this.addStatus(DRIVER);
    this.ackFeatures(features);
    this.addStatus(FEATURES_OK);
    return (this.readl(STATUS) & FEATURES_OK) !== 0;
  }
}

function device(spec: MmioDeviceSpec = SPEC): { t: MmioTransport; drv: Driver; changes: Array<[number, number]> } {
  const t = new MmioTransport(spec);
  const changes: Array<[number, number]> = [];
  t.onStatusChange = (o, n) => changes.push([o, n]);
  return { t, drv: new Driver(t), changes };
}

// --------------------------------------------------------------------------- bring-up

test('driver-style bring-up: identification, features, queues, DRIVER_OK activates', () => {
  const { t, drv, changes } = device();
  assert.equal(drv.readl(MAGIC), 0x74726976);
  assert.equal(drv.readl(VERSION), 2);
  assert.equal(drv.readl(DEVICE_ID), 2);
  assert.equal(drv.readl(VENDOR_ID), 0);
  assert.equal(drv.readl(STATUS), 0);

  drv.addStatus(ACKNOWLEDGE);
  drv.addStatus(DRIVER);
  assert.equal(drv.readl(STATUS), ACKNOWLEDGE | DRIVER);

  // Both feature pages; VERSION_1 is offered on page 1 on top of the spec's bits.
  drv.writel(DEVICE_FEATURES_SEL, 0);
  assert.equal(drv.readl(DEVICE_FEATURES), (1 << 2) | (1 << 6) | (1 << 9) | (1 << 29));
  drv.writel(DEVICE_FEATURES_SEL, 1);
  assert.equal(drv.readl(DEVICE_FEATURES), 0b11);
  drv.writel(DEVICE_FEATURES_SEL, 2);
  assert.equal(drv.readl(DEVICE_FEATURES), 0);
  assert.equal(drv.deviceFeatures(), OFFER | F_VERSION_1);
  assert.equal(t.offeredFeatures(), OFFER | F_VERSION_1);

  const wanted = F_VERSION_1 | (1n << 9n) | (1n << 29n);
  drv.ackFeatures(wanted);
  drv.addStatus(FEATURES_OK);
  assert.equal(drv.readl(STATUS), ACKNOWLEDGE | DRIVER | FEATURES_OK);
  assert.equal(t.ackedFeatures(), wanted);

  // Queues: Linux checks QueueReady is 0 and reads QueueNumMax first.
  drv.writel(QUEUE_SEL, 0);
  assert.equal(drv.readl(QUEUE_READY), 0);
  assert.equal(drv.readl(QUEUE_NUM_MAX), 256);
  drv.setupQueue(0, 256, 0x1000, 0x2000, 0x3000);
  drv.writel(QUEUE_SEL, 1);
  assert.equal(drv.readl(QUEUE_NUM_MAX), 128);
  drv.setupQueue(1, 64, 0x1_2345_6000, 0x1_2345_7000, 0xfff_ffff_f000);
  drv.writel(QUEUE_SEL, 2);
  assert.equal(drv.readl(QUEUE_NUM_MAX), 0, 'no third queue');
  drv.writel(QUEUE_SEL, 0);
  assert.equal(drv.readl(QUEUE_READY), 1);

  assert.deepEqual(t.queueConfig(0), { size: 256, maxSize: 256, ready: true, desc: 0x1000, driver: 0x2000, device: 0x3000 });
  assert.deepEqual(t.queueConfig(1), {
    size: 64, maxSize: 128, ready: true, desc: 0x1_2345_6000, driver: 0x1_2345_7000, device: 0xfff_ffff_f000,
  });
  assert.throws(() => t.queueConfig(2), RangeError);

  assert.equal(t.activated, false);
  drv.addStatus(DRIVER_OK);
  assert.equal(t.status, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
  assert.equal(t.activated, true);
  assert.deepEqual(changes, [
    [0, ACKNOWLEDGE],
    [ACKNOWLEDGE, ACKNOWLEDGE | DRIVER],
    [ACKNOWLEDGE | DRIVER, ACKNOWLEDGE | DRIVER | FEATURES_OK],
    [ACKNOWLEDGE | DRIVER | FEATURES_OK, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK],
  ]);
  assert.equal(t.invalidAccessCount, 0, 'a correct bring-up makes no invalid access');
});

test('FEATURES_OK is refused unless VIRTIO_F_VERSION_1 was acked', () => {
  const { t, drv, changes } = device();
  assert.equal(drv.negotiate(1n << 9n), false);
  assert.equal(t.status, ACKNOWLEDGE | DRIVER);
  assert.equal(changes.length, 2, 'no status change reported for the refused step');
  // The driver may still fix its features (FEATURES_OK not set) and retry.
  drv.ackFeatures(F_VERSION_1 | (1n << 9n));
  drv.addStatus(FEATURES_OK);
  assert.equal(t.status, ACKNOWLEDGE | DRIVER | FEATURES_OK);
});

test('features outside the offer are masked off', () => {
  const { t, drv } = device();
  drv.writel(STATUS, ACKNOWLEDGE);
  drv.writel(STATUS, ACKNOWLEDGE | DRIVER);
  drv.ackFeatures(0xffff_ffff_ffff_ffffn);
  assert.equal(t.ackedFeatures(), OFFER | F_VERSION_1);
  // Pages beyond 1 hold nothing.
  drv.writel(DRIVER_FEATURES_SEL, 5);
  drv.writel(DRIVER_FEATURES, 0xffffffff);
  assert.equal(t.ackedFeatures(), OFFER | F_VERSION_1);
  // A page write replaces that page.
  drv.writel(DRIVER_FEATURES_SEL, 0);
  drv.writel(DRIVER_FEATURES, 1 << 9);
  assert.equal(t.ackedFeatures(), (1n << 9n) | (1n << 33n) | F_VERSION_1);
});

test('features cannot be acked before DRIVER or after FEATURES_OK', () => {
  const { t, drv } = device();
  drv.ackFeatures(F_VERSION_1);
  assert.equal(t.ackedFeatures(), 0n, 'before DRIVER');
  assert.ok(drv.negotiate(F_VERSION_1 | (1n << 2n)));
  drv.ackFeatures(F_VERSION_1);
  assert.equal(t.ackedFeatures(), F_VERSION_1 | (1n << 2n), 'after FEATURES_OK');
});

test('invalid status transitions are ignored', () => {
  const { t, drv, changes } = device();
  drv.writel(STATUS, ACKNOWLEDGE | DRIVER); // skipping ACKNOWLEDGE
  assert.equal(t.status, 0);
  drv.writel(STATUS, ACKNOWLEDGE);
  drv.writel(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK); // skipping steps
  assert.equal(t.status, ACKNOWLEDGE);
  drv.writel(STATUS, DRIVER); // clearing a bit
  assert.equal(t.status, ACKNOWLEDGE);
  assert.deepEqual(changes, [[0, ACKNOWLEDGE]]);
  assert.ok(t.invalidAccessCount >= 3);
});

test('FAILED can be set at any point and only a reset clears it', () => {
  const { t, drv, changes } = device();
  drv.negotiate(F_VERSION_1);
  drv.addStatus(FAILED);
  assert.equal(t.status, ACKNOWLEDGE | DRIVER | FEATURES_OK | FAILED);
  assert.deepEqual(changes.at(-1), [ACKNOWLEDGE | DRIVER | FEATURES_OK, ACKNOWLEDGE | DRIVER | FEATURES_OK | FAILED]);
  drv.addStatus(DRIVER_OK);
  assert.equal(t.status & DRIVER_OK, 0);
  assert.equal(t.activated, false);
  drv.writel(STATUS, 0);
  assert.equal(t.status, 0);
});

// --------------------------------------------------------------------------- queues

test('queue fields written after QueueReady, after DRIVER_OK or before FEATURES_OK are ignored', () => {
  const { t, drv } = device();
  drv.writel(STATUS, ACKNOWLEDGE);
  drv.writel(STATUS, ACKNOWLEDGE | DRIVER);
  drv.writel(QUEUE_SEL, 0);
  drv.writel(QUEUE_DESC_LOW, 0x9000);
  drv.writel(QUEUE_READY, 1);
  assert.deepEqual(t.queueConfig(0), { size: 256, maxSize: 256, ready: false, desc: 0, driver: 0, device: 0 }, 'before FEATURES_OK');

  drv.ackFeatures(F_VERSION_1);
  drv.addStatus(FEATURES_OK);
  drv.setupQueue(0, 128, 0x1000, 0x2000, 0x3000);
  const before = t.invalidAccessCount;
  for (const reg of [QUEUE_DESC_LOW, QUEUE_DESC_HIGH, QUEUE_DRIVER_LOW, QUEUE_DRIVER_HIGH, QUEUE_DEVICE_LOW, QUEUE_DEVICE_HIGH]) {
    drv.writel(reg, 0xdead0000);
  }
  drv.writel(QUEUE_NUM, 64);
  assert.deepEqual(t.queueConfig(0), { size: 128, maxSize: 256, ready: true, desc: 0x1000, driver: 0x2000, device: 0x3000 });
  assert.equal(t.invalidAccessCount, before + 7);

  // Queue 1 untouched before DRIVER_OK, then frozen by it.
  drv.addStatus(DRIVER_OK);
  drv.writel(QUEUE_SEL, 1);
  drv.writel(QUEUE_DESC_LOW, 0x5000);
  drv.writel(QUEUE_READY, 1);
  assert.deepEqual(t.queueConfig(1), { size: 128, maxSize: 128, ready: false, desc: 0, driver: 0, device: 0 });
  // Nor can a ready queue be taken away after DRIVER_OK.
  drv.writel(QUEUE_SEL, 0);
  drv.writel(QUEUE_READY, 0);
  assert.equal(t.queueConfig(0).ready, true);
});

test('QueueReady 0 before DRIVER_OK unfreezes the queue', () => {
  const { t, drv } = device();
  drv.negotiate(F_VERSION_1);
  drv.setupQueue(0, 256, 0x1000, 0x2000, 0x3000);
  drv.writel(QUEUE_READY, 0);
  drv.writel(QUEUE_DESC_LOW, 0x8000);
  assert.equal(drv.readl(QUEUE_READY), 0);
  assert.equal(t.queueConfig(0).desc, 0x8000);
});

test('QueueNum above QueueNumMax (or not a power of two) is refused and leaves the queue unusable', () => {
  const { t, drv } = device();
  drv.negotiate(F_VERSION_1);
  drv.writel(QUEUE_SEL, 1);
  drv.writel(QUEUE_NUM, 256); // max 128
  assert.equal(t.queueConfig(1).size, 0);
  drv.writel(QUEUE_READY, 1);
  assert.equal(drv.readl(QUEUE_READY), 0, 'cannot be made ready');
  assert.equal(t.queueConfig(1).ready, false);

  drv.writel(QUEUE_NUM, 100); // split rings need a power of two
  assert.equal(t.queueConfig(1).size, 0);
  drv.writel(QUEUE_NUM, 0);
  assert.equal(t.queueConfig(1).size, 0);

  drv.writel(QUEUE_NUM, 32);
  drv.writel(QUEUE_READY, 1);
  assert.equal(drv.readl(QUEUE_READY), 1);
  assert.equal(t.queueConfig(1).size, 32);
});

test('with VIRTIO_F_RING_PACKED acked, any size up to the max is accepted', () => {
  const { t, drv } = device({ ...SPEC, deviceFeatures: OFFER | (1n << 34n) });
  drv.negotiate(F_VERSION_1 | (1n << 34n));
  drv.writel(QUEUE_SEL, 0);
  drv.writel(QUEUE_NUM, 100);
  assert.equal(t.queueConfig(0).size, 100);
});

test('QueueNotify reaching the transport goes to the callback', () => {
  const { t, drv } = device();
  const notes: Array<[number, number]> = [];
  t.onQueueNotify = (q, v) => notes.push([q, v]);
  drv.writel(QUEUE_NOTIFY, 1);
  drv.writel(QUEUE_NOTIFY, 0x0005_0000); // VIRTIO_F_NOTIFICATION_DATA layout: queue in the low 16 bits
  assert.deepEqual(notes, [[1, 1], [0, 0x0005_0000]]);
  assert.equal(t.queueNotifyCount, 2);
});

// --------------------------------------------------------------------------- reset

test('writing 0 to Status resets queues, features, status and interrupts', () => {
  const { t, drv, changes } = device();
  drv.negotiate(F_VERSION_1 | (1n << 9n));
  drv.setupQueue(0, 64, 0x1000, 0x2000, 0x3000);
  drv.addStatus(DRIVER_OK);
  t.raiseInterrupt(INT_VRING | INT_CONFIG);
  drv.writel(DEVICE_FEATURES_SEL, 1);
  drv.writel(QUEUE_SEL, 1);

  drv.writel(STATUS, 0);
  assert.deepEqual(changes.at(-1), [ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK, 0]);
  assert.equal(t.status, 0);
  assert.equal(t.activated, false);
  assert.equal(t.ackedFeatures(), 0n);
  assert.equal(t.interruptStatus, 0);
  assert.equal(drv.readl(INTERRUPT_STATUS), 0);
  assert.deepEqual(t.queueConfig(0), { size: 256, maxSize: 256, ready: false, desc: 0, driver: 0, device: 0 });
  // Selectors are back to 0.
  assert.equal(drv.readl(QUEUE_NUM_MAX), 256);
  assert.equal(drv.readl(DEVICE_FEATURES) & 0x200, 0x200, 'page 0 selected again');

  // Resetting a reset device reports nothing; the device can be brought up again.
  const n = changes.length;
  drv.writel(STATUS, 0);
  assert.equal(changes.length, n);
  assert.ok(drv.negotiate(F_VERSION_1));
  drv.addStatus(DRIVER_OK);
  assert.equal(t.activated, true);
});

test('a failing activation hook sets DEVICE_NEEDS_RESET and raises a config interrupt', () => {
  const { t, drv } = device();
  const errors: unknown[] = [];
  t.onStatusChange = (_o, n) => {
    if (n & DRIVER_OK) throw new Error('no backend');
  };
  t.onHookError = (err) => errors.push(err);
  drv.negotiate(F_VERSION_1);
  drv.addStatus(DRIVER_OK);
  assert.equal(errors.length, 1);
  assert.equal(t.activated, false);
  assert.equal(drv.readl(STATUS), ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK | DEVICE_NEEDS_RESET);
  assert.equal(drv.readl(INTERRUPT_STATUS), INT_CONFIG);
  // Without a handler, the error propagates to the trapping thread.
  const { t: t2, drv: drv2 } = device();
  t2.onStatusChange = (_o, n) => {
    if (n & DRIVER_OK) throw new Error('no backend');
  };
  drv2.negotiate(F_VERSION_1);
  assert.throws(() => drv2.addStatus(DRIVER_OK), /no backend/);
  assert.equal(t2.status & DEVICE_NEEDS_RESET, DEVICE_NEEDS_RESET);
});

test('setNeedsReset raises the config interrupt only after DRIVER_OK', () => {
  const { t, drv } = device();
  drv.negotiate(F_VERSION_1);
  assert.equal(t.setNeedsReset(), false);
  assert.equal(t.interruptStatus, 0);
  assert.equal(t.status & DEVICE_NEEDS_RESET, DEVICE_NEEDS_RESET);
  drv.writel(STATUS, 0);
  drv.negotiate(F_VERSION_1);
  drv.addStatus(DRIVER_OK);
  assert.equal(t.setNeedsReset(), true);
  assert.equal(drv.readl(INTERRUPT_STATUS), INT_CONFIG);
  assert.equal(drv.readl(STATUS) & DEVICE_NEEDS_RESET, DEVICE_NEEDS_RESET);
});

// --------------------------------------------------------------------------- interrupts

test('InterruptStatus collects raised bits; InterruptACK clears the acked ones', () => {
  const { t, drv } = device();
  drv.negotiate(F_VERSION_1);
  drv.addStatus(DRIVER_OK);
  t.raiseInterrupt(INT_VRING);
  assert.equal(drv.readl(INTERRUPT_STATUS), INT_VRING);
  t.raiseInterrupt(INT_CONFIG);
  t.raiseInterrupt(INT_VRING);
  assert.equal(drv.readl(INTERRUPT_STATUS), INT_VRING | INT_CONFIG);
  drv.writel(INTERRUPT_ACK, INT_VRING);
  assert.equal(drv.readl(INTERRUPT_STATUS), INT_CONFIG);
  drv.writel(INTERRUPT_ACK, INT_CONFIG);
  assert.equal(t.interruptStatus, 0);
  t.raiseInterrupt(0xfc); // undefined bits are not set
  assert.equal(t.interruptStatus, 0);
});

// --------------------------------------------------------------------------- config space

test('config space: any-width reads, setConfig bumps ConfigGeneration', () => {
  const { t, drv } = device();
  assert.equal(drv.readl(CONFIG_GENERATION), 0);
  const cfg = Uint8Array.from({ length: 16 }, (_, i) => 0x10 + i);
  t.setConfig(cfg);
  assert.equal(drv.readl(CONFIG_GENERATION), 1);
  t.setConfig(Uint8Array.of(0xaa, 0xbb), 14);
  assert.equal(drv.readl(CONFIG_GENERATION), 2);

  const b = new Uint8Array(1);
  t.read(CONFIG + 3, b);
  assert.equal(b[0], 0x13);
  const w = new Uint8Array(2);
  t.read(CONFIG + 1, w); // unaligned is fine in config space
  assert.deepEqual([...w], [0x11, 0x12]);
  assert.equal(drv.readl(CONFIG + 12), 0xbbaa1d1c);
  const q = new Uint8Array(8);
  t.read(CONFIG, q);
  assert.deepEqual([...q], [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17]);
  // Past the device's config space: zeros.
  assert.equal(drv.readl(CONFIG + 16), 0);
  t.read(CONFIG + 14, q);
  assert.deepEqual([...q], [0xaa, 0xbb, 0, 0, 0, 0, 0, 0]);

  assert.throws(() => t.setConfig(new Uint8Array(4), 13), RangeError);
  assert.deepEqual([...t.config().subarray(12)], [0x1c, 0x1d, 0xaa, 0xbb]);

  // ConfigGeneration is not reset with the device.
  drv.writel(STATUS, ACKNOWLEDGE);
  drv.writel(STATUS, 0);
  assert.equal(drv.readl(CONFIG_GENERATION), 2);
});

test('guest config writes go to onConfigWrite, and are stored only if the device allows', () => {
  const ro = device();
  const seen: Array<[number, number[]]> = [];
  ro.t.onConfigWrite = (off, data) => seen.push([off, [...data]]);
  ro.t.write(CONFIG + 4, Uint8Array.of(1, 2)); // status 0: ignored
  assert.deepEqual(seen, []);
  ro.drv.writel(STATUS, ACKNOWLEDGE);
  ro.drv.writel(STATUS, ACKNOWLEDGE | DRIVER);
  ro.t.write(CONFIG + 4, Uint8Array.of(1, 2));
  ro.t.write(CONFIG + 15, Uint8Array.of(1, 2)); // crosses the end: ignored
  assert.deepEqual(seen, [[4, [1, 2]]]);
  assert.deepEqual([...ro.t.config().subarray(4, 6)], [0, 0], 'not stored');

  const rw = device({ ...SPEC, configWritable: true });
  rw.drv.writel(STATUS, ACKNOWLEDGE);
  rw.drv.writel(STATUS, ACKNOWLEDGE | DRIVER);
  rw.drv.writel(CONFIG + 8, 0x04030201);
  assert.deepEqual([...rw.t.config().subarray(8, 12)], [1, 2, 3, 4]);
  assert.equal(rw.drv.readl(CONFIG + 8), 0x04030201);
  assert.equal(rw.drv.readl(CONFIG_GENERATION), 0, 'guest writes do not bump the generation');
});

// --------------------------------------------------------------------------- access rules

test('register accesses must be 32-bit and aligned: others read 0 and are ignored', () => {
  const { t, drv } = device();
  const b = Uint8Array.of(0xff);
  t.read(MAGIC, b);
  assert.equal(b[0], 0, 'byte read of MagicValue');
  const h = Uint8Array.of(0xff, 0xff);
  t.read(VERSION, h);
  assert.deepEqual([...h], [0, 0], '16-bit read');
  const q = new Uint8Array(8).fill(0xff);
  t.read(MAGIC, q);
  assert.deepEqual([...q], [0, 0, 0, 0, 0, 0, 0, 0], '64-bit read');
  assert.equal(drv.readl(MAGIC + 1), 0, 'unaligned read');
  assert.equal(drv.readl(DEVICE_ID + 2), 0, 'unaligned read');

  t.write(STATUS, Uint8Array.of(ACKNOWLEDGE));
  assert.equal(t.status, 0, 'byte write of Status');
  drv.writel(STATUS + 1, ACKNOWLEDGE);
  assert.equal(t.status, 0, 'unaligned write');
  assert.ok(t.invalidAccessCount >= 7);
});

test('write-only and unknown registers read 0; read-only ones ignore writes', () => {
  const { t, drv } = device();
  for (const reg of [DEVICE_FEATURES_SEL, DRIVER_FEATURES, QUEUE_SEL, QUEUE_NUM, QUEUE_NOTIFY, INTERRUPT_ACK, QUEUE_DESC_LOW, 0x0e0]) {
    assert.equal(drv.readl(reg), 0, `register 0x${reg.toString(16)}`);
  }
  drv.writel(MAGIC, 0);
  drv.writel(DEVICE_ID, 7);
  drv.writel(INTERRUPT_STATUS, 3);
  drv.writel(CONFIG_GENERATION, 9);
  assert.equal(drv.readl(MAGIC), 0x74726976);
  assert.equal(drv.readl(DEVICE_ID), 2);
  assert.equal(drv.readl(CONFIG_GENERATION), 0);
  assert.equal(t.interruptStatus, 0);
});

test('no shared memory regions: SHMLen reads as -1', () => {
  const { drv } = device();
  drv.writel(SHM_SEL, 0);
  assert.equal(drv.readl(SHM_LEN_LOW), 0xffffffff);
  assert.equal(drv.readl(SHM_LEN_HIGH), 0xffffffff);
});

test('vendor id and spec validation', () => {
  const { drv } = device({ ...SPEC, vendorId: 0x554d4551 });
  assert.equal(drv.readl(VENDOR_ID), 0x554d4551);
  assert.throws(() => new MmioTransport({ ...SPEC, queueMaxSizes: [0] }), RangeError);
  assert.throws(() => new MmioTransport({ ...SPEC, queueMaxSizes: [65536] }), RangeError);
  assert.throws(() => new MmioTransport({ ...SPEC, configSize: 0xf01 }), RangeError);
  assert.throws(() => new MmioTransport({ ...SPEC, deviceFeatures: 1n << 64n }), RangeError);
});

// --------------------------------------------------------------------------- shared views

test('a second view on the same SharedArrayBuffer sees and changes the same state', () => {
  const { t: a, drv } = device();
  const b = new MmioTransport(SPEC, a.sharedState);
  const c = MmioTransport.fromShared(a.sharedState);
  assert.deepEqual(c.spec, { ...SPEC, vendorId: 0, configWritable: false });
  const viaB = new Driver(b);

  // Initialization split between "vCPU threads".
  drv.writel(STATUS, ACKNOWLEDGE);
  viaB.writel(STATUS, ACKNOWLEDGE | DRIVER);
  assert.equal(c.status, ACKNOWLEDGE | DRIVER);
  viaB.ackFeatures(F_VERSION_1 | (1n << 6n));
  drv.addStatus(FEATURES_OK);
  assert.equal(c.ackedFeatures(), F_VERSION_1 | (1n << 6n));
  viaB.writel(QUEUE_SEL, 1);
  assert.equal(drv.readl(QUEUE_NUM_MAX), 128, 'QueueSel is shared');
  drv.setupQueue(1, 128, 0x4000, 0x5000, 0x6000);
  assert.deepEqual(c.queueConfig(1), { size: 128, maxSize: 128, ready: true, desc: 0x4000, driver: 0x5000, device: 0x6000 });

  // Hooks belong to the view that trapped the write.
  const seenB: number[] = [];
  b.onStatusChange = (_o, n) => seenB.push(n);
  viaB.addStatus(DRIVER_OK);
  assert.deepEqual(seenB, [ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK]);
  assert.equal(a.activated, true);

  // The "device thread" raises an interrupt; a vCPU sees and acks it.
  c.raiseInterrupt(INT_VRING);
  assert.equal(drv.readl(INTERRUPT_STATUS), INT_VRING);
  viaB.writel(INTERRUPT_ACK, INT_VRING);
  assert.equal(a.interruptStatus, 0);
  c.setConfig(Uint8Array.of(9, 8, 7, 6));
  assert.equal(drv.readl(CONFIG), 0x06070809);
  assert.equal(viaB.readl(CONFIG_GENERATION), 1);

  assert.throws(() => new MmioTransport({ ...SPEC, queueMaxSizes: [256, 64] }, a.sharedState), /spec/);
  assert.throws(() => new MmioTransport({ ...SPEC, deviceId: 1 }, a.sharedState), /spec/);
  assert.throws(() => MmioTransport.fromShared(new SharedArrayBuffer(256)), /MmioTransport/);
});

test('views on worker threads share the transport', async () => {
  const { Worker } = await import('node:worker_threads');
  const { t, drv } = device();
  drv.negotiate(F_VERSION_1);
  const url = new URL(import.meta.url);
  const modUrl = new URL('../../src/vmm/devices/virtio/mmio/transport.js', url).href;
  // The worker plays a vCPU: it sets up queue 0 and DRIVER_OK through its own view.
  const src = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.modUrl).then(({ MmioTransport }) => {
      const t = MmioTransport.fromShared(workerData.sab);
      const w = (off, v) => { const d = new Uint8Array(4); new DataView(d.buffer).setUint32(0, v, true); t.write(off, d); };
      let changes = 0;
      t.onStatusChange = () => changes++;
      w(0x30, 0); w(0x38, 16); w(0x80, 0x7000); w(0x44, 1); w(0x70, 0xf);
      for (let i = 0; i < 1000; i++) t.raiseInterrupt(1);
      parentPort.postMessage(changes);
    });`;
  const worker = new Worker(src, { eval: true, workerData: { modUrl, sab: t.sharedState } });
  const changes = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  assert.equal(changes, 1);
  assert.equal(t.activated, true);
  assert.equal(t.queueConfig(0).size, 16);
  assert.equal(t.queueConfig(0).desc, 0x7000);
  assert.equal(drv.readl(INTERRUPT_STATUS), INT_VRING);
});

test('InterruptACK (lock-free) never loses a bit the device thread raises meanwhile', async () => {
  const { Worker } = await import('node:worker_threads');
  const { t, drv } = device();
  drv.negotiate(F_VERSION_1);
  drv.addStatus(DRIVER_OK);
  const modUrl = new URL('../../src/vmm/devices/virtio/mmio/transport.js', import.meta.url).href;
  const stop = new Int32Array(new SharedArrayBuffer(4));
  // The worker plays the device thread: raises CONFIG whenever it is clear and
  // counts its raises. The main thread (a vCPU) acks VRING over and over and
  // CONFIG whenever it sees it: an ACK that rewrote the cell non-atomically
  // would drop a CONFIG raised meanwhile, and the counts would differ.
  const src = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.modUrl).then(({ MmioTransport }) => {
      const t = MmioTransport.fromShared(workerData.sab);
      let raises = 0;
      parentPort.postMessage('ready');
      while (Atomics.load(workerData.stop, 0) === 0) {
        if ((t.interruptStatus & ${INT_CONFIG}) === 0) { t.raiseInterrupt(${INT_CONFIG}); raises++; }
      }
      parentPort.postMessage(raises);
    });`;
  const worker = new Worker(src, { eval: true, workerData: { modUrl, sab: t.sharedState, stop } });
  await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
  const raises = new Promise<number>((resolve) => worker.once('message', resolve));
  let acks = 0;
  for (let i = 0; i < 200_000; i++) {
    t.raiseInterrupt(INT_VRING);
    drv.writel(INTERRUPT_ACK, INT_VRING);
    if (drv.readl(INTERRUPT_STATUS) & INT_CONFIG) {
      drv.writel(INTERRUPT_ACK, INT_CONFIG);
      acks++;
    }
  }
  Atomics.store(stop, 0, 1);
  const raised = await raises;
  await worker.terminate();
  assert.ok(acks > 0, 'the threads never overlapped');
  assert.equal(raised, acks + ((t.interruptStatus & INT_CONFIG) !== 0 ? 1 : 0), 'a raised CONFIG was lost');
});
