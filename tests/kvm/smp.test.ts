/**
 * Several vCPUs: the secondaries wait for INIT/SIPI (in-kernel LAPIC); the smp
 * guest's BSP starts them into a real-mode trampoline, each prints
 * "AP<n> up apic=<id>" and the BSP reports "SMP OK <N>".
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildGuest } from '../helpers/guest_build.js';
import { describeRun, hasStackTrace, requireKvm, runSparkler, type RunResult } from '../helpers/sparkler_run.js';

const runs = new Map<number, Promise<RunResult>>();
function runSmp(vcpus: number): Promise<RunResult> {
  let p = runs.get(vcpus);
  if (!p) {
    p = buildGuest('smp').then((kernel) =>
      runSparkler({ kernel, vcpus, memMib: 64, bootArgs: `console=ttyS0 cpus=${vcpus}`, timeoutMs: 60_000 }),
    );
    runs.set(vcpus, p);
  }
  return p;
}

function apLines(stdout: string): Array<{ n: number; apic: number }> {
  return [...stdout.matchAll(/^AP(\d+) up apic=(\d+)$/gm)].map((m) => ({ n: Number(m[1]), apic: Number(m[2]) }));
}

for (const vcpus of [2, 4]) {
  test(`smp: ${vcpus} vCPUs: the BSP starts ${vcpus - 1} AP(s) with INIT/SIPI and all run`, { timeout: 90_000 }, async () => {
    requireKvm();
    const r = await runSmp(vcpus);
    const info = describeRun(r);
    assert.doesNotMatch(r.stdout, /ERROR|EXCEPTION/, `a guest error (an AP ran the ELF entry, or an exception)\n${info}`);
    assert.equal(r.timedOut, false, info);
    assert.doesNotMatch(r.stdout, /SMP TIMEOUT/, `not every AP came up\n${info}`);
    assert.match(r.stdout, new RegExp(`^SMP OK ${vcpus}\\b`, 'm'), info);
    const aps = apLines(r.stdout);
    assert.deepEqual(
      aps.map((a) => a.n).sort((a, b) => a - b),
      Array.from({ length: vcpus - 1 }, (_, i) => i + 1),
      `expected one "AP<n> up" line per AP\n${info}`,
    );
    assert.equal(r.code, 0, info);
    assert.ok(!hasStackTrace(r.stderr), info);
  });
}

test('smp: each AP sees its own initial APIC ID in CPUID leaf 1 (1..N-1)', { timeout: 90_000 }, async () => {
  requireKvm();
  const r = await runSmp(4);
  const info = describeRun(r);
  const ids = apLines(r.stdout)
    .map((a) => a.apic)
    .sort((a, b) => a - b);
  assert.deepEqual(ids, [1, 2, 3], `CPUID.1:EBX[31:24] per AP should be the vCPU's APIC ID\n${info}`);
  assert.match(r.stdout, /BSP up, apic id 0\b/, info);
});
