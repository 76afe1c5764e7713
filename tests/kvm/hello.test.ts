/**
 * The hello guest under sparkler: serial console output on stdout, the kernel
 * command line found through the zero page (boot_args arrived), the boot timer
 * (--boot-timer logs Guest-boot-time), and the i8042 reset ending the VMM with 0.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildGuest } from '../helpers/guest_build.js';
import { describeRun, hasStackTrace, requireKvm, runSparkler } from '../helpers/sparkler_run.js';

const BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 sparkler.test=hello-42';

test('hello: serial output and the command line reach the guest; i8042 reset exits 0', { timeout: 60_000 }, async () => {
  requireKvm();
  const kernel = await buildGuest('hello');
  const r = await runSparkler({ kernel, bootArgs: BOOT_ARGS, vcpus: 1, memMib: 64 });
  const info = describeRun(r);
  assert.equal(r.timedOut, false, `sparkler did not exit on the guest's i8042 reset\n${info}`);
  assert.match(r.stdout, /Hello from a sparkler test guest/, `no greeting on the serial console\n${info}`);
  const line = r.stdout.split(/\r?\n/).find((l) => l.startsWith('cmdline: '));
  assert.ok(line, `the guest printed no cmdline line\n${info}`);
  assert.ok(line.includes(BOOT_ARGS), `the command line the guest found (${JSON.stringify(line)}) does not contain boot_args ${JSON.stringify(BOOT_ARGS)}\n${info}`);
  assert.match(r.stdout, /zero page: 0x7000 /, `RSI (zero page) is not 0x7000\n${info}`);
  assert.match(r.stdout, /resetting through the i8042/, info);
  assert.equal(r.signal, null, info);
  assert.equal(r.code, 0, `i8042 reset should end the VMM with exit status 0\n${info}`);
  assert.ok(!hasStackTrace(r.stderr), `stack trace in the VMM's log\n${info}`);
});

test('boot timer: with --boot-timer the guest write of 123 to 0xc0000000 logs Guest-boot-time', { timeout: 60_000 }, async () => {
  requireKvm();
  const kernel = await buildGuest('hello');
  const r = await runSparkler({ kernel, bootArgs: BOOT_ARGS, args: ['--boot-timer', '--level', 'Info'] });
  const info = describeRun(r);
  assert.equal(r.timedOut, false, info);
  assert.match(r.stdout, /boot timer: wrote 123/, `the guest did not get past the boot timer write\n${info}`);
  assert.match(r.stderr, /Guest-boot-time/, `no Guest-boot-time line in the VMM's log\n${info}`);
  assert.equal(r.code, 0, info);
});

test('boot timer: without --boot-timer there is no Guest-boot-time line (the write is ignored)', { timeout: 60_000 }, async () => {
  requireKvm();
  const kernel = await buildGuest('hello');
  const r = await runSparkler({ kernel, bootArgs: BOOT_ARGS, args: ['--level', 'Info'] });
  const info = describeRun(r);
  assert.equal(r.timedOut, false, info);
  assert.match(r.stdout, /boot timer: wrote 123/, info);
  assert.doesNotMatch(r.stderr + r.stdout, /Guest-boot-time/, info);
  assert.equal(r.code, 0, info);
});
