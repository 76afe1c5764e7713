/**
 * Signals and the VMM.
 *
 * Stopping the VMM from outside while its vCPU blocks in KVM_RUN on a halted
 * guest (cli; hlt): SIGTERM and SIGINT must end it promptly (< 5 s), with no
 * JavaScript stack trace and no process left behind.
 * (A guest spinning in `jmp .` cannot be kicked out of KVM_RUN on kvm_pvm, so
 * these use a halted guest.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildGuest } from '../helpers/guest_build.js';
import { descendantPids, describeRun, hasStackTrace, processAlive, requireKvm, runSparkler, startSparkler } from '../helpers/sparkler_run.js';

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  test(`${sig} stops a VMM whose guest halts, within 5 s, leaving no process`, { timeout: 60_000 }, async (t) => {
    requireKvm();
    const kernel = await buildGuest('halt');
    const vm = startSparkler({ kernel, vcpus: 2, timeoutMs: 30_000 });
    try {
      await vm.waitFor(/halting/, 'stdout', 20_000);
    } catch (e) {
      vm.child.kill('SIGKILL');
      await vm.result.catch(() => undefined);
      throw e;
    }
    await sleep(300); // let the vCPU settle in hlt (blocked in KVM_RUN)
    const family = [vm.pid, ...descendantPids(vm.pid)];
    const sent = performance.now();
    process.kill(vm.pid, sig);
    const r = await vm.result;
    const took = performance.now() - sent;
    const info = describeRun(r);
    t.diagnostic(`${sig}: exit code=${r.code} signal=${r.signal} after ${Math.round(took)} ms`);
    assert.equal(r.timedOut, false, `the VMM ignored ${sig}\n${info}`);
    assert.ok(took < 5000, `the VMM took ${Math.round(took)} ms to stop after ${sig}\n${info}`);
    assert.ok(!hasStackTrace(r.stderr), `stack trace on ${sig}\n${info}`);
    await sleep(100);
    const left = family.filter(processAlive);
    assert.deepEqual(left, [], `processes left behind after ${sig}: ${left.join(', ')}\n${info}`);
  });
}

// A handled signal during set-up interrupts some KVM ioctls: KVM_CREATE_VM fails with EINTR when one
// is pending (mm_take_all_locks gives up). V8's CPU profiler sends its thread SIGPROF every
// --cpu-prof-interval µs, which made "KVM_CREATE_VM: EINTR" end the VMM before the fix.
test('signals arriving while the VM is built (SIGPROF every 20 µs) do not fail the start', { timeout: 120_000 }, async (t) => {
  requireKvm();
  const kernel = await buildGuest('hello');
  const profDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-prof-'));
  t.after(() => fs.rmSync(profDir, { recursive: true, force: true }));
  // About one start in ten hit it on this host: ten starts.
  for (let i = 0; i < 10; i++) {
    const r = await runSparkler({
      kernel, vcpus: 2, bootArgs: 'console=ttyS0 reboot=k panic=1',
      nodeArgs: ['--cpu-prof', '--cpu-prof-interval', '20', `--cpu-prof-dir=${profDir}`],
      timeoutMs: 60_000,
    });
    const info = describeRun(r);
    assert.doesNotMatch(r.stderr, /EINTR/, `run ${i + 1}: an interrupted system call reached the user\n${info}`);
    assert.match(r.stdout, /Hello from a sparkler test guest/, `run ${i + 1}: the guest did not run\n${info}`);
    assert.equal(r.code, 0, `run ${i + 1}\n${info}`);
  }
});
