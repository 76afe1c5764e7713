/**
 * The 16550A UART driven the way Linux's 8250 driver drives it: register
 * accesses by offset from the base port, one byte at a time. Register values
 * in assertions are literals from the PC16550D datasheet / <linux/serial_reg.h>.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { RX_CAPACITY, Serial } from '../../src/vmm/devices/legacy/serial/serial.js';
import type { IrqTrigger } from '../../src/vmm/devices/irq.js';

// Register offsets (<linux/serial_reg.h>).
const RX = 0, TX = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

class FakeIrq implements IrqTrigger {
  count = 0;
  fail = false;
  trigger(): void {
    this.count++;
    if (this.fail) throw new Error('eventfd write failed');
  }
}

interface Uart {
  serial: Serial;
  irq: FakeIrq;
  out: number[];
  inb(off: number): number;
  outb(off: number, v: number): void;
}

function uart(sink?: (b: number) => void): Uart {
  const irq = new FakeIrq();
  const out: number[] = [];
  const serial = new Serial(irq, sink ?? ((b) => out.push(b)));
  return {
    serial,
    irq,
    out,
    inb(off) {
      const d = new Uint8Array(1);
      serial.read(off, d);
      return d[0]!;
    },
    outb(off, v) {
      serial.write(off, Uint8Array.of(v));
    },
  };
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

// --------------------------------------------------------------------------- transmit

test('bytes written to THR reach the sink in order', () => {
  const u = uart();
  for (const b of text('Linux version 6.1\r\n')) u.outb(TX, b);
  assert.equal(Buffer.from(u.out).toString(), 'Linux version 6.1\r\n');
  assert.equal(u.serial.metrics.write_count, 19);
  assert.equal(u.irq.count, 0, 'no interrupt with IER = 0');
});

test('LSR: transmitter always empty (THRE|TEMT), DR only while input is queued', () => {
  const u = uart();
  assert.equal(u.inb(LSR), 0x60);
  u.outb(TX, 0x41);
  assert.equal(u.inb(LSR), 0x60, 'still empty right after a write');
  u.serial.enqueueInput(text('x'));
  assert.equal(u.inb(LSR), 0x61);
  assert.equal(u.inb(RX), 0x78);
  assert.equal(u.inb(LSR), 0x60);
});

test('reset state the 8250 probe reads: IIR no interrupt + FIFOs, LCR 8N1, MCR OUT2', () => {
  const u = uart();
  assert.equal(u.inb(IER), 0);
  assert.equal(u.inb(IIR), 0xc1);
  assert.equal(u.inb(LCR), 0x03);
  assert.equal(u.inb(MCR), 0x08);
  assert.equal(u.inb(MSR), 0xb0, 'DCD|DSR|CTS: a connected line');
});

// --------------------------------------------------------------------------- THRE interrupt

test('enabling IER.THRI raises an interrupt; reading IIR acknowledges it', () => {
  const u = uart();
  u.outb(IER, 0x02);
  assert.equal(u.irq.count, 1, 'THRE interrupt raised at once (transmitter is empty)');
  assert.equal(u.inb(IIR), 0x02 | 0xc0, 'IIR: THRE pending, FIFOs enabled');
  assert.equal(u.inb(IIR), 0x01 | 0xc0, 'IIR: no interrupt after the THRE one was read');
  assert.equal(u.irq.count, 1);
});

test('each THR write with IER.THRI re-raises THRE (the driver transmits from its interrupt handler)', () => {
  const u = uart();
  u.outb(IER, 0x02);
  assert.equal(u.inb(IIR), 0xc2);
  u.outb(TX, 0x61);
  assert.equal(u.irq.count, 2);
  assert.equal(u.inb(IIR), 0xc2);
  assert.equal(u.inb(IIR), 0xc1);
  u.outb(IER, 0x00);
  u.outb(TX, 0x62);
  assert.equal(u.irq.count, 2, 'no interrupt once IER.THRI is cleared');
  assert.equal(u.inb(IIR), 0xc1);
  assert.deepEqual(u.out, [0x61, 0x62]);
});

test('THR writes while a THRE interrupt is pending raise no further edge; the next one comes after IIR is read', () => {
  const u = uart();
  u.outb(IER, 0x02);
  assert.equal(u.irq.count, 1);
  // The driver's handler: read IIR (acknowledges THRE), then fill the FIFO with 16 bytes.
  assert.equal(u.inb(IIR), 0xc2);
  for (let i = 0; i < 16; i++) u.outb(TX, 0x41 + i);
  assert.equal(u.irq.count, 2, 'one edge for the burst, not one per byte');
  assert.equal(u.inb(IIR), 0xc2, 'THRE pending for the next burst');
  u.outb(TX, 0x5a);
  assert.equal(u.irq.count, 3, 'after IIR was read, the next byte raises an edge again');
  assert.equal(u.out.length, 17);
});

test('clearing IER.THRI withdraws a pending THRE; setting it again raises a new edge', () => {
  const u = uart();
  u.outb(IER, 0x02);
  u.outb(IER, 0x00);
  assert.equal(u.inb(IIR), 0xc1, 'no interrupt pending once THRI is cleared');
  u.outb(IER, 0x02);
  assert.equal(u.irq.count, 2, 'start_tx after stop_tx gets its interrupt');
  assert.equal(u.inb(IIR), 0xc2);
});

test('Linux serial8250_do_startup THRE test: IER=THRI then LSR.TEMT and IIR without NO_INT', () => {
  const u = uart();
  u.outb(IER, 0x02);
  const lsr = u.inb(LSR);
  const iir = u.inb(IIR);
  u.outb(IER, 0);
  assert.ok(lsr & 0x40, 'TEMT');
  assert.equal(iir & 0x01, 0, 'an interrupt is pending, so the driver does not flag UART_BUG_THRE');
});

test('only the four defined IER bits are stored', () => {
  const u = uart();
  u.outb(IER, 0xff);
  assert.equal(u.inb(IER), 0x0f);
});

// --------------------------------------------------------------------------- receive

test('RDA interrupt when input arrives with IER.RDI set; cleared when the FIFO drains', () => {
  const u = uart();
  u.outb(IER, 0x01);
  assert.equal(u.irq.count, 0, 'nothing to receive yet');
  u.serial.enqueueInput(text('ls\n'));
  assert.equal(u.irq.count, 1);
  assert.equal(u.inb(IIR), 0x04 | 0xc0);
  assert.equal(u.inb(IIR), 0x04 | 0xc0, 'reading IIR does not clear RDA');
  assert.equal(u.inb(RX), 0x6c);
  assert.equal(u.inb(IIR), 0xc4, 'still data in the FIFO');
  assert.equal(u.inb(RX), 0x73);
  assert.equal(u.inb(RX), 0x0a);
  assert.equal(u.inb(IIR), 0xc1, 'FIFO drained: no interrupt');
  assert.equal(u.inb(LSR) & 0x01, 0);
  assert.equal(u.serial.metrics.read_count, 3);
});

test('input queued before IER.RDI is enabled raises RDA when the driver enables it', () => {
  const u = uart();
  u.serial.enqueueInput(text('a'));
  assert.equal(u.irq.count, 0, 'no interrupt with IER = 0');
  assert.equal(u.inb(LSR) & 0x01, 1, 'but DR is visible for polling');
  u.outb(IER, 0x01);
  assert.equal(u.irq.count, 1);
  assert.equal(u.inb(IIR), 0xc4);
  assert.equal(u.inb(RX), 0x61);
});

test('RDA takes priority over THRE in IIR', () => {
  const u = uart();
  u.outb(IER, 0x03);
  u.serial.enqueueInput(text('q'));
  assert.equal(u.inb(IIR), 0xc4);
  u.outb(TX, 0x21); // THRE must not hide the pending RDA
  assert.equal(u.inb(IIR), 0xc4);
  assert.equal(u.inb(RX), 0x71);
  assert.notEqual(u.inb(IIR), 0xc4, 'RDA gone once the FIFO is empty');
});

test('reading RBR with nothing queued returns 0 and counts a missed read', () => {
  const u = uart();
  assert.equal(u.inb(RX), 0);
  assert.equal(u.serial.metrics.missed_read_count, 1);
  assert.equal(u.serial.metrics.read_count, 1);
});

test('receive buffer: input beyond its capacity is refused, counted back to the host, and taken later', () => {
  const u = uart();
  u.outb(IER, 0x01);
  const input = Uint8Array.from({ length: RX_CAPACITY + 904 }, (_, i) => (i * 7) & 0xff);
  const taken = u.serial.enqueueInput(input);
  assert.equal(taken, RX_CAPACITY, 'the host keeps the rest and offers it again');
  assert.equal(u.serial.inputBacklog, RX_CAPACITY);
  assert.equal(u.irq.count, 1);
  assert.equal(u.serial.enqueueInput(text('x')), 0, 'nothing taken while full');
  const got: number[] = [];
  while (u.inb(LSR) & 0x01) {
    got.push(u.inb(RX));
    assert.ok(got.length <= RX_CAPACITY, 'DR never cleared');
  }
  assert.equal(u.inb(IIR), 0xc1, 'drained: no interrupt');
  assert.equal(u.serial.enqueueInput(input.subarray(taken)), 904);
  assert.equal(u.irq.count, 2, 'RDA again for the re-offered input');
  assert.equal(u.inb(IIR), 0xc4);
  while (u.inb(LSR) & 0x01) got.push(u.inb(RX));
  assert.deepEqual(got, [...input], 'every byte arrives once, in order');
  assert.equal(u.serial.inputBacklog, 0);
});

test('RDA is raised when the buffer goes from empty to non-empty, not per host chunk', () => {
  const u = uart();
  u.outb(IER, 0x01);
  assert.equal(u.serial.enqueueInput(text('ab')), 2);
  assert.equal(u.serial.enqueueInput(text('c')), 1);
  assert.equal(u.irq.count, 1);
  assert.equal(u.serial.inputBacklog, 3);
  assert.equal(u.inb(RX), 0x61);
  assert.equal(u.inb(RX), 0x62);
  assert.equal(u.serial.enqueueInput(text('d')), 1);
  assert.equal(u.irq.count, 1, 'still not empty: RDA already pending');
  assert.equal(u.inb(RX), 0x63);
  assert.equal(u.inb(RX), 0x64);
  assert.equal(u.inb(IIR), 0xc1);
  u.serial.enqueueInput(text('e'));
  assert.equal(u.irq.count, 2);
});

test('a second view over the shared state is the same UART (vCPU thread vs stdin thread)', () => {
  const a = uart();
  const irqB = new FakeIrq();
  const outB: number[] = [];
  const b = new Serial(irqB, (x) => outB.push(x), a.serial.sharedState);
  const inb = (off: number): number => {
    const d = new Uint8Array(1);
    b.read(off, d);
    return d[0]!;
  };
  assert.equal(inb(LCR), 0x03, 'sees the reset state without re-initialising it');
  b.write(IER, Uint8Array.of(0x01));
  assert.equal(a.inb(IER), 0x01);
  a.serial.enqueueInput(text('hi'));
  assert.equal(b.inputBacklog, 2);
  assert.equal(inb(IIR), 0xc4);
  assert.equal(inb(RX), 0x68);
  assert.equal(a.inb(RX), 0x69);
  assert.equal(inb(LSR) & 0x01, 0);
  b.write(TX, Uint8Array.of(0x21));
  assert.deepEqual(outB, [0x21], 'output goes to the sink of the view that trapped the write');
  assert.equal(a.serial.metrics.write_count, 1, 'metrics are shared');
  assert.equal(a.serial.metrics.read_count, 2);
});

// --------------------------------------------------------------------------- divisor latch

test('DLAB: divisor latch read/write does not disturb THR or IER', () => {
  const u = uart();
  u.outb(IER, 0x01);
  u.outb(LCR, 0x80 | 0x03);
  assert.equal(u.inb(DLL), 12, 'reset divisor: 9600 baud');
  assert.equal(u.inb(DLM), 0);
  // 115200 baud: divisor 1.
  u.outb(DLL, 0x01);
  u.outb(DLM, 0x00);
  assert.equal(u.inb(DLL), 0x01);
  assert.equal(u.inb(DLM), 0x00);
  u.outb(DLM, 0x5a);
  assert.equal(u.inb(DLM), 0x5a);
  assert.deepEqual(u.out, [], 'DLL writes are not transmitted');
  assert.equal(u.serial.metrics.write_count, 0);
  u.outb(LCR, 0x03);
  assert.equal(u.inb(LCR), 0x03);
  assert.equal(u.inb(IER), 0x01, 'IER unchanged by DLM writes');
  u.outb(TX, 0x42);
  assert.deepEqual(u.out, [0x42]);
  // The latch keeps its value across DLAB toggles.
  u.outb(LCR, 0x83);
  assert.equal(u.inb(DLL), 0x01);
  assert.equal(u.inb(DLM), 0x5a);
});

test('DLAB: reading DLL does not consume received data', () => {
  const u = uart();
  u.serial.enqueueInput(text('z'));
  u.outb(LCR, 0x83);
  assert.equal(u.inb(DLL), 12);
  u.outb(LCR, 0x03);
  assert.equal(u.inb(RX), 0x7a);
});

// --------------------------------------------------------------------------- loopback

test('loopback as Linux autoconfig checks it: MCR LOOP|0x0a gives MSR high nibble 0x90', () => {
  const u = uart();
  u.outb(MCR, 0x10 | 0x0a);
  assert.equal(u.inb(MSR) & 0xf0, 0x90);
  u.outb(MCR, 0x10 | 0x05); // DTR|OUT1 → DSR|RI
  assert.equal(u.inb(MSR) & 0xf0, 0x60);
  u.outb(MCR, 0x10);
  assert.equal(u.inb(MSR) & 0xf0, 0x00);
  u.outb(MCR, 0x08);
  assert.equal(u.inb(MSR) & 0xf0, 0xb0, 'out of loopback the line looks connected again');
});

test('loopback: THR bytes come back on RBR, not the sink', () => {
  const u = uart();
  u.outb(IER, 0x01);
  u.outb(MCR, 0x1a);
  u.outb(TX, 0x55);
  u.outb(TX, 0xaa);
  assert.deepEqual(u.out, []);
  assert.equal(u.inb(LSR) & 0x01, 1);
  assert.ok(u.irq.count >= 1, 'RDA on the looped-back bytes');
  assert.equal(u.inb(IIR), 0xc4);
  assert.equal(u.inb(RX), 0x55);
  assert.equal(u.inb(RX), 0xaa);
  assert.equal(u.inb(LSR) & 0x01, 0);
  u.outb(MCR, 0x0b);
  u.outb(TX, 0x31);
  assert.deepEqual(u.out, [0x31]);
});

// --------------------------------------------------------------------------- other registers

test('scratch register keeps what the guest writes (8250 probe for a 16450+)', () => {
  const u = uart();
  assert.equal(u.inb(SCR), 0);
  u.outb(SCR, 0xa5);
  assert.equal(u.inb(SCR), 0xa5);
  u.outb(SCR, 0x5a);
  assert.equal(u.inb(SCR), 0x5a);
});

test('FCR writes are harmless and IIR keeps reporting FIFOs', () => {
  const u = uart();
  u.outb(FCR, 0x07); // enable + clear FIFOs
  assert.equal(u.inb(IIR), 0xc1);
  assert.equal(u.inb(IER), 0);
});

test('reads fill the whole access width with the register in byte 0', () => {
  const u = uart();
  u.outb(SCR, 0x77);
  const d = new Uint8Array(4).fill(0xff);
  u.serial.read(SCR, d);
  assert.deepEqual([...d], [0x77, 0, 0, 0]);
});

// --------------------------------------------------------------------------- metrics

test('metrics: writes, reads, missed reads, sink and IRQ failures', () => {
  let failSink = false;
  const out: number[] = [];
  const u = uart((b) => {
    if (failSink) throw new Error('EPIPE');
    out.push(b);
  });
  u.outb(TX, 1);
  u.outb(TX, 2);
  failSink = true;
  u.outb(TX, 3);
  assert.deepEqual(out, [1, 2]);
  assert.equal(u.serial.metrics.write_count, 3);
  assert.equal(u.serial.metrics.missed_write_count, 1);

  u.serial.enqueueInput(text('ab'));
  u.inb(RX);
  u.inb(RX);
  u.inb(RX);
  assert.equal(u.serial.metrics.read_count, 3);
  assert.equal(u.serial.metrics.missed_read_count, 1);

  u.irq.fail = true;
  u.outb(IER, 0x02);
  assert.equal(u.serial.metrics.error_count, 1, 'a failed interrupt injection is counted, not thrown');
  assert.deepEqual(Object.keys(u.serial.metrics).sort(), [
    'error_count', 'flush_count', 'missed_read_count', 'missed_write_count', 'read_count', 'write_count',
  ]);
});
