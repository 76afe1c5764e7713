/**
 * What every bench script's main does around its measurements: where raw
 * results go, the header of results.json (date, commit, machine), watching
 * the host for other load while measuring, and printing/saving the report
 * (or only printing an earlier run's with --report).
 */
import fs from 'node:fs';
import path from 'node:path';
import { hostRunsLinuxGuests } from '../tests/helpers/lab.js';
import { projectRoot } from '../tests/helpers/sparkler_run.js';
import { capture, machineInfo, type MachineInfo } from './boot_shared.js';

export interface Concurrency {
  /** Other kvm-lab machines (TCG QEMUs) seen on this host while measuring. */
  otherLabs: number;
  maxLoad1: number;
}

/**
 * Samples the 1-minute load and looks for other kvm-lab machines (those
 * whose --rw is not `ownRw`) every 2 s until stop().
 */
export function watchConcurrency(ownRw: string | null): { stop(): Concurrency } {
  const others = new Set<number>();
  let maxLoad1 = 0;
  const scan = (): void => {
    maxLoad1 = Math.max(maxLoad1, Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]));
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      let cmd: string;
      try {
        cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (!cmd.startsWith('qemu-system') && !cmd.includes('/qemu-system')) continue;
      if (!cmd.includes('lab_cmd=')) continue;
      if (ownRw && cmd.includes(`lab_rw=${ownRw} `)) continue;
      others.add(Number(d));
    }
  };
  scan();
  const t = setInterval(scan, 2000);
  return {
    stop() {
      clearInterval(t);
      scan();
      return { otherLabs: others.size, maxLoad1 };
    },
  };
}

async function gitCommit(): Promise<string> {
  if (process.env.BENCH_COMMIT) return process.env.BENCH_COMMIT; // e.g. when run from an exported snapshot
  const head = (await capture('git', ['-C', projectRoot, 'rev-parse', '--short', 'HEAD'])).trim();
  const dirty = (await capture('git', ['-C', projectRoot, 'status', '--porcelain'])).trim();
  return head ? `${head}${dirty ? ' + uncommitted changes' : ''}` : 'unknown';
}

/** The first fields of every results.json. */
export interface ResultsHeader {
  version: 1;
  date: string;
  commit: string;
  host: MachineInfo & { kvm: string };
}

/** --report DIR: prints the report of the run saved in DIR and exits. */
export function printEarlierReport<R>(dir: string, markdown: boolean, report: (r: R, markdown: boolean) => string): never {
  const r = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as R;
  process.stdout.write(report(r, markdown));
  process.exit(0);
}

/**
 * Creates the directory for raw results (--out, default
 * .cache/bench/<kind>-<time>) and reads the results header.
 */
export async function startRun(kind: string, out: string | null, usage: (msg: string) => never, log: (msg: string) => void): Promise<{ outDir: string; header: ResultsHeader }> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace(/-\d+Z$/, 'Z');
  const outDir = path.resolve(out ?? path.join(projectRoot, '.cache', 'bench', `${kind}-${stamp}`));
  if (/\s/.test(outDir)) usage('--out must not contain spaces (the lab shares it by path)');
  fs.mkdirSync(outDir, { recursive: true });
  log(`raw results in ${outDir}`);
  const hostInfo = await machineInfo();
  return {
    outDir,
    header: {
      version: 1,
      date: hostInfo.date,
      commit: await gitCommit(),
      host: { ...hostInfo, kvm: hostInfo.kvmModule + (hostRunsLinuxGuests() ? ' (hardware virtualization)' : '') },
    },
  };
}

/** Writes results.json. */
export function saveResults(outDir: string, results: unknown): void {
  fs.writeFileSync(path.join(outDir, 'results.json'), JSON.stringify(results, null, 1));
}

/** Writes report.txt and report.md, prints one of them, and exits (1 when something failed). */
export function finishRun<R>(outDir: string, results: R, report: (r: R, markdown: boolean) => string, markdown: boolean, failed: boolean): never {
  const text = report(results, false);
  const md = report(results, true);
  fs.writeFileSync(path.join(outDir, 'report.txt'), text);
  fs.writeFileSync(path.join(outDir, 'report.md'), md);
  process.stdout.write(markdown ? md : text);
  process.exit(failed ? 1 : 0);
}

/** The command-line side of a bench script: its error exit, its log, and a flag walker. */
export interface BenchCli {
  /** Prints `msg` and the usage text to stderr, exits 2. */
  usage(msg: string): never;
  log(msg: string): void;
  /** A number flag's value, checked (integer unless `int` is false, at least `min`). */
  num(flag: string, v: string | undefined, min: number, int?: boolean): number;
  /**
   * Calls `handle(flag, val)` for each argument (`--flag value` or
   * `--flag=value`; `val()` takes the value); -h/--help prints the usage
   * text and exits; a flag `handle` returns false for is an error.
   */
  forEachFlag(argv: readonly string[], handle: (flag: string, val: () => string | undefined) => boolean): void;
  /** The output flags every bench script takes (--markdown, --out DIR, --report DIR): true when `flag` was one. */
  outputFlag(o: OutputOptions, flag: string, val: () => string | undefined): boolean;
}

/** Where and how a bench script reports. */
export interface OutputOptions {
  markdown: boolean;
  out: string | null;
  report: string | null;
}

export function benchCli(name: string, usageText: string): BenchCli {
  const usage = (msg: string): never => {
    process.stderr.write(`${name}: ${msg}\n${usageText}`);
    process.exit(2);
  };
  return {
    usage,
    log: (msg) => void process.stderr.write(`${name}: ${msg}\n`),
    num(flag, v, min, int = true) {
      const n = Number(v);
      if (!Number.isFinite(n) || (int && !Number.isInteger(n)) || n < min) usage(`${flag} needs ${int ? 'an integer' : 'a number'} >= ${min}`);
      return n;
    },
    forEachFlag(argv, handle) {
      for (let i = 0; i < argv.length; i++) {
        const a = argv[i]!;
        const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
        const val = (): string | undefined => inline ?? argv[++i];
        if (flag === '-h' || flag === '--help') {
          process.stdout.write(usageText);
          process.exit(0);
        }
        if (!handle(flag, val)) usage(`unknown argument ${a}`);
      }
    },
    outputFlag(o, flag, val) {
      switch (flag) {
        case '--markdown': o.markdown = true; return true;
        case '--out': o.out = val() ?? usage('--out needs a directory'); return true;
        case '--report': o.report = val() ?? usage('--report needs a directory'); return true;
        default: return false;
      }
    },
  };
}
