/**
 * bench/mmio_exits: what one MMIO exit costs sparkler's vCPU thread, natively
 * on this host's KVM (run it through the bench/mmio_exits script).
 *
 * Boots bench/guests/mmio_exits.c with one virtio device (entropy, at
 * 0xc0001000), which does N 32-bit reads of InterruptStatus, N writes of
 * InterruptACK and N reads of an unclaimed MMIO address, printing a marker
 * line on the console between the phases. The host timestamps the markers as
 * they arrive: a phase's time / N is µs per exit, guest instructions and the
 * KVM round trip included (on kvm_pvm every guest instruction is emulated, so
 * compare figures from the same host only). The floor phase is an exit that no
 * device handles: reads minus floor is roughly what the transport costs.
 * The VMM's user CPU time per exit (/proc/PID/stat at each marker, in clock
 * ticks: use a large N) separates the VMM's own work, which is what changes in
 * sparkler affect, from the kernel's (KVM's exit and instruction emulation).
 *
 * Then, unless --no-handler, the exit handler alone in a JS loop on this
 * thread (this checkout's ExitHandler, Bus and MmioTransport over a fake
 * kvm_run, no KVM): ns per handled exit, the JS part without the noise of
 * KVM and of other load.
 *
 * --vmm A,B runs other checkouts' bin/sparkler too (e.g. a worktree of the
 * commit before a change), alternating VMMs run by run so that other load on
 * the machine hits them alike. Prints one table (markdown with --markdown) and
 * keeps the raw data in --out DIR (default .cache/bench/mmio-exits-<time>/).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildGuest } from '../tests/helpers/guest_build.js';
import { projectRoot, sparklerBin } from '../tests/helpers/sparkler_run.js';
import { benchCli, finishRun, printEarlierReport, saveResults, startRun, watchConcurrency, type Concurrency, type OutputOptions, type ResultsHeader } from './bench_run.js';
import { median, minMax, runVmm } from './boot_shared.js';
import { KVM_EXIT, KVM_RUN_OFFSET } from '../src/generated/kvm.js';
import { VIRTIO_MMIO } from '../src/generated/virtio.js';
import type { VcpuFd } from '../src/kvm/vcpu_fd.js';
import { VIRTIO_MMIO_SIZE, VIRTIO_MMIO_START } from '../src/vmm/arch/x86_64/layout.js';
import { Bus } from '../src/vmm/devices/bus.js';
import { MmioTransport } from '../src/vmm/devices/virtio/mmio/transport.js';
import { ExitHandler } from '../src/vmm/vstate/vcpu_exit.js';
import { VcpuControl } from '../src/vmm/vstate/vcpu_control.js';

const USAGE = `usage: bench/mmio_exits [options]
  --runs N      VMM runs per VMM (default 5)
  --n N         exits per phase and run (default 200000)
  --vmm LIST    comma-separated bin/sparkler paths to compare (default: this checkout's)
  --no-vmm      skip the guest runs
  --no-handler  skip the JS-only loop of the exit handler
  --markdown    print the report as markdown (for docs/performance.md)
  --out DIR     where raw results and reports go (default .cache/bench/mmio-exits-<time>)
  --report DIR  print the report of an earlier run from DIR/results.json, run nothing
`;

/** Bytes of the fake kvm_run: one page holds every field the handler reads. */
const KVM_RUN_PAGE = 4096;

/** The guest's phases, in order; each starts at its marker line. */
const PHASES = ['reads', 'writes', 'floor'] as const;
type Phase = (typeof PHASES)[number];
const END = 'end';
/** Per run; 200000 exits per phase take ~2 s on kvm_pvm. */
const RUN_TIMEOUT_S = 120;

interface Options extends OutputOptions {
  runs: number;
  n: number;
  vmms: string[];
  vmm: boolean;
  handler: boolean;
}

interface RunRecord {
  vmm: string;
  /** µs per exit of each phase (null: the marker never came). */
  usPerExit: Record<Phase, number | null>;
  /** The VMM process's user CPU µs per exit of each phase. */
  userUsPerExit: Record<Phase, number | null>;
  code: number | null;
  error: string | null;
}

interface Results extends ResultsHeader {
  n: number;
  concurrency: Concurrency;
  runs: RunRecord[];
  /** ns per handled exit in the JS-only loop, by case (median of HANDLER_REPS). */
  handlerNs: Record<string, number> | null;
}

const cli = benchCli('bench/mmio_exits', USAGE);
const { usage, log } = cli;

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 5, n: 200_000, vmms: [sparklerBin], vmm: true, handler: true, markdown: false, out: null, report: null };
  cli.forEachFlag(argv, (flag, val) => {
    switch (flag) {
      case '--runs': o.runs = cli.num(flag, val(), 1); return true;
      case '--n': o.n = cli.num(flag, val(), 1); return true;
      case '--vmm': o.vmms = (val() ?? usage('--vmm needs a list')).split(',').map((p) => path.resolve(p)); return true;
      case '--no-vmm': o.vmm = false; return true;
      case '--no-handler': o.handler = false; return true;
      default: return cli.outputFlag(o, flag, val);
    }
  });
  for (const v of o.vmms) if (!fs.existsSync(v)) usage(`${v} does not exist`);
  return o;
}

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ: 100 on Linux/x86). */
const USER_HZ = 100;

/** User CPU time of process `pid` so far, ms (null when it cannot be read). */
function userCpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime is field 14 (proc(5)).
    const utime = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[11]);
    return Number.isFinite(utime) ? (utime * 1000) / USER_HZ : null;
  } catch {
    return null;
  }
}

async function runOnce(vmm: string, kernel: string, n: number): Promise<RunRecord> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-mmio-exits-'));
  const config = path.join(dir, 'vm.json');
  fs.writeFileSync(config, JSON.stringify({
    'boot-source': { kernel_image_path: kernel, boot_args: `console=ttyS0 mmio_exits.n=${n}` },
    'drives': [],
    'machine-config': { vcpu_count: 1, mem_size_mib: 64 },
    'entropy': {},
  }));
  const seen = new Map<string, { atMs: number; userMs: number | null }>();
  try {
    const r = await runVmm(process.execPath, [vmm, '--no-api', '--config-file', config], RUN_TIMEOUT_S, (out, pid, atMs) => {
      for (const m of [...PHASES, END]) if (!seen.has(m) && out.includes(`mmio_exits: ${m}`)) seen.set(m, { atMs, userMs: userCpuMs(pid) });
    });
    const marks = [...PHASES, END].map((m) => seen.get(m));
    const perExit = (f: (x: { atMs: number; userMs: number | null }) => number | null): Record<Phase, number | null> =>
      Object.fromEntries(PHASES.map((p, i) => {
        const a = marks[i] && f(marks[i]!);
        const b = marks[i + 1] && f(marks[i + 1]!);
        return [p, a === undefined || a === null || b === undefined || b === null ? null : ((b - a) * 1000) / n];
      })) as Record<Phase, number | null>;
    const ok = r.code === 0 && seen.has(END);
    return {
      vmm,
      usPerExit: perExit((x) => x.atMs),
      userUsPerExit: perExit((x) => x.userMs),
      code: r.code,
      error: ok ? null : `exit ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${r.err.slice(-500)}`,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The exits the JS-only loop handles: guest-physical address, write or read. */
const HANDLER_CASES: ReadonlyArray<{ name: string; addr: number; write: boolean }> = [
  { name: 'InterruptStatus read', addr: VIRTIO_MMIO_START + VIRTIO_MMIO.INTERRUPT_STATUS, write: false },
  { name: 'InterruptACK write', addr: VIRTIO_MMIO_START + VIRTIO_MMIO.INTERRUPT_ACK, write: true },
  { name: 'Status read (under the lock)', addr: VIRTIO_MMIO_START + VIRTIO_MMIO.STATUS, write: false },
  { name: 'unclaimed read', addr: VIRTIO_MMIO_START - 0x800, write: false },
];
const HANDLER_DEVICES = 4;
const HANDLER_ITERS = 2_000_000;
const HANDLER_REPS = 5;

/**
 * ns per ExitHandler.handle() of each case, on a fake kvm_run with
 * HANDLER_DEVICES virtio-mmio transports on the bus (as a VM with drives, a
 * NIC and an entropy device), after a warm-up so that the JIT has settled.
 */
function handlerLoop(): Record<string, number> {
  const ab = new ArrayBuffer(KVM_RUN_PAGE);
  const run = new DataView(ab);
  // What ExitHandler reads of a VcpuFd on MMIO exits.
  const vcpu = { run, runBytes: new Uint8Array(ab), id: 0 } as unknown as VcpuFd;
  const mmio = new Bus('mmio');
  for (let i = 0; i < HANDLER_DEVICES; i++) {
    const t = new MmioTransport({ deviceId: 4, deviceFeatures: 0n, queueMaxSizes: [256], configSize: 0 });
    mmio.insert(t, VIRTIO_MMIO_START + i * VIRTIO_MMIO_SIZE, VIRTIO_MMIO_SIZE, `virtio ${i}`);
  }
  const exits = new ExitHandler(vcpu, new Bus('pio'), mmio, new VcpuControl());
  run.setUint32(KVM_RUN_OFFSET.exit_reason, KVM_EXIT.MMIO, true);
  run.setUint32(KVM_RUN_OFFSET.mmio_len, 4, true);
  const out: Record<string, number> = {};
  for (const c of HANDLER_CASES) {
    run.setUint32(KVM_RUN_OFFSET.mmio_phys_addr, c.addr, true);
    run.setUint32(KVM_RUN_OFFSET.mmio_phys_addr + 4, 0, true);
    run.setUint8(KVM_RUN_OFFSET.mmio_is_write, c.write ? 1 : 0);
    for (let i = 0; i < HANDLER_ITERS / 10; i++) exits.handle();
    const ns: number[] = [];
    for (let r = 0; r < HANDLER_REPS; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < HANDLER_ITERS; i++) exits.handle();
      ns.push(Number(process.hrtime.bigint() - t0) / HANDLER_ITERS);
    }
    out[c.name] = median(ns)!;
  }
  return out;
}

function report(r: Results, markdown: boolean): string {
  const lines: string[] = [];
  const head = ['VMM', 'µs per exit', ...PHASES.map((p) => `${p} (median, min–max)`)];
  const cell = (runs: RunRecord[], f: (x: RunRecord) => number | null): string => {
    const xs = runs.map(f).filter((x): x is number => x !== null);
    const m = median(xs);
    const mm = minMax(xs);
    return m === null || !mm ? 'n/a' : `${m.toFixed(2)} (${mm[0].toFixed(2)}–${mm[1].toFixed(2)})`;
  };
  const rows = [...new Set(r.runs.map((x) => x.vmm))].flatMap((vmm) => {
    const runs = r.runs.filter((x) => x.vmm === vmm);
    const name = `${path.relative(projectRoot, vmm) || vmm} (${runs.length} runs)`;
    return [
      [name, 'wall', ...PHASES.map((p) => cell(runs, (x) => x.usPerExit[p]))],
      [name, 'VMM user CPU', ...PHASES.map((p) => cell(runs, (x) => x.userUsPerExit[p]))],
    ];
  });
  const h = r.host;
  lines.push(`bench/mmio_exits ${r.date}, commit ${r.commit}, ${h.cpuModel} ×${h.nproc}, ${h.kvm}, node ${h.node}`);
  lines.push(`N = ${r.n} exits per phase; other kvm-lab machines seen: ${r.concurrency.otherLabs}, max load1 ${r.concurrency.maxLoad1}`);
  lines.push('');
  if (rows.length === 0) {
    lines.push('(no guest runs)');
  } else if (markdown) {
    lines.push(`| ${head.join(' | ')} |`, `|${head.map(() => ' --- ').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`));
  } else {
    const w = head.map((c, i) => Math.max(c.length, ...rows.map((row) => row[i]!.length)));
    for (const row of [head, ...rows]) lines.push(row.map((c, i) => c.padEnd(w[i]!)).join('  '));
  }
  for (const x of r.runs) if (x.error) lines.push(`failed run (${x.vmm}): ${x.error}`);
  if (r.handlerNs) {
    lines.push('', `Exit handler alone (JS loop, no KVM; ${HANDLER_DEVICES} virtio-mmio devices on the bus), ns per exit:`);
    for (const [name, ns] of Object.entries(r.handlerNs)) lines.push(`${markdown ? '- ' : '  '}${name}: ${ns.toFixed(1)}`);
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.report) printEarlierReport(o.report, o.markdown, report);
  const { outDir, header } = await startRun('mmio-exits', o.out, usage, log);
  const kernel = await buildGuest('mmio_exits', { sourceDir: path.join(projectRoot, 'bench', 'guests') });
  const watch = watchConcurrency(null);
  const runs: RunRecord[] = [];
  for (let i = 0; o.vmm && i < o.runs; i++) {
    for (const vmm of o.vmms) {
      const rec = await runOnce(vmm, kernel, o.n);
      const f = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(2));
      const phases = PHASES.map((p) => `${p} ${f(rec.usPerExit[p])} (user ${f(rec.userUsPerExit[p])})`).join(', ');
      log(`run ${i + 1}/${o.runs} ${vmm}: µs/exit ${phases}${rec.error ? ` FAILED ${rec.error}` : ''}`);
      runs.push(rec);
    }
  }
  const handlerNs = o.handler ? handlerLoop() : null;
  const results: Results = { ...header, n: o.n, concurrency: watch.stop(), runs, handlerNs };
  saveResults(outDir, results);
  finishRun(outDir, results, report, o.markdown, runs.some((x) => x.error !== null));
}

await main();
