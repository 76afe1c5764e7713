/**
 * Guests that stop abnormally: a triple fault (KVM_EXIT_SHUTDOWN) and, on this
 * kvm_pvm host, an x87 or SSE instruction the instruction emulator cannot run
 * (KVM_EXIT_INTERNAL_ERROR). Both end the VMM with a log line that says what
 * happened and no JavaScript stack trace. As in Firecracker, a triple fault is
 * a guest-initiated stop (it is how `reboot=t` reboots), so it exits 0; an
 * internal error is a failure and exits non-zero.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildGuest } from '../helpers/guest_build.js';
import { describeRun, hasStackTrace, hostIsKvmPvm, requireKvm, runSparkler } from '../helpers/sparkler_run.js';

test('triple fault: the VMM stops with exit 0 (as Firecracker) and logs the KVM_EXIT_SHUTDOWN', { timeout: 60_000 }, async () => {
  requireKvm();
  const kernel = await buildGuest('triplefault');
  const r = await runSparkler({ kernel, timeoutMs: 20_000 });
  const info = describeRun(r);
  assert.match(r.stdout, /triplefault: loading a zero-limit IDT/, `the guest did not run\n${info}`);
  assert.doesNotMatch(r.stdout, /still running/, info);
  assert.equal(r.timedOut, false, `the VMM did not exit on the triple fault\n${info}`);
  assert.equal(r.signal, null, `the VMM should exit, not die of a signal\n${info}`);
  assert.equal(r.code, 0, `Firecracker treats KVM_EXIT_SHUTDOWN as a stop (exit 0)\n${info}`);
  assert.match(r.stderr, /triple[ -]?fault|shutdown/i, `no log line mentioning the triple fault / KVM_EXIT_SHUTDOWN\n${info}`);
  assert.ok(!hasStackTrace(r.stderr), `stack trace instead of a clean error\n${info}`);
});

for (const [kind, insn] of [
  ['x87', 'fld1'],
  ['sse', 'pxor'],
] as const) {
  test(`${kind} instruction (${insn}): on kvm_pvm KVM_EXIT_INTERNAL_ERROR gives a non-zero exit and a log line`, { timeout: 60_000 }, async () => {
    requireKvm();
    const kernel = await buildGuest('fpu');
    const r = await runSparkler({ kernel, bootArgs: `console=ttyS0 fpu=${kind}`, timeoutMs: 20_000 });
    const info = describeRun(r);
    assert.match(r.stdout, new RegExp(`fpu: executing ${insn}`), `the guest did not run\n${info}`);
    assert.doesNotMatch(r.stdout, /EXCEPTION/, info);
    assert.equal(r.timedOut, false, info);
    assert.equal(r.signal, null, info);
    if (hostIsKvmPvm()) {
      assert.doesNotMatch(r.stdout, new RegExp(`${insn} completed`), `${insn} ran on kvm_pvm?\n${info}`);
      assert.notEqual(r.code, 0, `KVM_EXIT_INTERNAL_ERROR must not look like a clean exit\n${info}`);
      assert.match(r.stderr, /internal[ _-]?error/i, `no log line mentioning the KVM internal error\n${info}`);
    } else {
      // Hardware-virtualized KVM runs x87/SSE natively.
      assert.match(r.stdout, new RegExp(`${insn} completed`), info);
      assert.equal(r.code, 0, info);
    }
    assert.ok(!hasStackTrace(r.stderr), `stack trace instead of a clean error\n${info}`);
  });
}
