/**
 * Shared pieces of bench/boot: the record formats written by the in-lab runner
 * (bench/boot_lab.ts) and read by the report (bench/boot.ts), process
 * measurements from /proc, and small statistics.
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

/** What the outer script asks the in-lab runner to do. */
export interface LabParams {
  kernel: string;
  initrd: string;
  /** The sparkler guest's command line; QEMU gets it with reboot=k replaced by reboot=t. */
  cmdline: string;
  qemuCmdline: string;
  /** QEMU's -M value (default microvm,acpi=on). */
  qemuMachine: string;
  memMib: number;
  /** vCPU counts, one alternating pass each. */
  vcpus: number[];
  /** Boots per VMM and pass. */
  runs: number;
  /** Untimed boots of each VMM before the first pass. */
  warmups: number;
  /** Absolute path of bin/sparkler and of the node that runs it. */
  sparklerBin: string;
  node: string;
  qemu: string;
  /** Per-boot limit (s); the boot is killed and recorded as failed beyond it. */
  bootTimeoutS: number;
  /** Writable scratch directory (inside --rw) for the VM configs. */
  workDir: string;
}

export interface MemSample {
  /** ms after spawn when the sample was taken. */
  atMs: number;
  /** /proc/<pid>/status fields, KiB. */
  vmRssKiB: number;
  rssAnonKiB: number;
  rssFileKiB: number;
  rssShmemKiB: number;
  /** Sum of Anonymous over /proc/<pid>/smaps (≈ RssAnon, read a moment later). */
  smapsAnonKiB: number;
  /** The anonymous mapping that holds guest RAM (see findGuestRamVma), or null if none matched. */
  guestRam: GuestRamVma | null;
  /** smaps Anonymous minus the guest RAM mapping's: the VMM's own private memory. */
  beyondGuestKiB: number | null;
  /** The largest other anonymous mappings (where the VMM's own memory is), for follow-up work. */
  topOtherAnon: Array<{ range: string; perms: string; path: string; sizeKiB: number; anonKiB: number }>;
}

export interface GuestRamVma {
  range: string;
  flags: string;
  sizeKiB: number;
  /** Pages of the mapping the guest (or the VMM loading it) has touched. */
  anonKiB: number;
  anonHugeKiB: number;
}

export interface BootRecord {
  vmm: 'sparkler' | 'qemu';
  vcpus: number;
  iter: number;
  /** A warm-up boot (file caches, page cache of the binaries): reported apart, not in the medians. */
  warmup: boolean;
  argv: string[];
  /** ms from spawn to the console line SPARKLER-GUEST-UP (null: never seen). */
  initMs: number | null;
  /** ms from spawn to process exit. */
  exitMs: number | null;
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  /** sparkler only: the VMM's own Guest-boot-time (process start -> 123 at 0xc0000000), µs. */
  bootTimerUs: number | null;
  mem: MemSample | null;
  memError: string | null;
  /** The guest reported these after SPARKLER-GUEST-UP. */
  guestCpus: number | null;
  guestMemTotalKiB: number | null;
  /** The guest kernel's printk clock at its last timestamped console line (reboot), s; with `quiet` only a few lines carry one. */
  guestClockS: number | null;
  consoleTail: string;
  stderrTail: string;
}

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  kernel: string;
  date: string;
  node: string;
  qemu: string;
  memTotalMiB: number;
  thp: string;
  kvmModule: string;
}

export interface LabResults {
  params: LabParams;
  machine: MachineInfo;
  startedAt: string;
  finishedAt: string | null;
  records: BootRecord[];
}

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function minMax(xs: readonly number[]): [number, number] | null {
  if (xs.length === 0) return null;
  return [Math.min(...xs), Math.max(...xs)];
}

/** Numeric kB fields of /proc/<pid>/status. */
export function readStatus(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+)(?: kB)?$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

export interface Vma {
  range: string;
  perms: string;
  path: string;
  sizeKiB: number;
  anonKiB: number;
  anonHugeKiB: number;
  flags: string;
}

export function readSmaps(pid: number): Vma[] {
  const vmas: Vma[] = [];
  let cur: Vma | undefined;
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const h = /^([0-9a-f]+-[0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (h) {
      cur = { range: h[1]!, perms: h[2]!, path: h[3] ?? '', sizeKiB: 0, anonKiB: 0, anonHugeKiB: 0, flags: '' };
      vmas.push(cur);
      continue;
    }
    if (!cur) continue;
    const f = /^(\w+):\s+(.*?)(?: kB)?$/.exec(line);
    if (!f) continue;
    if (f[1] === 'Size') cur.sizeKiB = Number(f[2]);
    else if (f[1] === 'Anonymous') cur.anonKiB = Number(f[2]);
    else if (f[1] === 'AnonHugePages') cur.anonHugeKiB = Number(f[2]);
    else if (f[1] === 'VmFlags') cur.flags = f[2]!.trim();
  }
  return vmas;
}

/**
 * Guest RAM is one private anonymous read-write mapping of the guest's size in
 * both VMMs (sparkler: mmap(MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE); QEMU:
 * memory-backend-ram). The kernel may merge it with an adjacent anonymous
 * mapping of the same flags (a few hundred KiB), so accept up to 16 MiB more
 * and take the closest in size. Its Anonymous pages are guest RAM that the
 * guest (or the VMM loading kernel and initrd into it) has touched.
 */
export function findGuestRamVma(vmas: readonly Vma[], memMib: number): GuestRamVma | null {
  const want = memMib * 1024;
  const cands = vmas
    .filter((v) => v.perms.startsWith('rw') && v.perms[3] === 'p' && v.path === '' && v.sizeKiB >= want && v.sizeKiB <= want + 16384)
    .sort((a, b) => a.sizeKiB - b.sizeKiB);
  const v = cands[0];
  return v ? { range: v.range, flags: v.flags, sizeKiB: v.sizeKiB, anonKiB: v.anonKiB, anonHugeKiB: v.anonHugeKiB } : null;
}

/**
 * Samples a running VMM's private memory; throws if the process is gone.
 * RssAnon comes from /proc/<pid>/status (read first, closest to the moment);
 * the split into guest RAM and the rest from one read of /proc/<pid>/smaps
 * (exact, and consistent with itself: status counters are per-thread batched).
 */
export function sampleMemory(pid: number, memMib: number, atMs: number): MemSample {
  const st = readStatus(pid);
  const vmas = readSmaps(pid);
  const guestRam = findGuestRamVma(vmas, memMib);
  const smapsAnonKiB = vmas.reduce((n, v) => n + v.anonKiB, 0);
  const topOtherAnon = vmas
    .filter((v) => v.range !== guestRam?.range && v.anonKiB > 0)
    .sort((a, b) => b.anonKiB - a.anonKiB)
    .slice(0, 10)
    .map(({ range, perms, path, sizeKiB, anonKiB }) => ({ range, perms, path, sizeKiB, anonKiB }));
  return {
    atMs,
    vmRssKiB: st.VmRSS ?? NaN,
    rssAnonKiB: st.RssAnon ?? NaN,
    rssFileKiB: st.RssFile ?? NaN,
    rssShmemKiB: st.RssShmem ?? NaN,
    smapsAnonKiB,
    guestRam,
    beyondGuestKiB: guestRam ? smapsAnonKiB - guestRam.anonKiB : null,
    topOtherAnon,
  };
}

function firstLine(file: string, re: RegExp): string {
  try {
    const m = re.exec(fs.readFileSync(file, 'utf8'));
    return m?.[1]?.trim() ?? '?';
  } catch {
    return '?';
  }
}

/** Runs a command and returns its stdout ('' on any failure). */
export function capture(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    try {
      const c = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'ignore'] });
      c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      c.on('error', () => resolve(''));
      c.on('close', () => resolve(out));
    } catch {
      resolve('');
    }
  });
}

export async function machineInfo(qemu = 'qemu-system-x86_64'): Promise<MachineInfo> {
  const qv = (await capture(qemu, ['--version'])).split('\n', 1)[0] ?? '';
  const thpRaw = firstLine('/sys/kernel/mm/transparent_hugepage/enabled', /\[(\w+)\]/);
  const kvmModule = ['kvm_intel', 'kvm_amd', 'kvm_pvm'].find((m) => fs.existsSync(`/sys/module/${m}`)) ?? 'none';
  return {
    nproc: os.availableParallelism(),
    cpuModel: firstLine('/proc/cpuinfo', /^model name\s*:(.*)$/m),
    kernel: `${os.release()} (${os.machine()})`,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    node: process.version,
    qemu: qv.replace(/^QEMU emulator version /, '') || 'not found',
    memTotalMiB: Math.round(os.totalmem() / 1048576),
    thp: thpRaw,
    kvmModule,
  };
}

/** Monotonic clock in ms (fractional). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export const GUEST_UP = 'SPARKLER-GUEST-UP';

/** Parses the VMM log's `Guest-boot-time = NNN us ...` line. */
export function parseBootTimerUs(log: string): number | null {
  const m = /Guest-boot-time =\s*(\d+) us/.exec(log);
  return m ? Number(m[1]) : null;
}

/** How one VMM process ran (runVmm). */
export interface VmmRun {
  out: string;
  err: string;
  code: number | null;
  signal: string | null;
  /** spawn → exit, ms; null when it never exited. */
  exitMs: number | null;
  timedOut: boolean;
}

/**
 * Runs one VMM process to its end, collecting its stdout and stderr (latin1),
 * killing it after `timeoutS`. stdin is a pipe that stays open (neither a
 * terminal nor EOF), as the project's tests do. `onOut(out, pid, atMs)` sees
 * the whole stdout so far after each chunk (for console-triggered actions:
 * memory samples, host-side senders).
 */
export function runVmm(
  file: string, args: string[], timeoutS: number, onOut?: (out: string, pid: number | undefined, atMs: number) => void, env?: NodeJS.ProcessEnv,
): Promise<VmmRun> {
  return new Promise((resolve) => {
    const r: VmmRun = { out: '', err: '', code: null, signal: null, exitMs: null, timedOut: false };
    const t0 = nowMs();
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
    child.stdin!.on('error', () => {});
    child.stdout!.setEncoding('latin1');
    child.stderr!.setEncoding('latin1');
    child.stdout!.on('data', (d: string) => {
      r.out += d;
      onOut?.(r.out, child.pid, nowMs() - t0);
    });
    child.stderr!.on('data', (d: string) => (r.err += d));
    // On timeout, SIGTERM first: sparkler then stops the VM and flushes its metrics (what a hang leaves to look at).
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      r.timedOut = true;
      child.kill('SIGTERM');
      killer = setTimeout(() => child.kill('SIGKILL'), 3000);
    }, timeoutS * 1000);
    child.on('exit', () => (r.exitMs = nowMs() - t0));
    let done = false;
    const finish = (code: number | null, signal: string | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(killer);
      child.stdin!.destroy();
      r.code = code;
      r.signal = signal;
      resolve(r);
    };
    child.on('error', (e) => {
      r.err += `spawn failed: ${e.message}\n`;
      finish(null, null);
    });
    child.on('close', (code, signal) => finish(code, signal));
  });
}

/** sampleMemory of a running VMM, or why it could not be taken. */
export function trySampleMemory(pid: number | undefined, memMib: number, atMs: number): { mem: MemSample | null; memError: string | null } {
  try {
    if (pid === undefined) throw new Error('no pid');
    return { mem: sampleMemory(pid, memMib, atMs), memError: null };
  } catch (e) {
    return { mem: null, memError: (e as Error).message };
  }
}
