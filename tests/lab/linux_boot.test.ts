/**
 * Debian's cloud kernel + the busybox initramfs under sparkler: it reaches
 * init with 1 and 2 vCPUs, sees the configured CPUs and memory, signals the
 * boot timer, and `reboot -f` in the guest ends the VMM with status 0.
 * On hosts without hardware virtualization all VMs run in one lab session.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { prepareGuest } from '../../src/guest/assets.js';
import { freshDir, hostRunsLinuxGuests, runWithLinuxKvm } from '../helpers/lab.js';
import { describeRun, projectRoot, requireKvm } from '../helpers/sparkler_run.js';
import type { Scenario, ScenarioResults } from './scenarios.js';

/** Firecracker's default command line, plus the console. */
const BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 i8042.noaux i8042.nomux i8042.dumbkbd quiet';

let results: ScenarioResults = {};
let labLog = '';

before(async () => {
  requireKvm();
  const guest = await prepareGuest({ log: () => undefined });
  const dir = freshDir('linux-boot');
  const vm = (vcpus: number, memMib: number, extra = ''): Scenario['run'] => ({
    kernel: guest.kernel, initrd: guest.initramfs, vcpus, memMib,
    bootArgs: `${BOOT_ARGS} ${extra}`.trim(), args: ['--boot-timer'], timeoutMs: 240_000,
  });
  const scenarios: Scenario[] = [
    { name: 'one-vcpu', run: vm(1, 128) },
    { name: 'two-vcpus', run: vm(2, 256) },
  ];
  fs.writeFileSync(path.join(dir, 'scenarios.json'), JSON.stringify(scenarios));
  const r = await runWithLinuxKvm(
    [process.execPath, path.join(projectRoot, 'dist/tests/lab/scenarios.js'), path.join(dir, 'scenarios.json'), path.join(dir, 'results.json')],
    dir, 900_000,
  );
  labLog = `lab exit ${r.code} after ${r.durationMs} ms\n--- stdout ---\n${r.stdout.slice(-3000)}\n--- stderr ---\n${r.stderr.slice(-3000)}`;
  if (fs.existsSync(path.join(dir, 'results.json'))) results = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as ScenarioResults;
});

test('the emulated lab runs on a TSC clock (not 4 ms jiffies)', (t) => {
  if (hostRunsLinuxGuests()) return t.skip('this host runs Linux guests directly: no lab');
  // Without tsc=reliable the lab kernel falls back to jiffies: every clock read and timer then moves in 4 ms steps.
  assert.match(labLog, /scenarios: clocksource tsc\b/, labLog);
});

function result(name: string): NonNullable<ScenarioResults[string]> {
  const r = results[name];
  assert.ok(r, `scenario ${name} did not run\n${labLog}`);
  return r;
}

for (const [name, cpus, memMib] of [['one-vcpu', 1, 128], ['two-vcpus', 2, 256]] as const) {
  test(`Debian cloud kernel reaches init with ${cpus} vCPU(s) and ${memMib} MiB`, () => {
    const r = result(name);
    const info = describeRun(r);
    assert.match(r.stdout, /SPARKLER-GUEST-UP/, `the guest's init did not run\n${info}`);
    assert.match(r.stdout, new RegExp(`^cpus=${cpus}\\r?$`, 'm'), `the guest should see ${cpus} CPU(s)\n${info}`);
    const memKb = Number(/^memtotal_kb=(\d+)/m.exec(r.stdout)?.[1]);
    // MemTotal is RAM minus what the kernel reserves for itself (its image, page tables, the initramfs).
    assert.ok(memKb > memMib * 1024 * 0.6 && memKb <= memMib * 1024, `MemTotal ${memKb} kB does not match ${memMib} MiB\n${info}`);
    assert.match(r.stdout, /^kernel=\d+\.\d+\.\d+-\d+-cloud-amd64/m, info);
    // What the VMM's CPUID set-up gives the guest: the TSC-deadline timer (set by the VMM, as Firecracker
    // does) and kvm-clock (the hypervisor bit and KVM's leaves).
    assert.match(r.stdout, /^tsc-deadline=yes\r?$/m, `the guest should see the TSC-deadline timer\n${info}`);
    assert.match(r.stdout, /^clocksource=kvm-clock\r?$/m, `the guest should use kvm-clock\n${info}`);
  });

  test(`guest reboot -f ends the VMM with status 0 (${name})`, () => {
    const r = result(name);
    const info = describeRun(r);
    assert.match(r.stdout, /SPARKLER-GUEST-REBOOT/, info);
    assert.equal(r.timedOut, false, info);
    assert.equal(r.code, 0, info);
    assert.match(r.stderr, /reset through the i8042/, info);
  });

  test(`boot timer reports the guest's boot time (${name})`, () => {
    const r = result(name);
    assert.match(r.stderr, /Guest-boot-time = +\d+ us \d+ ms, +\d+ CPU us \d+ CPU ms/, describeRun(r));
  });
}
