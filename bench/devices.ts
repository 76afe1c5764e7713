/**
 * bench/devices: sparkler's device benchmark (run it through the bench/devices script).
 *
 * 1. In the emulated-KVM lab (one lab session; directly on hosts with vmx/svm):
 *    the Debian cloud kernel + busybox initramfs with `sparkler.cmd=devbench`
 *    (guest/init.sh) booted alternately under sparkler and QEMU microvm, N
 *    times each, with a scratch disk (virtio-blk, cache unsafe) and a TAP
 *    (virtio-net). On its own clock the guest times dd with O_DIRECT (1 MiB
 *    sequential read and write, each twice: the first pass is reported as
 *    "cold", since sparkler's JIT optimizes its I/O path during it, the
 *    second is the timed figure) and bench/guests/randread.c (4 KiB O_DIRECT
 *    random reads, queue depth 1, IOPS); then it sends a fixed amount over TCP
 *    to randread's sink on the TAP's host side (169.254.77.1), timed there;
 *    last it starts a sink of its own and the lab host sends to it (host →
 *    guest, timed on the guest's clock). (bench/devices_lab.ts does the boots.)
 * 2. --host: the device models' own throughput on this host through the
 *    guest-driver harness, no guest (bench/devices_host.ts).
 * Prints one report (markdown with --markdown) and keeps the raw data in
 * --out DIR (default .cache/bench/devices-<time>/): results.json, report.txt, report.md.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildCpio } from '../src/guest/cpio.js';
import { buildGuest } from '../tests/helpers/guest_build.js';
import { hostRunsLinuxGuests, labRunner } from '../tests/helpers/lab.js';
import { benchCli, finishRun, printEarlierReport, saveResults, startRun, watchConcurrency, type Concurrency, type OutputOptions, type ResultsHeader } from './bench_run.js';
import { projectRoot } from '../tests/helpers/sparkler_run.js';
import { capture, median, minMax, nowMs } from './boot_shared.js';
import type { DevLabParams, DevLabResults, DevRunRecord, Vmm } from './devices_shared.js';
import { hostBench, type HostResults, type HostRow } from './devices_host.js';

const BASE_CMDLINE = 'console=ttyS0 reboot=k panic=1 i8042.noaux i8042.nomux i8042.dumbkbd quiet';
const TARGET_RATIO = 0.9;
/**
 * Default size of each dd pass and TCP transfer. At 64 MiB a pass lasts
 * ~0.15-0.5 s in the emulated lab, and even the second ("warm") pass often
 * still ran while V8 was optimizing sparkler's device paths (run-to-run
 * spread 0.75-1.0x QEMU), so it did not measure steady-state throughput;
 * 256 MiB passes do. The first pass is still reported, as "cold".
 */
const DEFAULT_MIB = 256;
const HOST_IP = '169.254.77.1';
const GUEST_IP = '169.254.77.2';
const PORT = 5001;
/** The guest's sink for host → guest TCP. */
const RECV_PORT = 5002;

const USAGE = `usage: bench/devices [options]
  (default: the guest-side part in the lab; --host: the harness part on this host only; --all: both)
  --runs N          timed boots per VMM in the lab, alternating (default 3)
  --warmups N       untimed boots of each VMM first (default 1)
  --dd-mib N        dd size of the sequential read and write, MiB (default 256); each dd runs
                    twice, a first (cold) pass and the timed one
  --dd-bs KIB       dd block size, KiB (default 1024; one O_DIRECT request of the guest's each)
  --rand-seconds S  duration of the 4 KiB random-read test (default 5)
  --net-mib N       MiB the guest sends to the host over TCP (default 256; 0 = no network part)
  --net-recv-mib N  MiB the host sends to the guest over TCP (default: --net-mib; 0 = not measured)
  --mem MIB         guest RAM (default 256)
  --timeout S       limit of the whole lab session (default: from the number of boots)
  --lab-retries N   start the lab again when it ends before any boot (default 1)
  --qemu-machine M  QEMU's -M value (default microvm,acpi=on)
  --io-engine E     sparkler's drive io_engine: Sync (default) or Async (io_uring)
  --only VMM        boot only this VMM (sparkler or qemu): for hunting a rare failure, not for ratios
  --v8-flags "F"    extra V8 flags for sparkler, set once its vCPUs run (SPARKLER_V8_FLAGS; diagnostics,
                    e.g. "--trace-opt --trace-deopt": the traces land in the runs' console files)
  --host            only part 3: the device models through the test harness on this host
  --all             the lab part and the host part
  --host-reps N     repetitions of each host measurement (default 3)
  --host-seconds S  seconds per host block measurement (default 1)
  --markdown        print the report as markdown
  --out DIR         where raw results and reports go (default .cache/bench/devices-<time>)
  --report DIR      print the report of an earlier run from DIR/results.json, run nothing
`;

interface Options extends OutputOptions {
  runs: number;
  warmups: number;
  ddMib: number;
  ddBsKiB: number;
  randSeconds: number;
  netMib: number;
  /** null: as netMib. */
  netRecvMib: number | null;
  memMib: number;
  timeoutS: number | null;
  labRetries: number;
  qemuMachine: string;
  /** sparkler's drive io_engine. */
  ioEngine: 'Sync' | 'Async';
  /** Extra V8 flags for sparkler (SPARKLER_V8_FLAGS), or null. */
  v8Flags: string | null;
  only: Vmm | null;
  lab: boolean;
  host: boolean;
  hostReps: number;
  hostSeconds: number;
}

const cli = benchCli('bench/devices', USAGE);
const { usage, log } = cli;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    runs: 3, warmups: 1, ddMib: DEFAULT_MIB, ddBsKiB: 1024, randSeconds: 5, netMib: DEFAULT_MIB, netRecvMib: null, memMib: 256, timeoutS: null, labRetries: 1,
    qemuMachine: 'microvm,acpi=on', ioEngine: 'Sync', v8Flags: null, only: null, lab: true, host: false, hostReps: 3, hostSeconds: 1, markdown: false, out: null, report: null,
  };
  const { num } = cli;
  cli.forEachFlag(argv, (flag, val) => {
    switch (flag) {
      case '--runs': o.runs = num(flag, val(), 1); break;
      case '--warmups': o.warmups = num(flag, val(), 0); break;
      case '--dd-mib': o.ddMib = num(flag, val(), 1); break;
      case '--dd-bs': o.ddBsKiB = num(flag, val(), 4); break;
      case '--rand-seconds': o.randSeconds = num(flag, val(), 1); break;
      case '--net-mib': o.netMib = num(flag, val(), 0); break;
      case '--net-recv-mib': o.netRecvMib = num(flag, val(), 0); break;
      case '--mem': o.memMib = num(flag, val(), 64); break;
      case '--timeout': o.timeoutS = num(flag, val(), 60); break;
      case '--lab-retries': o.labRetries = num(flag, val(), 0); break;
      case '--qemu-machine': o.qemuMachine = val() ?? usage('--qemu-machine needs a value'); break;
      case '--io-engine': {
        const v = val();
        if (v !== 'Sync' && v !== 'Async') usage('--io-engine needs Sync or Async');
        o.ioEngine = v as 'Sync' | 'Async';
        break;
      }
      case '--only': {
        const v = val();
        if (v !== 'sparkler' && v !== 'qemu') usage('--only needs sparkler or qemu');
        o.only = v as Vmm;
        break;
      }
      case '--v8-flags': o.v8Flags = val() ?? usage('--v8-flags needs a value'); break;
      case '--host': o.host = true; o.lab = false; break;
      case '--all': o.host = true; o.lab = true; break;
      case '--host-reps': o.hostReps = num(flag, val(), 1); break;
      case '--host-seconds': o.hostSeconds = num(flag, val(), 0.1, false); break;
      default: return cli.outputFlag(o, flag, val);
    }
    return true;
  });
  if ((o.ddMib * 1024) % o.ddBsKiB !== 0) usage(`--dd-bs ${o.ddBsKiB} KiB does not divide --dd-mib ${o.ddMib} MiB`);
  return o;
}


// ---------------------------------------------------------------- results


interface LabPart extends DevLabResults {
  sparklerAdds: string[];
  concurrency: Concurrency;
  wallS: number;
  labExit: number | null;
  guestFiles: { kernelBytes: number; initrdBytes: number; randreadBytes: number };
  sparklerEntry: string;
}

interface Results extends ResultsHeader {
  options: Omit<Options, 'report' | 'markdown' | 'out'>;
  lab: LabPart | null;
  labError: string | null;
  hostBench: (HostResults & { concurrency: Concurrency }) | null;
}

// ---------------------------------------------------------------- helpers

function run(file: string, args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin!.on('error', () => {});
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: stderr + e.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      child.stdin!.destroy();
      resolve({ code, stdout, stderr });
    });
  });
}

/** The words sparkler appends to the guest's command line itself (pci=off), read back through the hello guest (as bench/boot does). */
async function sparklerAddedArgs(outDir: string, bin: string): Promise<string[]> {
  const hello = await buildGuest('hello');
  const given = 'console=ttyS0';
  const f = path.join(outDir, 'probe-cmdline.json');
  fs.writeFileSync(f, JSON.stringify({ 'boot-source': { kernel_image_path: hello, boot_args: given }, 'machine-config': { vcpu_count: 1, mem_size_mib: 64 } }));
  const p = await run(bin, ['--no-api', '--config-file', f]);
  const seen = /^cmdline: (.*)$/m.exec(p.stdout)?.[1];
  if (p.code !== 0 || seen === undefined) throw new Error(`could not read sparkler's effective command line through the hello guest (exit ${p.code}): ${p.stderr.trim().split('\n').pop() ?? ''}`);
  const have = new Set(given.split(' '));
  return seen.split(/\s+/).filter((w) => w && !have.has(w));
}

/**
 * A private copy of what `bin/sparkler` runs (bin/, dist/src, dist/bundle with their mtimes,
 * package.json; node_modules linked), so that a rebuild or re-bundle in the shared work tree
 * during the lab session (minutes) cannot pull files from under the runs. Returns its bin/sparkler.
 */
function snapshotSparkler(outDir: string): { bin: string; dir: string; entry: string } {
  const dir = path.join(outDir, 'sparkler');
  for (let attempt = 1; ; attempt++) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(path.join(dir, 'dist'), { recursive: true });
    for (const part of ['bin', 'dist/src', 'dist/bundle', 'package.json']) {
      const from = path.join(projectRoot, part);
      if (fs.existsSync(from)) fs.cpSync(from, path.join(dir, part), { recursive: true, preserveTimestamps: true });
    }
    fs.symlinkSync(path.join(projectRoot, 'node_modules'), path.join(dir, 'node_modules'));
    // The bundle's chunks must all be there (a re-bundle may have run while we copied).
    const bundleDir = path.join(dir, 'dist', 'bundle');
    const missing = fs.existsSync(bundleDir)
      ? fs.readdirSync(bundleDir).filter((f) => f.endsWith('.mjs'))
          .flatMap((f) => [...fs.readFileSync(path.join(bundleDir, f), 'utf8').matchAll(/from\s*"\.\/([\w.-]+\.mjs)"/g)].map((m) => m[1]!))
          .filter((f) => !fs.existsSync(path.join(bundleDir, f)))
      : [];
    if (missing.length === 0) break;
    if (attempt === 3) throw new Error(`the bundle in dist/bundle keeps changing while it is copied (missing ${missing.join(', ')})`);
  }
  const bundle = fs.statSync(path.join(dir, 'dist', 'bundle', 'sparkler.mjs'), { throwIfNoEntry: false });
  const built = fs.statSync(path.join(dir, 'dist', 'src', 'cli', 'main.js'), { throwIfNoEntry: false });
  const entry = bundle && (!built || bundle.mtimeMs >= built.mtimeMs) ? 'dist/bundle (the bundle)' : 'dist/src (tsc output; the bundle is older or missing)';
  return { bin: path.join(dir, 'bin', 'sparkler'), dir, entry };
}

/** bench/guests/randread.c as a static Linux executable (it runs in the guest and, as the TCP sink, on the lab's host). */
function buildRandread(outDir: string): string {
  const src = path.join(projectRoot, 'bench', 'guests', 'randread.c');
  const out = path.join(outDir, 'randread');
  try {
    execFileSync('gcc', ['-static', '-O2', '-s', '-Wall', '-Wextra', '-Werror', '-o', out, src], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { code?: string; stderr?: Buffer; message: string };
    throw new Error(err.code === 'ENOENT'
      ? 'gcc not found: bench/devices builds its guest tool with gcc (Debian: apt-get install gcc libc6-dev)'
      : `building ${src} with gcc -static failed (a static glibc comes with Debian's libc6-dev):\n${err.stderr?.toString() ?? err.message}`);
  }
  return out;
}

/** The prepared initramfs followed by a gzipped newc archive holding /bin/randread: Linux unpacks both. */
function benchInitrd(initramfs: string, tool: string, outDir: string): string {
  const extra = gzipSync(buildCpio([{ type: 'file', path: 'bin/randread', data: fs.readFileSync(tool), mode: 0o755 }]), { level: 9 });
  const file = path.join(outDir, 'initramfs-devbench.cpio.gz');
  fs.writeFileSync(file, Buffer.concat([fs.readFileSync(initramfs), extra]));
  return file;
}

// ---------------------------------------------------------------- part 1+2: lab

async function lab(o: Options, outDir: string): Promise<LabPart> {
  const prep = await run(path.join(projectRoot, 'bin', 'sparkler-guest'), ['prepare'], 600_000);
  const guestDir = prep.stdout.trim().split('\n').pop() ?? '';
  if (prep.code !== 0 || !guestDir) throw new Error(`bin/sparkler-guest prepare failed:\n${prep.stderr}`);
  const init = fs.readFileSync(path.join(projectRoot, 'guest', 'init.sh'), 'utf8');
  if (!init.includes('devbench)')) throw new Error('guest/init.sh has no sparkler.cmd=devbench mode');
  const kernel = path.join(guestDir, 'vmlinuz');
  const tool = buildRandread(outDir);
  const initrd = benchInitrd(path.join(guestDir, 'initramfs.cpio.gz'), tool, outDir);
  const qemu = (await capture('sh', ['-c', 'command -v qemu-system-x86_64'])).trim();
  if (!qemu) throw new Error('qemu-system-x86_64 not found (Debian: apt-get install qemu-system-x86)');
  const snap = snapshotSparkler(outDir);
  log(`lab: sparkler runs from a snapshot of ${snap.entry} in ${snap.dir}`);
  const added = await sparklerAddedArgs(outDir, snap.bin);
  // Host → guest rides on the network part's set-up (eth0's address comes with sparkler.bench_net).
  const recvMib = o.netMib > 0 ? o.netRecvMib ?? o.netMib : 0;
  const bench = [
    'sparkler.cmd=devbench',
    `sparkler.bench_mib=${o.ddMib}`,
    ...(o.ddBsKiB !== 1024 ? [`sparkler.bench_bs_kb=${o.ddBsKiB}`] : []),
    `sparkler.bench_rand_s=${o.randSeconds}`,
    ...(o.netMib > 0 ? [`sparkler.bench_net=${HOST_IP}:${PORT}:${o.netMib}`, `sparkler.bench_guest_ip=${GUEST_IP}`] : []),
    ...(recvMib > 0 ? [`sparkler.bench_net_recv=${RECV_PORT}`] : []),
  ].join(' ');
  const cmdline = `${BASE_CMDLINE} ${bench}`;
  const params: DevLabParams = {
    kernel,
    initrd,
    randread: tool,
    cmdline,
    // QEMU microvm has no i8042: its guest resets by triple fault, which -no-reboot turns into an exit.
    qemuCmdline: [cmdline.replace('reboot=k', 'reboot=t'), ...added.filter((w) => w.startsWith('pci='))].join(' '),
    qemuMachine: o.qemuMachine,
    ioEngine: o.ioEngine,
    ...(o.v8Flags ? { v8Flags: o.v8Flags } : {}),
    ...(o.only ? { only: o.only } : {}),
    memMib: o.memMib,
    vcpus: 1,
    runs: o.runs,
    warmups: o.warmups,
    imageMib: 2 * o.ddMib,
    ddMib: o.ddMib,
    ddBsKiB: o.ddBsKiB,
    randSeconds: o.randSeconds,
    netMib: o.netMib,
    netRecvMib: recvMib,
    recvPort: RECV_PORT,
    tap: 'spkbench0',
    hostIp: HOST_IP,
    guestIp: GUEST_IP,
    guestMac: '06:00:AC:10:00:02',
    port: PORT,
    sparklerBin: snap.bin,
    sparklerDir: snap.dir,
    qemu,
    runTimeoutS: 240,
    workDir: path.join(outDir, 'lab-work'),
  };
  const paramsFile = path.join(outDir, 'lab-params.json');
  const resultsFile = path.join(outDir, 'lab-results.json');
  fs.writeFileSync(paramsFile, JSON.stringify(params, null, 1));
  const boots = (o.only ? 1 : 2) * (o.warmups + o.runs);
  const labScript = path.join(projectRoot, 'dist', 'bench', 'devices_lab.js');
  const direct = hostRunsLinuxGuests();
  const perBootS = 25 + o.ddMib / 16 + o.randSeconds + (o.netMib + recvMib) / 2;
  const timeoutS = o.timeoutS ?? Math.ceil(120 + boots * perBootS * 3);
  const [cmd, ...args] = direct
    ? [process.execPath, labScript, paramsFile, resultsFile]
    : [labRunner, '--rw', outDir, '--timeout', String(timeoutS), '--', process.execPath, labScript, paramsFile, resultsFile];
  log(`lab: ${boots} Linux boots ${direct ? 'on this host' : `in one kvm-lab session (limit ${timeoutS} s)`}`);
  const watch = watchConcurrency(direct ? null : outDir);
  const t0 = nowMs();
  let code: number | null = null;
  for (let attempt = 1; ; attempt++) {
    const [c, signal] = await new Promise<[number | null, string | null]>((resolve, reject) => {
      // KVM_LAB_BOOT_S: the lab's start-up patience; 30 s is short when other labs share the host's CPUs.
      const child = spawn(cmd!, args, { cwd: outDir, stdio: ['ignore', 'pipe', 'pipe'], env: { KVM_LAB_BOOT_S: '60', ...process.env, KVM_LAB_VERBOSE: '1' } });
      const relay = (d: Buffer): void => {
        for (const line of d.toString().split('\n')) if (line.trim()) process.stderr.write(`  lab| ${line}\n`);
      };
      child.stdout.on('data', relay);
      child.stderr.on('data', relay);
      child.on('error', reject);
      child.on('close', (cc, sig) => resolve([cc, sig]));
    });
    code = c;
    const res = fs.existsSync(resultsFile) ? (JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as DevLabResults) : null;
    if ((res && res.records.length > 0) || attempt > o.labRetries) {
      if (!res) throw new Error(`the lab run left no results (exit ${c ?? signal})`);
      break;
    }
    log(`lab: the lab ended (exit ${c ?? signal}) before any boot; retrying in 20 s (${attempt}/${o.labRetries})`);
    await new Promise((r) => setTimeout(r, 20_000));
  }
  const wallS = (nowMs() - t0) / 1000;
  const concurrency = watch.stop();
  const res = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as DevLabResults;
  return {
    ...res,
    sparklerAdds: added,
    concurrency,
    wallS,
    labExit: code,
    guestFiles: { kernelBytes: fs.statSync(kernel).size, initrdBytes: fs.statSync(initrd).size, randreadBytes: fs.statSync(tool).size },
    sparklerEntry: snap.entry,
  };
}

// ---------------------------------------------------------------- report

type Row = string[] | { section: string };
interface Table { head: string[]; rows: Row[] }

function renderText(t: Table): string {
  const widths = t.head.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (Array.isArray(r) ? (r[i] ?? '').length : 0))));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [line(t.head), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of t.rows) out.push(Array.isArray(r) ? line(r) : r.section);
  return out.join('\n');
}

function renderMarkdown(t: Table): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const out = [`| ${t.head.map(esc).join(' | ')} |`, `|${t.head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`];
  const cell = (s: string): string => esc(s).replace(/^ +/, (sp) => '&nbsp;'.repeat(sp.length));
  for (const r of t.rows) out.push(Array.isArray(r) ? `| ${r.map(cell).join(' | ')} |` : `| **${esc(r.section)}** |${' |'.repeat(t.head.length - 1)}`);
  return out.join('\n');
}

const verdict = (ok: boolean | null): string => (ok === null ? '-' : ok ? 'PASS' : 'MISS');
const fixed = (d: number) => (x: number | null): string => (x === null ? '-' : x.toFixed(d));

/** "median [min–max]" of the values, formatted with f. */
function stat(xs: number[], f: (x: number | null) => string): string {
  const m = median(xs);
  const mm = minMax(xs);
  if (m === null || !mm) return '-';
  return xs.length > 1 ? `${f(m)} [${f(mm[0])}–${f(mm[1])}]` : f(m);
}

const COMMON_FEATURES: Record<number, string> = { 28: 'INDIRECT_DESC', 29: 'EVENT_IDX', 32: 'VERSION_1' };
const BLK_FEATURES: Record<number, string> = { 1: 'SIZE_MAX', 2: 'SEG_MAX', 9: 'FLUSH', 12: 'MQ', 13: 'DISCARD', 14: 'WRITE_ZEROES', ...COMMON_FEATURES };
const NET_FEATURES: Record<number, string> = { 0: 'CSUM', 1: 'GUEST_CSUM', 7: 'GUEST_TSO4', 11: 'HOST_TSO4', 15: 'MRG_RXBUF', ...COMMON_FEATURES };

/** The guest's /sys/bus/virtio/devices/…/features string (one character per bit, bit 0 first) as "has A, B; lacks C". */
function decodeFeatures(bits: string, names: Record<number, string>): string {
  const has: string[] = [];
  const lacks: string[] = [];
  for (const [bit, name] of Object.entries(names)) (bits[Number(bit)] === '1' ? has : lacks).push(name);
  const legacy = bits[32] !== '1' ? ' (legacy virtio)' : '';
  return `[${has.join(' ') || '-'}; lacks ${lacks.join(' ') || '-'}]${legacy}`;
}

const timed = (l: LabPart, vmm: Vmm): DevRunRecord[] => l.records.filter((r) => !r.warmup && r.vmm === vmm);
const vals = (rs: DevRunRecord[], f: (r: DevRunRecord) => number | null | undefined): number[] =>
  rs.map(f).filter((x): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0);
const mbps = (bytes: number | undefined, s: number | undefined): number | null => (bytes && s ? bytes / 1e6 / s : null);

interface Metric { name: string; unit: string; digits: number; f: (r: DevRunRecord) => number | null | undefined; target: boolean }

const bsText = (kib: number | undefined): string => (kib === undefined || kib === 1024 ? '1M' : kib % 1024 === 0 ? `${kib / 1024}M` : `${kib}k`);

function labMetrics(l: LabPart): Metric[] {
  const p = l.params;
  // Results of earlier versions have one pass per dd and no host → guest part: no empty rows for them.
  const cold = l.records.some((r) => r.blk.seqReadCold || r.blk.seqWriteCold);
  const recv = p.netMib > 0 && (p.netRecvMib ?? 0) > 0;
  const pass = cold ? ', second pass (warm)' : '';
  const m: Metric[] = [
    { name: `block: sequential read, dd bs=${bsText(p.ddBsKiB)} iflag=direct, ${p.ddMib} MiB${pass}`, unit: 'MB/s', digits: 1, f: (r) => mbps(r.blk.seqRead?.bytes, r.blk.seqRead?.seconds), target: true },
    ...(cold ? [{ name: 'block: sequential read, first pass (cold JIT)', unit: 'MB/s', digits: 1, f: (r: DevRunRecord) => mbps(r.blk.seqReadCold?.bytes, r.blk.seqReadCold?.seconds), target: false }] : []),
    { name: `  requests the device saw per ${cold ? 'warm ' : ''}dd (guest block-layer counters)`, unit: 'reqs', digits: 0, f: (r) => r.blk.seqReadReqs?.count, target: false },
    { name: '  mean request size', unit: 'KiB', digits: 1, f: (r) => r.blk.seqReadReqs?.meanKiB, target: false },
    { name: `block: sequential write, dd bs=${bsText(p.ddBsKiB)} oflag=direct, ${p.ddMib} MiB${pass}`, unit: 'MB/s', digits: 1, f: (r) => mbps(r.blk.seqWrite?.bytes, r.blk.seqWrite?.seconds), target: true },
    ...(cold ? [{ name: 'block: sequential write, first pass (cold JIT)', unit: 'MB/s', digits: 1, f: (r: DevRunRecord) => mbps(r.blk.seqWriteCold?.bytes, r.blk.seqWriteCold?.seconds), target: false }] : []),
    { name: `  requests the device saw per ${cold ? 'warm ' : ''}dd`, unit: 'reqs', digits: 0, f: (r) => r.blk.seqWriteReqs?.count, target: false },
    { name: '  mean request size', unit: 'KiB', digits: 1, f: (r) => r.blk.seqWriteReqs?.meanKiB, target: false },
    { name: '  time per dd write request, guest view (dd time / requests)', unit: 'µs', digits: 0, f: (r) => (r.blk.seqWrite && r.blk.seqWriteReqs ? (r.blk.seqWrite.seconds * 1e6) / r.blk.seqWriteReqs.count : null), target: false },
    { name: `  of which in the host pwrite(s) (sparkler metrics write_agg${cold ? ', both passes' : ''})`, unit: 'µs', digits: 0, f: (r) => (r.vmmBlock && r.vmmBlock.writeCount > 0 ? r.vmmBlock.writeUs / r.vmmBlock.writeCount : null), target: false },
    { name: `block: 4 KiB random read, O_DIRECT, QD1, ${p.randSeconds} s (randread)`, unit: 'IOPS', digits: 0, f: (r) => r.blk.rand?.iops, target: true },
    { name: '  = µs per 4 KiB read (guest clock, 1/IOPS)', unit: 'µs', digits: 0, f: (r) => (r.blk.rand ? 1e6 / r.blk.rand.iops : null), target: false },
  ];
  if (p.netMib > 0) {
    m.push(
      { name: `net: guest → host TCP, ${p.netMib} MiB over the TAP (host clock, first byte → EOF)`, unit: 'MB/s', digits: 1, f: (r) => mbps(r.net.sink?.bytes, r.net.sink?.seconds), target: true },
      { name: '  guest\'s own view (connect → peer close, guest clock)', unit: 'MB/s', digits: 1, f: (r) => mbps(r.net.send?.bytes, r.net.send?.seconds), target: false },
    );
  }
  if (recv) {
    m.push(
      { name: `net: host → guest TCP, ${p.netRecvMib} MiB over the TAP (guest clock, first byte → EOF)`, unit: 'MB/s', digits: 1, f: (r) => mbps(r.net.recv?.bytes, r.net.recv?.seconds), target: true },
      { name: '  lab host\'s own view (connect → peer close, host clock)', unit: 'MB/s', digits: 1, f: (r) => mbps(r.net.recvSend?.bytes, r.net.recvSend?.seconds), target: false },
    );
  }
  m.push({ name: 'guest RAM touched, in transparent huge pages (VMM smaps, after the block tests)', unit: '%', digits: 0, f: (r) => (r.guestRam && r.guestRam.anonKiB > 0 ? (100 * r.guestRam.anonHugeKiB) / r.guestRam.anonKiB : null), target: false });
  m.push({ name: 'whole run: spawn → exit (boot + all tests + reboot)', unit: 's', digits: 1, f: (r) => (r.wallMs === null ? null : r.wallMs / 1000), target: false });
  return m;
}

function labTable(l: LabPart): Table {
  const s = timed(l, 'sparkler');
  const q = timed(l, 'qemu');
  const rows: Row[] = [];
  const okCount = (rs: DevRunRecord[]): number => rs.filter((r) => r.errors.length === 0).length;
  rows.push({ section: `1 vCPU, ${l.params.memMib} MiB; ${okCount(s)}/${s.length} sparkler and ${okCount(q)}/${q.length} QEMU runs without problems` });
  for (const m of labMetrics(l)) {
    const a = median(vals(s, m.f));
    const b = median(vals(q, m.f));
    const ratio = a === null || b === null || b === 0 ? null : a / b;
    const fmt = (x: number | null): string => (x === null ? '-' : `${x.toFixed(m.digits)}`);
    rows.push([
      m.name,
      m.unit,
      stat(vals(s, m.f), fmt),
      stat(vals(q, m.f), fmt),
      fixed(2)(ratio),
      m.target ? `≥ ${TARGET_RATIO.toFixed(2)}` : '',
      m.target ? verdict(ratio === null ? null : ratio >= TARGET_RATIO) : '',
    ]);
  }
  const warm = l.records.filter((r) => r.warmup);
  if (warm.length) {
    const recv = warm.some((r) => r.net.recv !== undefined);
    const passes = warm.some((r) => r.blk.seqReadCold !== undefined) ? ' (second passes)' : '';
    rows.push({ section: `warm-up runs (not in the medians): seq read / seq write MB/s${passes}, IOPS, net guest → host${recv ? ' / host → guest' : ''} MB/s` });
    const w = (vmm: Vmm): string =>
      warm
        .filter((r) => r.vmm === vmm)
        .map((r) =>
          [
            mbps(r.blk.seqRead?.bytes, r.blk.seqRead?.seconds),
            mbps(r.blk.seqWrite?.bytes, r.blk.seqWrite?.seconds),
            r.blk.rand?.iops ?? null,
            mbps(r.net.sink?.bytes, r.net.sink?.seconds),
            ...(recv ? [mbps(r.net.recv?.bytes, r.net.recv?.seconds)] : []),
          ].map((x) => (x === null ? '-' : x.toFixed(x > 999 ? 0 : 1))).join(' / '))
        .join('; ') || '-';
    rows.push(['', '', w('sparkler'), w('qemu'), '', '', '']);
  }
  return { head: ['Guest-side, in the lab: median [min–max]', 'unit', 'sparkler', 'QEMU microvm', 'sparkler/QEMU', 'target', ''], rows };
}

function hostTable(h: HostResults): Table {
  const rows: Row[] = [];
  const row = (r: HostRow, unit: 'req' | 'frame'): string[] => {
    const mb = r.reqPerS.map((x) => (x * r.bytesPerReq) / 1e6);
    const k = r.reqPerS.map((x) => x / 1000);
    const us = r.reqPerS.map((x) => 1e6 / x);
    return [r.name, stat(mb, fixed(1)), stat(k, fixed(1)), stat(us, fixed(2)), r.note || (unit === 'frame' ? '' : '')];
  };
  rows.push({ section: `virtio-blk (BlockBackend, cache Unsafe, page-cached 64 MiB file, guest RAM in a host mapping); ${h.reps} × ${h.seconds} s each` });
  for (const r of h.block) rows.push(row(r, 'req'));
  if (h.jsCostUsPer4kRead !== null) rows.push([`  ⇒ JS cost per 4 KiB read request (device − raw syscall, random, batched)`, '', '', h.jsCostUsPer4kRead.toFixed(2), 'µs/req']);
  rows.push({ section: `virtio-net (NetBackend on a TAP, AF_PACKET host side); ${h.reps} repetitions` });
  if (h.netError) rows.push([`virtio-net: not measured: ${h.netError}`, '', '', '', '']);
  for (const r of h.net) rows.push(row(r, 'frame'));
  return { head: ['Device models on this host, no guest: median [min–max]', 'MB/s', 'k IOPS / kpps', 'µs/req', 'note'], rows };
}

function report(r: Results, markdown: boolean): string {
  const out: string[] = [];
  const h = r.host;
  const p = (s = ''): number => out.push(s);
  const kv = (k: string, v: string): number => (markdown ? p(`- **${k}**: ${v}`) : p(`  ${k.padEnd(9)} ${v}`));
  p(markdown ? `### sparkler device benchmark (${r.date})` : `sparkler device benchmark — ${r.date}`);
  p();
  kv('commit', r.commit);
  kv('host', `nproc ${h.nproc}, ${h.cpuModel}, ${h.memTotalMiB} MiB, kernel ${h.kernel}, KVM: ${h.kvm}, node ${h.node}`);
  const l = r.lab;
  if (l) {
    const m = l.machine;
    const lp = l.params;
    kv('lab', `nproc ${m.nproc}, ${m.cpuModel}, ${m.memTotalMiB} MiB, kernel ${m.kernel}, KVM: ${m.kvmModule}, QEMU ${m.qemu}`);
    kv('guest', `${path.basename(path.dirname(lp.kernel))}/vmlinuz (${(l.guestFiles.kernelBytes / 1048576).toFixed(1)} MiB, Debian cloud kernel) + initramfs with /bin/randread (${(l.guestFiles.initrdBytes / 1048576).toFixed(1)} MiB), 1 vCPU, ${lp.memMib} MiB`);
    const adds = l.sparklerAdds.length ? ` + \`${l.sparklerAdds.join(' ')}\` (appended by sparkler itself)` : '';
    kv('cmdline', `sparkler: \`${lp.cmdline}\`${adds}; QEMU: \`${lp.qemuCmdline}\``);
    kv('disk', `${lp.imageMib} MiB raw image of random data in the lab's RAM-backed /tmp (host page cache); sparkler \`cache_type: Unsafe\`, \`io_engine: ${lp.ioEngine ?? 'Sync'}\`, QEMU \`cache=unsafe\` (aio=threads); reads cover [0, ${lp.ddMib}) MiB, writes [${lp.ddMib}, ${2 * lp.ddMib}) MiB, random reads the whole disk`);
    if (lp.v8Flags) kv('v8 flags', `sparkler ran with SPARKLER_V8_FLAGS="${lp.v8Flags}"`);
    if (lp.netMib > 0) {
      const back = (lp.netRecvMib ?? 0) > 0 ? `; host → guest: randread's sink in the guest (port ${lp.recvPort}), the lab host's randread sends once the guest says it listens` : '';
      kv('net', `TAP ${lp.tap} = ${lp.hostIp}/30 (persistent, shared by both VMMs), guest ${lp.guestIp}, MAC ${lp.guestMac}; guest → host: randread's sink on the lab host${back}; QEMU \`vhost=off\``);
    }
    if (l.sparklerEntry) kv('sparkler', `bin/sparkler starting from ${l.sparklerEntry}, a private copy taken at the start (copied into the lab's RAM)`);
    kv('method', `one lab session, ${lp.runs} timed runs per VMM alternating (order flipped every round), ${lp.warmups} warm-up run(s) each first; lab session ${l.wallS.toFixed(0)} s (exit ${l.labExit})`);
    kv('qemu', `\`qemu-system-x86_64 -M ${lp.qemuMachine} -accel kvm -cpu host -m ${lp.memMib} -smp 1 -nodefaults -no-user-config -nographic -serial stdio -kernel … -initrd … -append … -no-reboot -drive id=d,file=IMG,format=raw,if=none,cache=unsafe -device virtio-blk-device,drive=d${lp.netMib > 0 ? ` -netdev tap,id=n,ifname=${lp.tap},script=no,downscript=no,vhost=off -device virtio-net-device,netdev=n,mac=${lp.guestMac}` : ''}\``);
    const c = l.concurrency;
    const busy = c.otherLabs > 0 || c.maxLoad1 > h.nproc + 1.5;
    kv('noise', `${busy ? 'WARNING: ' : ''}${c.otherLabs} other kvm-lab machine(s) seen during the lab run, max load ${c.maxLoad1.toFixed(2)} on ${h.nproc} CPUs (the lab's own share included)${busy ? ': timings are noisy; the ratios of alternating runs still compare like with like, rerun on a quiet host to confirm' : ''}`);
  }
  p();
  if (r.labError) p(`${markdown ? '' : '  '}LAB PART FAILED: ${r.labError}\n`);
  if (l) {
    p(markdown ? renderMarkdown(labTable(l)) : renderText(labTable(l)));
    p();
    // What each guest saw of its devices: the cause of most differences.
    const first = (vmm: Vmm): DevRunRecord | undefined => l.records.find((x) => x.vmm === vmm && x.blk.info);
    const pre = markdown ? '- ' : '  ';
    for (const vmm of ['sparkler', 'qemu'] as Vmm[]) {
      const x = first(vmm);
      const blk = /vda-features=([01]+)/.exec(x?.blk.info ?? '')?.[1];
      const net = /eth0-features=([01]+)/.exec(x?.net.info ?? '')?.[1];
      const q = /max_segments=(\d+)/.exec(x?.blk.info ?? '')?.[1] ?? '?';
      p(
        `${pre}${vmm === 'qemu' ? 'QEMU' : 'sparkler'}'s devices as its guest negotiated them: virtio-blk ${blk ? decodeFeatures(blk, BLK_FEATURES) : '?'}, Linux max_segments=${q}` +
          (net ? `; virtio-net ${decodeFeatures(net, NET_FEATURES)}` : ''),
      );
    }
    const problems = l.records.filter((x) => x.errors.length);
    for (const x of problems) p(`${pre}PROBLEM in ${x.warmup ? 'warm-up ' : ''}${x.vmm} #${x.iter + 1}: ${x.errors.join('; ')}`);
    p();
  }
  if (r.hostBench) {
    p(markdown ? renderMarkdown(hostTable(r.hostBench)) : renderText(hostTable(r.hostBench)));
    const c = r.hostBench.concurrency;
    const busy = c.otherLabs > 0 || c.maxLoad1 > h.nproc;
    p(`${markdown ? '' : '  '}${busy ? 'WARNING: ' : ''}host runs: ${c.otherLabs} kvm-lab machine(s) seen, max load ${c.maxLoad1.toFixed(2)} on ${h.nproc} CPUs${busy ? ': the host was busy, figures are low; rerun on a quiet host' : ''}`);
    p();
  }
  const notes = [
    ...(l
      ? [
          `Guest-side figures are timed by the guest on its own clock (CLOCK_MONOTONIC of bench/guests/randread.c, which also times each dd: busybox's dd reports no time), except the guest → host TCP throughput, timed by the sink on the lab host${(l.params.netRecvMib ?? 0) > 0 && l.params.netMib > 0 ? " (host → guest is timed by the guest's sink)" : ''}. The lab emulates the CPU (TCG) underneath KVM, which inflates every cost: compare the ratios of the same run, not absolute figures.`,
          ...(l.records.some((x) => x.blk.seqReadCold || x.blk.seqWriteCold)
            ? ['"First pass (cold JIT)": each dd runs twice in the same boot; the first pass is the guest\'s first sequential read (write) of the run, during which V8 is still optimizing sparkler\'s device paths (in the lab the first ~0.5 s of I/O runs about 3× slower). QEMU has no JIT, so its two passes differ by noise only. The sequential rows with the target are the second (warm) passes, as are the request counts; no target applies to the first pass.']
            : []),
          'Negotiated features come from the guest\'s /sys/bus/virtio/devices/*/features. Without VIRTIO_BLK_F_SEG_MAX Linux allows one segment per request (max_segments=1): each request is one physically contiguous buffer, so an O_DIRECT 1 MiB dd from scattered user pages reaches the device as requests of a page or so (see "mean request size"), where QEMU\'s are as large as the guest\'s block layer makes them (max_sectors_kb, 512 KiB by default). QEMU\'s virtio-mmio devices are legacy (transport version 1) by default on microvm.',
        ]
      : []),
    ...(r.hostBench
      ? ['Host rows: "device" times processQueue alone (parse the chain, the syscall on the guest address, the used ring); the raw loop is the same syscall from JS with nothing else, so their difference is the device model\'s JS cost per request. µs/req = 1 / (req/s).']
      : []),
  ];
  for (const n of notes) p(markdown ? `- ${n}` : `  * ${n}`);
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------- main

const o = parseArgs(process.argv.slice(2));
if (o.report) printEarlierReport(o.report, o.markdown, report);
const { outDir, header } = await startRun('devices', o.out, usage, log);
const { report: _r, markdown: _m, out: _o, ...optionsToKeep } = o;
const results: Results = {
  ...header,
  options: optionsToKeep,
  lab: null,
  labError: null,
  hostBench: null,
};
const save = (): void => saveResults(outDir, results);

let failed = false;
// The host part first: right after a lab session the host is still warm and its load average high.
if (o.host) {
  log(`host: device models through the test harness (${o.hostReps} × ${o.hostSeconds} s per measurement)`);
  const watch = watchConcurrency(null);
  try {
    results.hostBench = { ...(await hostBench({ reps: o.hostReps, seconds: o.hostSeconds, log })), concurrency: watch.stop() };
    failed ||= results.hostBench.netError !== null;
  } catch (e) {
    watch.stop();
    log(`host: ${(e as Error).message}`);
    failed = true;
  }
  save();
}
if (o.lab) {
  try {
    results.lab = await lab(o, outDir);
    failed ||= results.lab.labExit !== 0;
  } catch (e) {
    results.labError = (e as Error).message;
    log(`lab: ${results.labError}`);
    failed = true;
  }
  save();
}
finishRun(outDir, results, report, o.markdown, failed);
