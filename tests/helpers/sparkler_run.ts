/**
 * Runs `bin/sparkler --no-api --config-file <tmp>/vm.json [args]` as a black box:
 * writes a Firecracker-format config, captures stdout (the guest's serial
 * console), stderr (the VMM's log) and the exit status, with a timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root: the nearest ancestor of this file with sparkler's package.json (works from tests/ and dist/tests/). */
export const projectRoot: string = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));

function findProjectRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'sparkler') return dir;
      } catch {
        /* not ours; keep looking */
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`cannot find sparkler's package.json above ${start}`);
  }
}

export const sparklerBin: string = path.join(projectRoot, 'bin', 'sparkler');

/**
 * These tests need KVM. Throws (so that the test FAILS, never skips) with a clear
 * message when /dev/kvm is missing or not usable by this user.
 */
export function requireKvm(): void {
  if (!fs.existsSync('/dev/kvm')) {
    throw new Error('/dev/kvm does not exist: the KVM tests need a Linux host with KVM (kvm_intel, kvm_amd or kvm_pvm loaded)');
  }
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch (e) {
    throw new Error(`/dev/kvm exists but is not readable and writable by uid ${process.getuid?.()}: ${(e as Error).message}`);
  }
}

/** True when the host's KVM is kvm_pvm (every ordinary guest instruction is emulated; no x87/SSE). */
export function hostIsKvmPvm(): boolean {
  return fs.existsSync('/sys/module/kvm_pvm');
}

export interface VmConfig {
  /** Absolute path of the guest kernel (an ELF from buildGuest). */
  kernel: string;
  /** Absolute path of an initrd, if any. */
  initrd?: string;
  /** Firecracker `drives` entries. */
  drives?: object[];
  /** Firecracker `entropy` section. */
  entropy?: object;
  bootArgs?: string;
  vcpus?: number;
  memMib?: number;
}

export interface RunOptions extends VmConfig {
  /** Extra command-line arguments after `--no-api --config-file <file>`. */
  args?: string[];
  /** Kill the VMM (SIGTERM, then SIGKILL 2 s later) after this long. Default 30 s. */
  timeoutMs?: number;
  /** Options for node itself, before bin/sparkler (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The helper had to kill the VMM because it overran timeoutMs. */
  timedOut: boolean;
  durationMs: number;
  pid: number;
  argv: string[];
  config: unknown;
}

export interface SparklerProcess {
  child: ChildProcess;
  pid: number;
  argv: string[];
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the stream's accumulated text matches `pattern`; rejects on exit or timeout. */
  waitFor(pattern: RegExp, stream?: 'stdout' | 'stderr', timeoutMs?: number): Promise<void>;
  /** Settles when the process has exited (and its temp config is removed). */
  result: Promise<RunResult>;
}

function buildConfig(cfg: VmConfig): object {
  return {
    'boot-source': {
      kernel_image_path: cfg.kernel,
      ...(cfg.initrd ? { initrd_path: cfg.initrd } : {}),
      boot_args: cfg.bootArgs ?? 'console=ttyS0',
    },
    'drives': cfg.drives ?? [],
    'machine-config': {
      vcpu_count: cfg.vcpus ?? 1,
      mem_size_mib: cfg.memMib ?? 64,
    },
    ...(cfg.entropy ? { entropy: cfg.entropy } : {}),
  };
}

/** How to execute bin/sparkler: with this node if it is a node script, directly otherwise. */
function commandFor(args: string[], nodeArgs: string[] = []): { file: string; argv: string[] } {
  if (!fs.existsSync(sparklerBin)) {
    throw new Error(`${sparklerBin} does not exist (is the VMM built? run \`npx tsc -p .\` in ${projectRoot})`);
  }
  const head = fs.readFileSync(sparklerBin, 'utf8').slice(0, 200);
  const firstLine = head.split('\n', 1)[0] ?? '';
  if (!firstLine.startsWith('#!') || /\bnode\b/.test(firstLine)) {
    return { file: process.execPath, argv: [...nodeArgs, sparklerBin, ...args] };
  }
  if (nodeArgs.length > 0) throw new Error(`${sparklerBin} is not a node script: it takes no node options`);
  return { file: sparklerBin, argv: args };
}

/** Starts the VMM; see runSparkler for the common case. */
export function startSparkler(opts: RunOptions): SparklerProcess {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-test-'));
  const config = buildConfig(opts);
  const configPath = path.join(dir, 'vm.json');
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  const args = ['--no-api', '--config-file', configPath, ...(opts.args ?? [])];
  const { file, argv } = commandFor(args, opts.nodeArgs);
  const started = performance.now();
  // stdin is a pipe that stays open: the VMM sees neither a terminal nor EOF.
  const child = spawn(file, argv, { cwd: projectRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  if (child.pid === undefined) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start ${file} ${argv.join(' ')}`);
  }
  const pid = child.pid;
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  const notify = () => {
    for (const w of waiters.splice(0)) w();
  };
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    out += d;
    notify();
  });
  child.stderr!.on('data', (d: string) => {
    err += d;
    notify();
  });
  child.stdin!.on('error', () => {}); // EPIPE when the VMM exits first

  let exited = false;
  let timedOut = false;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let killTimer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
    killTimer = setTimeout(() => child.kill('SIGKILL'), 2000);
  }, timeoutMs);

  const result = new Promise<RunResult>((resolve, reject) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    // 'close' fires after the exit and after stdout/stderr are drained.
    child.on('close', (code, signal) => {
      exited = true;
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      child.stdin!.destroy();
      notify();
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({
        code,
        signal,
        stdout: out,
        stderr: err,
        timedOut,
        durationMs: performance.now() - started,
        pid,
        argv: [file, ...argv],
        config,
      });
    });
  });

  const waitFor = (pattern: RegExp, stream: 'stdout' | 'stderr' = 'stdout', ms = 20_000): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      let done = false;
      const deadline = setTimeout(() => {
        done = true;
        reject(new Error(`timed out after ${ms} ms waiting for ${pattern} on ${stream}\nstdout:\n${out}\nstderr:\n${err}`));
      }, ms);
      const check = () => {
        if (done) return;
        if (pattern.test(stream === 'stdout' ? out : err)) {
          done = true;
          clearTimeout(deadline);
          resolve();
        } else if (exited) {
          done = true;
          clearTimeout(deadline);
          reject(new Error(`sparkler exited before ${pattern} appeared on ${stream}\nstdout:\n${out}\nstderr:\n${err}`));
        } else {
          waiters.push(check);
        }
      };
      check();
    });

  return { child, pid, argv: [file, ...argv], stdout: () => out, stderr: () => err, waitFor, result };
}

/** Runs the VMM to completion (or timeout) and returns what it printed and how it ended. */
export async function runSparkler(opts: RunOptions): Promise<RunResult> {
  return startSparkler(opts).result;
}

/** A readable account of a run, for assertion messages. */
export function describeRun(r: RunResult): string {
  const how = r.timedOut
    ? `TIMED OUT (killed by the test after the timeout; then code=${r.code} signal=${r.signal})`
    : `exit code=${r.code} signal=${r.signal}`;
  return [
    `command: ${r.argv.join(' ')}`,
    `config: ${JSON.stringify(r.config)}`,
    `${how} after ${Math.round(r.durationMs)} ms`,
    '--- stdout (guest serial) ---',
    r.stdout.trimEnd(),
    '--- stderr (VMM log) ---',
    r.stderr.trimEnd(),
    '---',
  ].join('\n');
}

/** A JavaScript stack trace in the VMM's output (an uncaught exception, not a clean exit). */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+(\(.*:\d+:\d+\)|:\d+:\d+)$/m.test(text);
}

/** Pids of all descendants of `pid` (from /proc), for leak checks. */
export function descendantPids(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid ...; comm may contain spaces and parentheses.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(name), Number(rest[1]));
    } catch {
      /* raced with an exit */
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const [child, ppid] of parent) {
      if (ppid === p) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

/** Whether a process with this pid still exists (zombies count as gone). */
export function processAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
