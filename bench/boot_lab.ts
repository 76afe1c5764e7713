/**
 * The in-lab half of bench/boot: boots the same Linux guest alternately under
 * sparkler and under QEMU microvm, measuring for each boot the wall time from
 * spawn to the console line SPARKLER-GUEST-UP and to process exit, and the
 * VMM's private memory (RssAnon, guest RAM mapping) when that line appears.
 * Runs where stock Linux guests boot (inside tools/kvm-lab/run here); writes
 * its results (JSON) after every boot, so a partial run still leaves data.
 *   node dist/bench/boot_lab.js <params.json> <results.json>
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  GUEST_UP,
  machineInfo,
  parseBootTimerUs,
  runVmm,
  trySampleMemory,
  type BootRecord,
  type LabParams,
  type LabResults,
} from './boot_shared.js';

const [paramsFile, resultsFile] = process.argv.slice(2);
if (!paramsFile || !resultsFile) {
  process.stderr.write('usage: boot_lab.js <params.json> <results.json>\n');
  process.exit(2);
}
const p = JSON.parse(fs.readFileSync(paramsFile, 'utf8')) as LabParams;
fs.mkdirSync(p.workDir, { recursive: true });

const results: LabResults = {
  params: p,
  machine: await machineInfo(p.qemu),
  startedAt: new Date().toISOString(),
  finishedAt: null,
  records: [],
};

function save(): void {
  const tmp = `${resultsFile}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(results, null, 1));
  fs.renameSync(tmp, resultsFile!);
}

function command(vmm: 'sparkler' | 'qemu', vcpus: number): { file: string; args: string[] } {
  if (vmm === 'sparkler') {
    const cfg = path.join(p.workDir, `vm-${vcpus}.json`);
    fs.writeFileSync(
      cfg,
      JSON.stringify({
        'boot-source': { kernel_image_path: p.kernel, initrd_path: p.initrd, boot_args: p.cmdline },
        'machine-config': { vcpu_count: vcpus, mem_size_mib: p.memMib },
      }),
    );
    // bin/sparkler as a user runs it (its shebang: /usr/bin/env node).
    return { file: p.sparklerBin, args: ['--no-api', '--config-file', cfg, '--boot-timer'] };
  }
  return {
    file: p.qemu,
    args: [
      '-M', p.qemuMachine, '-accel', 'kvm', '-cpu', 'host',
      '-m', String(p.memMib), '-smp', String(vcpus),
      '-nodefaults', '-no-user-config', '-nographic', '-serial', 'stdio',
      '-kernel', p.kernel, '-initrd', p.initrd, '-append', p.qemuCmdline, '-no-reboot',
    ],
  };
}

function lastPrintkS(console: string): number | null {
  let last: number | null = null;
  for (const m of console.matchAll(/^\[\s*(\d+\.\d+)\]/gm)) last = Number(m[1]);
  return last;
}

const tail = (s: string, n = 600): string => (s.length > n ? '…' + s.slice(-n) : s);

async function boot(vmm: 'sparkler' | 'qemu', vcpus: number, iter: number, warmup: boolean): Promise<BootRecord> {
  const { file, args } = command(vmm, vcpus);
  let initMs: number | null = null;
  let sample: ReturnType<typeof trySampleMemory> = { mem: null, memError: null };
  let searched = 0; // stdout length already searched for GUEST_UP
  const r = await runVmm(file, args, p.bootTimeoutS, (out, pid, atMs) => {
    if (initMs === null && out.indexOf(GUEST_UP, Math.max(0, searched - GUEST_UP.length)) >= 0) {
      initMs = atMs;
      sample = trySampleMemory(pid, p.memMib, atMs);
    }
    searched = out.length;
  });
  const num = (re: RegExp): number | null => {
    const m = re.exec(r.out);
    return m ? Number(m[1]) : null;
  };
  return {
    vmm,
    vcpus,
    iter,
    warmup,
    argv: [file, ...args],
    initMs,
    exitMs: r.exitMs,
    code: r.code,
    signal: r.signal,
    timedOut: r.timedOut,
    bootTimerUs: vmm === 'sparkler' ? parseBootTimerUs(r.err) : null,
    mem: sample.mem,
    memError: sample.memError,
    guestCpus: num(/^cpus=(\d+)/m),
    guestMemTotalKiB: num(/^memtotal_kb=(\d+)/m),
    guestClockS: lastPrintkS(r.out),
    consoleTail: tail(r.out),
    stderrTail: tail(r.err),
  };
}

const fmt = (ms: number | null): string => (ms === null ? '-' : `${(ms / 1000).toFixed(2)} s`);
const mib = (kib: number | null | undefined): string => (kib == null ? '-' : `${(kib / 1024).toFixed(1)} MiB`);

async function one(vmm: 'sparkler' | 'qemu', vcpus: number, iter: number, warmup: boolean): Promise<void> {
  const label = `${warmup ? 'warm-up ' : ''}${vmm} ${vcpus} vCPU #${iter + 1}`;
  process.stderr.write(`boot-lab: ${label}: starting\n`);
  const r = await boot(vmm, vcpus, iter, warmup);
  results.records.push(r);
  save();
  const ok = r.code === 0 && r.initMs !== null;
  process.stderr.write(
    `boot-lab: ${label}: ${ok ? 'ok' : `FAILED (exit ${r.code}${r.signal ? ' ' + r.signal : ''}${r.timedOut ? ', timed out' : ''})`}` +
      `, init ${fmt(r.initMs)}, exit ${fmt(r.exitMs)}, RssAnon ${mib(r.mem?.rssAnonKiB)}` +
      `, guest RAM touched ${mib(r.mem?.guestRam?.anonKiB)}, beyond ${mib(r.mem?.beyondGuestKiB)}` +
      (r.memError ? ` (memory sample failed: ${r.memError})` : '') +
      '\n',
  );
  if (!ok) process.stderr.write(`boot-lab: console tail:\n${r.consoleTail}\nboot-lab: stderr tail:\n${r.stderrTail}\n`);
}

// Warm the page cache for both VMMs' inputs (the lab reads the host over 9p).
for (const f of [p.kernel, p.initrd]) fs.readFileSync(f);

for (let w = 0; w < p.warmups; w++) {
  await one('sparkler', p.vcpus[0] ?? 1, w, true);
  await one('qemu', p.vcpus[0] ?? 1, w, true);
}
for (const vcpus of p.vcpus) {
  for (let i = 0; i < p.runs; i++) {
    await one('sparkler', vcpus, i, false);
    await one('qemu', vcpus, i, false);
  }
}
results.finishedAt = new Date().toISOString();
save();
const failed = results.records.filter((r) => r.code !== 0 || r.initMs === null).length;
process.exit(failed ? 1 : 0);
