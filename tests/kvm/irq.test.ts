/**
 * Interrupts through KVM's in-kernel irqchip: the 8259 pair (remapped to 0x20)
 * delivering to the BSP via LAPIC LINT0 = ExtINT.
 *  - IRQ 4 from sparkler's UART: THRE interrupt when IER bit 1 is set with THR empty.
 *  - IRQ 0 from the in-kernel PIT (channel 0, 100 Hz).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildGuest } from '../helpers/guest_build.js';
import { describeRun, hasStackTrace, requireKvm, runSparkler } from '../helpers/sparkler_run.js';

test('irq: the UART THRE interrupt arrives on IRQ 4 through the in-kernel PIC', { timeout: 60_000 }, async () => {
  requireKvm();
  const kernel = await buildGuest('irq');
  const r = await runSparkler({ kernel, bootArgs: 'console=ttyS0 irqtest=uart', timeoutMs: 20_000 });
  const info = describeRun(r);
  assert.doesNotMatch(r.stdout, /EXCEPTION|unexpected interrupt/, `the guest took an exception or a stray interrupt\n${info}`);
  assert.equal(r.timedOut, false, `IRQ 4 never arrived (the guest waits in hlt for it)\n${info}`);
  const m = /IRQ4 OK iir=0x([0-9a-f]+)/.exec(r.stdout);
  assert.ok(m, `no "IRQ4 OK"\n${info}`);
  assert.equal(parseInt(m[1]!, 16) & 0x0f, 0x02, `IIR read in the IRQ 4 handler should say "THR empty" (0x?2)\n${info}`);
  assert.equal(r.code, 0, info);
  assert.ok(!hasStackTrace(r.stderr), info);
});

test('irq: the in-kernel PIT ticks on IRQ 0', { timeout: 60_000 }, async () => {
  requireKvm();
  const kernel = await buildGuest('irq');
  const r = await runSparkler({ kernel, bootArgs: 'console=ttyS0 irqtest=pit', timeoutMs: 20_000 });
  const info = describeRun(r);
  assert.doesNotMatch(r.stdout, /EXCEPTION|unexpected interrupt/, info);
  assert.equal(r.timedOut, false, `the PIT did not tick 5 times (the guest waits in hlt)\n${info}`);
  assert.match(r.stdout, /PIT OK ticks=\d+/, info);
  assert.equal(r.code, 0, info);
});
