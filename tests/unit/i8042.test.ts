/**
 * The i8042 keyboard controller as Linux's i8042/atkbd drivers and a
 * `reboot` with reboot=k use it: command port 0x64 (offset 4), data port
 * 0x60 (offset 0). Values are literals from the IBM PC/AT technical
 * reference / <linux/i8042.h>.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { I8042, I8042_COMMAND_OFFSET, I8042_DATA_OFFSET, I8042_PORTS } from '../../src/vmm/devices/legacy/i8042/i8042.js';
import type { IrqTrigger } from '../../src/vmm/devices/irq.js';

const DATA = 0;
const CMD = 4;
const STR_OBF = 0x01;
const STR_CMDDAT = 0x08;

class FakeIrq implements IrqTrigger {
  count = 0;
  fail = false;
  trigger(): void {
    this.count++;
    if (this.fail) throw new Error('eventfd write failed');
  }
}

function kbc(): { dev: I8042; irq: FakeIrq; resets: () => number; inb(o: number): number; outb(o: number, v: number): void } {
  const irq = new FakeIrq();
  let resets = 0;
  const dev = new I8042(irq, () => { resets++; });
  return {
    dev,
    irq,
    resets: () => resets,
    inb(o) {
      const d = new Uint8Array(1);
      dev.read(o, d);
      return d[0]!;
    },
    outb(o, v) {
      dev.write(o, Uint8Array.of(v));
    },
  };
}

/** Reads the data port until OBF clears, like i8042_flush(). */
function drain(k: ReturnType<typeof kbc>): number[] {
  const out: number[] = [];
  while (k.inb(CMD) & STR_OBF) {
    out.push(k.inb(DATA));
    assert.ok(out.length <= 64, 'OBF never cleared');
  }
  return out;
}

test('port layout: data at +0, command/status at +4, five ports', () => {
  assert.equal(I8042_DATA_OFFSET, 0);
  assert.equal(I8042_COMMAND_OFFSET, 4);
  assert.equal(I8042_PORTS, 5);
});

test('0xfe on the command port pulses the CPU reset line', () => {
  const k = kbc();
  k.outb(CMD, 0xfe);
  assert.equal(k.resets(), 1);
  assert.equal(k.dev.metrics.reset_count, 1);
  k.outb(CMD, 0xfe);
  assert.equal(k.resets(), 2);
  // 0xfe on the data port is a keyboard byte (resend), not a reset.
  k.outb(DATA, 0xfe);
  assert.equal(k.resets(), 2);
});

test('controller self-test 0xaa answers 0x55; OBF set until the byte is read', () => {
  const k = kbc();
  assert.equal(k.inb(CMD) & STR_OBF, 0, 'output buffer empty at reset');
  k.outb(CMD, 0xaa);
  assert.equal(k.inb(CMD) & STR_OBF, STR_OBF);
  assert.equal(k.inb(DATA), 0x55);
  assert.equal(k.inb(CMD) & STR_OBF, 0);
});

test('keyboard interface test 0xab answers 0x00', () => {
  const k = kbc();
  k.outb(CMD, 0xab);
  assert.deepEqual(drain(k), [0x00]);
});

test('control byte: 0x20 reads it, 0x60 + data writes it', () => {
  const k = kbc();
  k.outb(CMD, 0x20);
  assert.deepEqual(drain(k), [0x01], 'reset value: keyboard interrupt enabled');
  k.outb(CMD, 0x60);
  assert.equal(k.inb(CMD) & STR_CMDDAT, STR_CMDDAT, 'next data byte belongs to the controller');
  k.outb(DATA, 0x47);
  assert.equal(k.inb(CMD) & STR_CMDDAT, 0);
  assert.equal(k.inb(CMD) & STR_OBF, 0, 'a controller data byte is not acknowledged like a keyboard byte');
  k.outb(CMD, 0x20);
  assert.deepEqual(drain(k), [0x47]);
  assert.equal(k.irq.count, 0, 'controller command replies are polled, not interrupt-driven');
});

test('0xad/0xae disable and enable the keyboard in the control byte', () => {
  const k = kbc();
  k.outb(CMD, 0xad);
  k.outb(CMD, 0x20);
  assert.deepEqual(drain(k), [0x11]);
  k.outb(CMD, 0xae);
  k.outb(CMD, 0x20);
  assert.deepEqual(drain(k), [0x01]);
});

test('output port: 0xd1 + data writes it, 0xd0 reads it back', () => {
  const k = kbc();
  k.outb(CMD, 0xd1);
  k.outb(DATA, 0xdf);
  k.outb(CMD, 0xd0);
  assert.deepEqual(drain(k), [0xdf]);
});

test('a byte written to the keyboard is acknowledged with 0xfa and an interrupt', () => {
  const k = kbc();
  k.outb(DATA, 0xf4); // enable scanning
  assert.equal(k.irq.count, 1);
  assert.equal(k.inb(CMD) & STR_OBF, STR_OBF);
  assert.equal(k.inb(DATA), 0xfa);
  k.outb(DATA, 0xed); // set LEDs ...
  k.outb(DATA, 0x00); // ... its argument
  assert.deepEqual(drain(k), [0xfa, 0xfa]);
  assert.equal(k.dev.metrics.write_count, 3);
});

test('sendCtrlAltDel types Ctrl-Alt-Del in scancode set 2 and raises the keyboard IRQ', () => {
  const k = kbc();
  assert.equal(k.dev.sendCtrlAltDel(), true);
  assert.equal(k.irq.count, 1);
  assert.equal(k.inb(CMD) & STR_OBF, STR_OBF);
  const bytes = drain(k);
  assert.deepEqual(bytes, [
    0x14, // Ctrl make
    0x11, // Alt make
    0xe0, 0x71, // Del make
    0xe0, 0xf0, 0x71, // Del break
    0xf0, 0x11, // Alt break
    0xf0, 0x14, // Ctrl break
  ]);
  // One interrupt per byte: the first from sendCtrlAltDel, then one after each read that leaves more.
  assert.equal(k.irq.count, 11);
  assert.equal(k.dev.metrics.read_count, 11);
});

test('no keyboard IRQ when the control byte disables it (data is still polled)', () => {
  const k = kbc();
  k.outb(CMD, 0x60);
  k.outb(DATA, 0x00);
  assert.equal(k.dev.sendCtrlAltDel(), true);
  assert.equal(k.irq.count, 0);
  assert.equal(drain(k).length, 11);
});

test('a full buffer refuses Ctrl-Alt-Del and keeps what it holds', () => {
  const k = kbc();
  assert.equal(k.dev.sendCtrlAltDel(), true);
  assert.equal(k.dev.sendCtrlAltDel(), false, '11 + 11 bytes do not fit in 16');
  assert.equal(drain(k).length, 11);
  assert.equal(k.dev.sendCtrlAltDel(), true, 'accepted again once the guest read the buffer');
  assert.equal(drain(k).length, 11);

  for (let i = 0; i < 20; i++) k.outb(DATA, 0xf4); // 20 ACKs into a 16-byte buffer
  assert.equal(k.dev.sendCtrlAltDel(), false);
  assert.deepEqual(drain(k), new Array(16).fill(0xfa));
});

test('reading an empty data port returns 0 and counts a missed read', () => {
  const k = kbc();
  assert.equal(k.inb(DATA), 0);
  assert.equal(k.dev.metrics.missed_read_count, 1);
});

test('unknown commands and ports are counted, not fatal', () => {
  const k = kbc();
  k.outb(CMD, 0x42);
  assert.equal(k.dev.metrics.missed_write_count, 1);
  k.outb(2, 0x00);
  assert.equal(k.dev.metrics.missed_write_count, 2);
  assert.equal(k.inb(2), 0);
  assert.equal(k.resets(), 0);
  assert.equal(k.inb(CMD) & STR_OBF, 0);
});

test('a failing IRQ trigger is counted as an error', () => {
  const k = kbc();
  k.irq.fail = true;
  assert.equal(k.dev.sendCtrlAltDel(), true);
  assert.equal(k.dev.metrics.error_count, 1);
});

test('a second view over the shared state is the same controller (API thread types, vCPU thread reads)', () => {
  const a = kbc();
  const irqB = new FakeIrq();
  let resetsB = 0;
  const b = new I8042(irqB, () => { resetsB++; }, a.dev.sharedState);
  const inbB = (o: number): number => {
    const d = new Uint8Array(1);
    b.read(o, d);
    return d[0]!;
  };
  assert.equal(inbB(CMD) & 0x10, 0x10, 'sees the reset status without re-initialising it');
  assert.equal(a.dev.sendCtrlAltDel(), true);
  assert.equal(a.irq.count, 1);
  assert.equal(inbB(CMD) & STR_OBF, STR_OBF);
  assert.equal(inbB(DATA), 0x14);
  assert.equal(irqB.count, 1, 'the reading view raises the next interrupt');
  assert.equal(a.inb(DATA), 0x11);
  b.write(CMD, Uint8Array.of(0xfe));
  assert.equal(resetsB, 1, 'the view that trapped the write reports the reset');
  assert.equal(a.resets(), 0);
  assert.equal(a.dev.metrics.reset_count, 1, 'metrics are shared');
});
