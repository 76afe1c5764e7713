/**
 * Firecracker's boot timer device: the guest's init writes the byte 123 at
 * offset 0 and the VMM reports the boot time once, in Firecracker's log format.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { BOOT_COMPLETE_MAGIC, BootTimer, formatBootTime, type BootTimes } from '../../src/vmm/devices/pseudo/boot_timer.js';

function timer(): { dev: BootTimer; reports: BootTimes[] } {
  const reports: BootTimes[] = [];
  const cpu = process.cpuUsage();
  const dev = new BootTimer(process.hrtime.bigint() / 1000n, cpu.user + cpu.system, (t) => reports.push(t));
  return { dev, reports };
}

test('the magic value is 123', () => {
  assert.equal(BOOT_COMPLETE_MAGIC, 123);
});

test('a 1-byte write of 123 at offset 0 reports the boot time, once', () => {
  const { dev, reports } = timer();
  const spin = Date.now() + 5;
  while (Date.now() < spin) { /* burn a little wall and CPU time */ }
  dev.write(0, Uint8Array.of(123));
  assert.equal(reports.length, 1);
  const [t] = reports;
  assert.ok(Number.isInteger(t!.wallUs) && t!.wallUs >= 3000 && t!.wallUs < 60_000_000, `wallUs ${t!.wallUs}`);
  assert.ok(Number.isInteger(t!.cpuUs) && t!.cpuUs >= 0, `cpuUs ${t!.cpuUs}`);
  dev.write(0, Uint8Array.of(123));
  assert.equal(reports.length, 1, 'a second signal is ignored');
});

test('other writes do not report', () => {
  const { dev, reports } = timer();
  dev.write(0, Uint8Array.of(122));
  dev.write(0, Uint8Array.of(0));
  dev.write(1, Uint8Array.of(123));
  dev.write(0x800, Uint8Array.of(123));
  dev.write(0, Uint8Array.of(123, 0)); // 2-byte access
  dev.write(0, Uint8Array.of(123, 0, 0, 0)); // 4-byte access
  dev.write(0, new Uint8Array(0));
  assert.equal(reports.length, 0);
  dev.write(0, Uint8Array.of(123));
  assert.equal(reports.length, 1, 'the real signal still works afterwards');
});

test('reads return zeros', () => {
  const { dev } = timer();
  const d = new Uint8Array(4).fill(0xff);
  dev.read(0, d);
  assert.deepEqual([...d], [0, 0, 0, 0]);
});

test('formatBootTime matches Firecracker: "Guest-boot-time = {:>6} us {} ms, {:>6} CPU us {} CPU ms"', () => {
  assert.equal(formatBootTime({ wallUs: 123456, cpuUs: 78901 }), 'Guest-boot-time = 123456 us 123 ms,  78901 CPU us 78 CPU ms');
  assert.equal(formatBootTime({ wallUs: 999, cpuUs: 5 }), 'Guest-boot-time =    999 us 0 ms,      5 CPU us 0 CPU ms');
  assert.equal(formatBootTime({ wallUs: 0, cpuUs: 0 }), 'Guest-boot-time =      0 us 0 ms,      0 CPU us 0 CPU ms');
  // Wider than 6 digits: no truncation, milliseconds rounded down.
  assert.equal(formatBootTime({ wallUs: 12345678, cpuUs: 1999999 }), 'Guest-boot-time = 12345678 us 12345 ms, 1999999 CPU us 1999 CPU ms');
});
