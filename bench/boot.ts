/**
 * bench/boot: sparkler's boot benchmark (run it through the bench/boot script).
 *
 * 1. In the emulated-KVM lab (one lab session; directly on hosts with vmx/svm):
 *    the Debian cloud kernel + busybox initramfs booted alternately under
 *    sparkler and QEMU microvm, N times each: spawn -> SPARKLER-GUEST-UP,
 *    spawn -> exit, private memory at init. (bench/boot_lab.ts does the boots.)
 * 2. Natively on this host: process start -> first guest instruction (the
 *    Guest-boot-time that --boot-timer logs, with bench/guests/first_insn.S,
 *    whose 10th instruction writes 123 to 0xc0000000), the same for the `hello`
 *    test guest, and a bare `node -e 0` for reference.
 * Prints one table (or markdown with --markdown) and keeps the raw data in
 * --out DIR (default .cache/bench/boot-<time>/): results.json, report.txt, report.md.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildGuest } from '../tests/helpers/guest_build.js';
import { hostRunsLinuxGuests, labRunner } from '../tests/helpers/lab.js';
import { benchCli, finishRun, printEarlierReport, saveResults, startRun, watchConcurrency, type Concurrency, type OutputOptions, type ResultsHeader } from './bench_run.js';
import { projectRoot, sparklerBin } from '../tests/helpers/sparkler_run.js';
import {
  capture,
  median,
  minMax,
  nowMs,
  parseBootTimerUs,
  type BootRecord,
  type LabParams,
  type LabResults,
} from './boot_shared.js';

const CMDLINE = 'console=ttyS0 reboot=k panic=1 i8042.noaux i8042.nomux i8042.dumbkbd quiet';
const MEM_MIB = 128;

const TARGET_BOOT_RATIO = 0.95;
const TARGET_FIRST_INSN_MS = 60;
const TARGET_BEYOND_MIB = 12;
const QEMU_BEYOND_REF_MIB = 26;

const USAGE = `usage: bench/boot [options]
  --runs N          Linux boots per VMM and vCPU count in the lab (default 3)
  --vcpus LIST      vCPU counts of the lab passes, e.g. 1,2 (default 1)
  --smp2            shorthand for --vcpus 1,2
  --warmups N       untimed boots of each VMM before the first lab pass (default 1)
  --native-runs N   native start-up samples (default 20)
  --lab-retries N   start the lab again when it ends before any boot (default 1)
  --qemu-machine M  QEMU's -M value (default microvm,acpi=on; e.g. microvm,acpi=on,rtc=off)
  --no-lab          skip part 1 (Linux boots in the lab)
  --no-native       skip part 2 (native start-up)
  --markdown        print the report as markdown (for docs/performance.md)
  --out DIR         where raw results and reports go (default .cache/bench/boot-<time>)
  --report DIR      print the report of an earlier run from DIR/results.json, run nothing
`;

interface Options extends OutputOptions {
  runs: number;
  vcpus: number[];
  warmups: number;
  nativeRuns: number;
  labRetries: number;
  qemuMachine: string;
  lab: boolean;
  native: boolean;
}

const cli = benchCli('bench/boot', USAGE);
const { usage, log } = cli;

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 3, vcpus: [1], warmups: 1, nativeRuns: 20, labRetries: 1, qemuMachine: 'microvm,acpi=on', lab: true, native: true, markdown: false, out: null, report: null };
  const int = (flag: string, v: string | undefined, min: number): number => cli.num(flag, v, min);
  cli.forEachFlag(argv, (flag, val) => {
    switch (flag) {
      case '--runs': o.runs = int(flag, val(), 1); break;
      case '--native-runs': o.nativeRuns = int(flag, val(), 1); break;
      case '--warmups': o.warmups = int(flag, val(), 0); break;
      case '--lab-retries': o.labRetries = int(flag, val(), 0); break;
      case '--qemu-machine': o.qemuMachine = val() ?? usage('--qemu-machine needs a value'); break;
      case '--vcpus': {
        const v = val() ?? '';
        o.vcpus = v.split(',').map((s) => int(flag, s, 1));
        break;
      }
      case '--smp2': o.vcpus = [1, 2]; break;
      case '--no-lab': o.lab = false; break;
      case '--no-native': o.native = false; break;
      default: return cli.outputFlag(o, flag, val);
    }
    return true;
  });
  return o;
}


// ---------------------------------------------------------------- results

interface NativeResults {
  runs: number;
  guests: { firstInsn: string; hello: string };
  /** first_insn: Guest-boot-time from Node's time origin (µs). */
  firstInsnUs: number[];
  /** first_insn: Guest-boot-time with --start-time-us = the parent's clock just before spawn (µs). */
  firstInsnFromSpawnUs: number[];
  /** first_insn: spawn -> exit (ms). */
  firstInsnExitMs: number[];
  /** first_insn: spawn -> the log line "Running sparkler" (Node up, the VMM's modules loaded), ms. */
  firstLogMs: number[];
  /** first_insn: spawn -> the log line "Successfully started microvm" (VM built, vCPUs starting), ms. */
  startedMs: number[];
  /** hello: Guest-boot-time from Node's time origin (µs). */
  helloUs: number[];
  /** node -e 0: spawn -> exit (ms). */
  nodeMs: number[];
  failures: string[];
}


interface Results extends ResultsHeader {
  options: Omit<Options, 'report' | 'markdown' | 'out'>;
  native: (NativeResults & { concurrency: Concurrency }) | null;
  lab: (LabResults & { sparklerAdds: string[]; concurrency: Concurrency; wallS: number; labExit: number | null; guestFiles: { kernelBytes: number; initrdBytes: number } }) | null;
}

// ---------------------------------------------------------------- helpers

interface Proc { wallMs: number; code: number | null; stdout: string; stderr: string }

function run(file: string, args: string[], timeoutMs = 30_000): Promise<Proc> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let exitMs = NaN;
    const t0 = nowMs();
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin!.on('error', () => {});
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', () => (exitMs = nowMs() - t0));
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ wallMs: NaN, code: null, stdout, stderr: stderr + e.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      child.stdin!.destroy();
      resolve({ wallMs: exitMs, code, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------- part 2: native

async function native(o: Options, outDir: string): Promise<NonNullable<Results['native']>> {
  const firstInsn = await buildGuest('first_insn', { sourceDir: path.join(projectRoot, 'bench', 'guests') });
  const hello = await buildGuest('hello');
  const cfg = (kernel: string, name: string): string => {
    const f = path.join(outDir, `native-${name}.json`);
    fs.writeFileSync(
      f,
      JSON.stringify({
        'boot-source': { kernel_image_path: kernel, boot_args: 'console=ttyS0' },
        'machine-config': { vcpu_count: 1, mem_size_mib: MEM_MIB },
      }),
    );
    return f;
  };
  const fiCfg = cfg(firstInsn, 'first_insn');
  const helloCfg = cfg(hello, 'hello');
  const r: NativeResults = {
    runs: o.nativeRuns,
    guests: { firstInsn, hello },
    firstInsnUs: [],
    firstInsnFromSpawnUs: [],
    firstInsnExitMs: [],
    helloUs: [],
    firstLogMs: [],
    startedMs: [],
    nodeMs: [],
    failures: [],
  };
  const vmm = async (config: string, extra: string[], what: string): Promise<{ us: number; wallMs: number; stderr: string; spawnEpochMs: number } | null> => {
    const spawnEpochMs = performance.timeOrigin + performance.now();
    const p = await run(sparklerBin, ['--no-api', '--config-file', config, '--boot-timer', ...extra]);
    const us = parseBootTimerUs(p.stderr);
    if (p.code !== 0 || us === null) {
      const last = p.stderr.trim().split('\n').pop() ?? '';
      r.failures.push(`${what}: exit ${p.code}${us === null ? ', no Guest-boot-time line' : ''}: ${last}`);
      return null;
    }
    return { us, wallMs: p.wallMs, stderr: p.stderr, spawnEpochMs };
  };
  /** ms from spawn to the first log line containing `what` (log timestamps are UTC wall clock, ns). */
  const logAt = (stderr: string, spawnEpochMs: number, what: string): number | null => {
    const line = stderr.split('\n').find((l) => l.includes(what));
    const m = line && /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d+)/.exec(line);
    if (!m) return null;
    return Date.parse(`${m[1]}Z`) + Number(`0.${m[2]}`) * 1000 - spawnEpochMs;
  };
  const watch = watchConcurrency(null);
  // One untimed round first: page cache, guest builds.
  await run(process.execPath, ['-e', '0']);
  await vmm(fiCfg, [], 'warm-up');
  for (let i = 0; i < o.nativeRuns; i++) {
    const n = await run(process.execPath, ['-e', '0']);
    if (n.code === 0) r.nodeMs.push(n.wallMs);
    const a = await vmm(fiCfg, [], 'first_insn');
    if (a) {
      r.firstInsnUs.push(a.us);
      r.firstInsnExitMs.push(a.wallMs);
      const l1 = logAt(a.stderr, a.spawnEpochMs, 'Running sparkler');
      const l2 = logAt(a.stderr, a.spawnEpochMs, 'Successfully started microvm');
      if (l1 !== null) r.firstLogMs.push(l1);
      if (l2 !== null) r.startedMs.push(l2);
    }
    // Firecracker's --start-time-us: CLOCK_MONOTONIC µs; the parent's clock right before fork+exec.
    const startUs = String(process.hrtime.bigint() / 1000n);
    const b = await vmm(fiCfg, ['--start-time-us', startUs], 'first_insn --start-time-us');
    if (b) r.firstInsnFromSpawnUs.push(b.us);
    const h = await vmm(helloCfg, [], 'hello');
    if (h) r.helloUs.push(h.us);
    if ((i + 1) % 5 === 0) log(`native: ${i + 1}/${o.nativeRuns} rounds`);
  }
  return { ...r, concurrency: watch.stop() };
}

// ---------------------------------------------------------------- part 1: lab

/**
 * The words sparkler adds to the guest's command line by itself (today pci=off,
 * as Firecracker does when there is no PCI bus), read back through the hello
 * guest, which prints the command line it finds in the zero page.
 */
async function sparklerAddedArgs(outDir: string): Promise<string[]> {
  const hello = await buildGuest('hello');
  const given = 'console=ttyS0';
  const f = path.join(outDir, 'probe-cmdline.json');
  fs.writeFileSync(f, JSON.stringify({ 'boot-source': { kernel_image_path: hello, boot_args: given }, 'machine-config': { vcpu_count: 1, mem_size_mib: 64 } }));
  const p = await run(sparklerBin, ['--no-api', '--config-file', f]);
  const seen = /^cmdline: (.*)$/m.exec(p.stdout)?.[1];
  if (p.code !== 0 || seen === undefined) throw new Error(`could not read sparkler's effective command line through the hello guest (exit ${p.code}): ${p.stderr.trim().split('\n').pop() ?? ''}`);
  const have = new Set(given.split(' '));
  return seen.split(/\s+/).filter((w) => w && !have.has(w));
}

async function lab(o: Options, outDir: string): Promise<NonNullable<Results['lab']>> {
  const prep = await run(path.join(projectRoot, 'bin', 'sparkler-guest'), ['prepare'], 600_000);
  const guestDir = prep.stdout.trim().split('\n').pop() ?? '';
  if (prep.code !== 0 || !guestDir) throw new Error(`bin/sparkler-guest prepare failed:\n${prep.stderr}`);
  const kernel = path.join(guestDir, 'vmlinuz');
  const initrd = path.join(guestDir, 'initramfs.cpio.gz');
  const qemu = (await capture('sh', ['-c', 'command -v qemu-system-x86_64'])).trim();
  if (!qemu) throw new Error('qemu-system-x86_64 not found (Debian: apt-get install qemu-system-x86)');
  // The same effective command line for both: QEMU also gets the pci= words sparkler appends itself.
  const added = await sparklerAddedArgs(outDir);
  const qemuExtra = added.filter((w) => w.startsWith('pci='));
  const params: LabParams = {
    kernel,
    initrd,
    cmdline: CMDLINE,
    // QEMU microvm has no i8042: its guest resets by triple fault, which -no-reboot turns into an exit.
    qemuCmdline: [CMDLINE.replace('reboot=k', 'reboot=t'), ...qemuExtra].join(' '),
    qemuMachine: o.qemuMachine,
    memMib: MEM_MIB,
    vcpus: o.vcpus,
    runs: o.runs,
    warmups: o.warmups,
    sparklerBin,
    node: process.execPath,
    qemu,
    bootTimeoutS: 180,
    workDir: path.join(outDir, 'lab-work'),
  };
  const paramsFile = path.join(outDir, 'lab-params.json');
  const resultsFile = path.join(outDir, 'lab-results.json');
  fs.writeFileSync(paramsFile, JSON.stringify(params, null, 1));
  const boots = 2 * (o.warmups + o.runs * o.vcpus.length);
  const labScript = path.join(projectRoot, 'dist', 'bench', 'boot_lab.js');
  const direct = hostRunsLinuxGuests();
  const timeoutS = 120 + boots * 90;
  const [cmd, ...args] = direct
    ? [process.execPath, labScript, paramsFile, resultsFile]
    : [labRunner, '--rw', outDir, '--timeout', String(timeoutS), '--', process.execPath, labScript, paramsFile, resultsFile];
  log(`lab: ${boots} Linux boots ${direct ? 'on this host' : 'in one kvm-lab session'} (about ${Math.ceil((boots * 9 + 10) / 60)} min)`);
  const watch = watchConcurrency(direct ? null : outDir);
  const t0 = nowMs();
  let code: number | null = null;
  for (let attempt = 1; ; attempt++) {
    const [c, signal] = await new Promise<[number | null, string | null]>((resolve, reject) => {
      const child = spawn(cmd!, args, { cwd: outDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KVM_LAB_VERBOSE: '1' } });
      const relay = (d: Buffer): void => {
        for (const line of d.toString().split('\n')) if (line.trim()) process.stderr.write(`  lab| ${line}\n`);
      };
      child.stdout.on('data', relay);
      child.stderr.on('data', relay);
      child.on('error', reject);
      child.on('close', (cc, sig) => resolve([cc, sig]));
    });
    code = c;
    if (fs.existsSync(resultsFile) || attempt > o.labRetries) {
      if (!fs.existsSync(resultsFile)) throw new Error(`the lab run left no results (exit ${c ?? signal})`);
      break;
    }
    // No boot has run yet (the lab machine did not start, e.g. starved by another lab): start it again.
    log(`lab: the lab ended (exit ${c ?? signal}) before any boot; retrying in 20 s (${attempt}/${o.labRetries})`);
    await new Promise((r) => setTimeout(r, 20_000));
  }
  const wallS = (nowMs() - t0) / 1000;
  const concurrency = watch.stop();
  if (!fs.existsSync(resultsFile)) throw new Error(`the lab run left no results (exit ${code})`);
  const res = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as LabResults;
  return {
    ...res,
    sparklerAdds: added,
    concurrency,
    wallS,
    labExit: code,
    guestFiles: { kernelBytes: fs.statSync(kernel).size, initrdBytes: fs.statSync(initrd).size },
  };
}

// ---------------------------------------------------------------- report

type Row = string[] | { section: string };
interface Table { head: string[]; rows: Row[] }

function renderText(t: Table): string {
  const widths = t.head.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (Array.isArray(r) ? (r[i] ?? '').length : 0))));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [line(t.head), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of t.rows) out.push(Array.isArray(r) ? line(r) : r.section);
  return out.join('\n');
}

function renderMarkdown(t: Table): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const out = [`| ${t.head.map(esc).join(' | ')} |`, `|${t.head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`];
  const cell = (s: string): string => esc(s).replace(/^ +/, (sp) => '&nbsp;'.repeat(sp.length)); // keep sub-row indents
  for (const r of t.rows) out.push(Array.isArray(r) ? `| ${r.map(cell).join(' | ')} |` : `| **${esc(r.section)}** |${' |'.repeat(t.head.length - 1)}`);
  return out.join('\n');
}

const sec = (ms: number | null): string => (ms === null ? '-' : `${(ms / 1000).toFixed(2)} s`);
const msf = (ms: number | null): string => (ms === null ? '-' : `${ms.toFixed(1)} ms`);
const mibf = (kib: number | null): string => (kib === null ? '-' : `${(kib / 1024).toFixed(1)} MiB`);
const verdict = (ok: boolean | null): string => (ok === null ? '-' : ok ? 'PASS' : 'MISS');

/** "median [min–max]" of the values, formatted with f. */
function stat(xs: number[], f: (x: number | null) => string): string {
  const m = median(xs);
  const mm = minMax(xs);
  if (m === null || !mm) return '-';
  return xs.length > 1 ? `${f(m)} [${f(mm[0]).replace(/ \S+$/, '')}–${f(mm[1])}]` : f(m);
}

function labTable(l: NonNullable<Results['lab']>): Table {
  const rows: Row[] = [];
  for (const vcpus of l.params.vcpus) {
    const sel = (vmm: 'sparkler' | 'qemu'): BootRecord[] => l.records.filter((r) => !r.warmup && r.vmm === vmm && r.vcpus === vcpus);
    const ok = (rs: BootRecord[]): BootRecord[] => rs.filter((r) => r.code === 0 && r.initMs !== null);
    const s = sel('sparkler');
    const q = sel('qemu');
    const so = ok(s);
    const qo = ok(q);
    const vals = (rs: BootRecord[], f: (r: BootRecord) => number | null | undefined): number[] =>
      rs.map(f).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
    const ratio = (f: (r: BootRecord) => number | null | undefined): number | null => {
      const a = median(vals(so, f));
      const b = median(vals(qo, f));
      return a === null || b === null || b === 0 ? null : a / b;
    };
    const rf = (x: number | null): string => (x === null ? '-' : x.toFixed(2));
    rows.push({ section: `${vcpus} vCPU${vcpus > 1 ? 's' : ''}, ${l.params.memMib} MiB: ${so.length}/${s.length} sparkler and ${qo.length}/${q.length} QEMU boots ok` });
    const timeRow = (name: string, f: (r: BootRecord) => number | null): string[] => {
      const r = ratio(f);
      return [name, stat(vals(so, f), sec), stat(vals(qo, f), sec), rf(r), `≤ ${TARGET_BOOT_RATIO.toFixed(2)}`, verdict(r === null ? null : r <= TARGET_BOOT_RATIO)];
    };
    rows.push(timeRow('spawn → SPARKLER-GUEST-UP (time to init)', (r) => r.initMs));
    rows.push(timeRow('spawn → process exit (whole run)', (r) => r.exitMs));
    const memRow = (name: string, f: (r: BootRecord) => number | null | undefined, target = '', v: boolean | null = null): string[] => [
      name,
      stat(vals(so, f), mibf),
      stat(vals(qo, f), mibf),
      rf(ratio(f)),
      target,
      target ? verdict(v) : '',
    ];
    rows.push(memRow('RssAnon at init (raw)', (r) => r.mem?.rssAnonKiB));
    rows.push(memRow('  of which guest RAM touched', (r) => r.mem?.guestRam?.anonKiB));
    const beyond = median(vals(so, (r) => r.mem?.beyondGuestKiB));
    rows.push(
      memRow(
        '  private memory beyond guest RAM',
        (r) => r.mem?.beyondGuestKiB,
        `≤ ${TARGET_BEYOND_MIB} MiB (QEMU ~${QEMU_BEYOND_REF_MIB})`,
        beyond === null ? null : beyond / 1024 <= TARGET_BEYOND_MIB,
      ),
    );
    rows.push(['sparkler Guest-boot-time (its log: start → 123 written)', stat(vals(so, (r) => (r.bootTimerUs === null ? null : r.bootTimerUs / 1000)), sec), 'n/a', '', '', '']);
    rows.push(['guest kernel clock at reboot (diagnostic, see notes)', stat(vals(so, (r) => (r.guestClockS === null ? null : r.guestClockS * 1000)), sec), stat(vals(qo, (r) => (r.guestClockS === null ? null : r.guestClockS * 1000)), sec), '', '', '']);
  }
  const warm = l.records.filter((r) => r.warmup);
  if (warm.length) {
    rows.push({ section: 'warm-up boots (not in the medians)' });
    const w = (vmm: string): string => warm.filter((r) => r.vmm === vmm).map((r) => `${sec(r.initMs)} / ${sec(r.exitMs)}`).join(', ') || '-';
    rows.push(['time to init / exit', w('sparkler'), w('qemu'), '', '', '']);
  }
  return { head: ['Linux guest in the lab, median [min–max]', 'sparkler', 'QEMU microvm', 'sparkler/QEMU', 'target', ''], rows };
}

function nativeTable(n: NonNullable<Results['native']>): Table {
  const ms = (us: number[]): number[] => us.map((u) => u / 1000);
  const fi = median(ms(n.firstInsnUs));
  const row = (name: string, xs: number[], target = '', ok: boolean | null = null): string[] => [
    name,
    stat(xs, msf),
    `${xs.length}/${n.runs}`,
    target,
    target ? verdict(ok) : '',
  ];
  return {
    head: ['Native on this host, median [min–max]', 'value', 'n', 'target', ''],
    rows: [
      row('process start → first guest instruction (Guest-boot-time, first_insn)', ms(n.firstInsnUs), `≤ ${TARGET_FIRST_INSN_MS} ms`, fi === null ? null : fi <= TARGET_FIRST_INSN_MS),
      row('  same, counted from spawn (--start-time-us = parent clock)', ms(n.firstInsnFromSpawnUs)),
      row('  same, hello test guest (prints 3 lines first)', ms(n.helloUs)),
      row('  breakdown: spawn → log "Running sparkler" (Node + modules up)', n.firstLogMs ?? []),
      row('  breakdown: spawn → log "Successfully started microvm"', n.startedMs ?? []),
      row('sparkler + first_insn: spawn → process exit', n.firstInsnExitMs),
      row('bare `node -e 0`: spawn → exit (reference)', n.nodeMs),
    ],
  };
}

function report(r: Results, markdown: boolean): string {
  const out: string[] = [];
  const h = r.host;
  const p = (s = ''): number => out.push(s);
  const kv = (k: string, v: string): number => (markdown ? p(`- **${k}**: ${v}`) : p(`  ${k.padEnd(9)} ${v}`));
  p(markdown ? `### sparkler boot benchmark (${r.date})` : `sparkler boot benchmark — ${r.date}`);
  p();
  kv('commit', r.commit);
  kv('host', `nproc ${h.nproc}, ${h.cpuModel}, ${h.memTotalMiB} MiB, kernel ${h.kernel}, KVM: ${h.kvm}, node ${h.node}`);
  if (r.lab) {
    const m = r.lab.machine;
    kv('lab', `nproc ${m.nproc}, ${m.cpuModel}, ${m.memTotalMiB} MiB, kernel ${m.kernel}, KVM: ${m.kvmModule}, THP ${m.thp}, QEMU ${m.qemu}`);
    kv('guest', `${path.basename(r.lab.params.kernel)} (${(r.lab.guestFiles.kernelBytes / 1048576).toFixed(1)} MiB, Debian cloud kernel) + initramfs (${(r.lab.guestFiles.initrdBytes / 1048576).toFixed(1)} MiB, busybox), ${r.lab.params.memMib} MiB`);
    const adds = r.lab.sparklerAdds.length ? ` + \`${r.lab.sparklerAdds.join(' ')}\` (appended by sparkler itself)` : '';
    kv('cmdline', `sparkler: \`${r.lab.params.cmdline}\`${adds}; QEMU: \`${r.lab.params.qemuCmdline}\``);
    kv('method', `one lab session, ${r.lab.params.runs} boots per VMM and vCPU count, alternating sparkler/QEMU, ${r.lab.params.warmups} warm-up boot(s) each first; lab session ${r.lab.wallS.toFixed(0)} s`);
    kv('qemu', `\`qemu-system-x86_64 -M ${r.lab.params.qemuMachine} -accel kvm -cpu host -m ${r.lab.params.memMib} -smp N -nodefaults -no-user-config -nographic -serial stdio -kernel … -initrd … -append … -no-reboot\``);
    const c = r.lab.concurrency;
    // The lab itself keeps ~2 host CPUs busy (TCG threads): only other labs, or load well beyond that, skew it.
    const busy = c.otherLabs > 0 || c.maxLoad1 > h.nproc + 1.5;
    kv(
      'noise',
      `${busy ? 'WARNING: ' : ''}${c.otherLabs} other kvm-lab machine(s) seen during the lab run, max load ${c.maxLoad1.toFixed(2)} on ${h.nproc} CPUs (the lab's own share included)` +
        (busy ? ': timings are noisy, rerun' : ''),
    );
  }
  p();
  if (r.lab) {
    p(markdown ? renderMarkdown(labTable(r.lab)) : renderText(labTable(r.lab)));
    p();
  }
  if (r.native) {
    p(markdown ? renderMarkdown(nativeTable(r.native)) : renderText(nativeTable(r.native)));
    const c = r.native.concurrency;
    const busy = c.otherLabs > 0 || c.maxLoad1 > h.nproc;
    p(
      `${markdown ? '' : '  '}${busy ? 'WARNING: ' : ''}native runs: ${c.otherLabs} kvm-lab machine(s) seen, max load ${c.maxLoad1.toFixed(2)} on ${h.nproc} CPUs` +
        (busy ? ': the host was busy, timings are inflated; rerun' : ''),
    );
    const counts = new Map<string, number>();
    for (const f of r.native.failures) counts.set(f, (counts.get(f) ?? 0) + 1);
    for (const [f, k] of counts) p(`${markdown ? '' : '  '}FAILED ${k}×: ${f}`);
    p();
  }
  const notes = [
    'Lab times are wall times from spawn() in the lab to the console line / process exit; the lab emulates the CPU (TCG), so compare ratios from the same run, not absolute figures.',
    'Memory is sampled from /proc/<pid>/status (RssAnon) and /proc/<pid>/smaps when SPARKLER-GUEST-UP appears. Guest RAM is an anonymous private mapping in both VMMs, so the RAM the guest has touched counts in RssAnon; "beyond guest RAM" = smaps Anonymous of the whole process minus that of the guest RAM mapping (the VMM\'s own heap, stacks, buffers). With THP the guest\'s RAM is touched in 2 MiB units.',
    'Guest kernel clock: the printk timestamp of the guest\'s "reboot: Restarting system" line, i.e. how long the guest kernel ran by its own kvm-clock (which starts at its kvm-clock set-up); the rest of spawn → exit is VMM start-up, firmware, kernel decompression and early boot. A large difference between the VMMs here points at device models or timekeeping, not at VMM start-up.',
    'first_insn (bench/guests/first_insn.S) maps the boot-timer page and writes 123 to 0xc0000000 in its 10th instruction, so its Guest-boot-time is the VMM\'s start-up up to the first guest instructions (on kvm_pvm each is emulated, ~0.3 µs). Guest-boot-time counts from Node\'s time origin (process start as Node sees it); the "from spawn" row also counts fork/exec and /usr/bin/env.',
  ];
  if (markdown) for (const n of notes) p(`- ${n}`);
  else for (const n of notes) p(`  * ${n}`);
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------- main

const o = parseArgs(process.argv.slice(2));
if (o.report) printEarlierReport(o.report, o.markdown, report);
const { outDir, header } = await startRun('boot', o.out, usage, log);
const results: Results = {
  ...header,
  options: { runs: o.runs, vcpus: o.vcpus, warmups: o.warmups, nativeRuns: o.nativeRuns, labRetries: o.labRetries, qemuMachine: o.qemuMachine, lab: o.lab, native: o.native },
  native: null,
  lab: null,
};
const save = (): void => saveResults(outDir, results);

let failed = false;
if (o.native) {
  log(`native: ${o.nativeRuns} rounds of node -e 0, first_insn (twice), hello`);
  results.native = await native(o, outDir);
  failed ||= results.native.failures.length > 0;
  save();
}
if (o.lab) {
  try {
    results.lab = await lab(o, outDir);
    failed ||= results.lab.labExit !== 0;
  } catch (e) {
    log(`lab: ${(e as Error).message}`);
    failed = true;
  }
  save();
}
finishRun(outDir, results, report, o.markdown, failed);
