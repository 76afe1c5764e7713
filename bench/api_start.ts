/**
 * bench/api-start: how fast `bin/sparkler --api-sock PATH` is ready to serve
 * the API, and what it costs (run it through the bench/api-start script).
 *
 * Per round (rounds interleave the subjects, so load drift hits all alike):
 *  - sparkler: spawn `bin/sparkler --api-sock <tmp>` and poll-connect the
 *    socket every 0.2 ms (one net.connect attempt, then a 0.2 ms Atomics.wait
 *    sleep: a spinning poller would steal a CPU from the child on small
 *    hosts). At the first accepted connection: wall time since spawn, the
 *    process's CPU time (/proc/<pid>/task/<tid>/schedstat summed over the
 *    threads, ns resolution; /proc/<pid>/stat utime+stime, clock ticks, as a
 *    cross-check), its thread count, RssAnon/RssFile from /proc/<pid>/status;
 *    again RssAnon/RssFile after --idle-ms of idling; then SIGTERM and the
 *    time to exit (which must be 0, with the socket removed).
 *  - reference: `node -e "require('net').createServer().listen(p)"`, the
 *    same measurements at accept (the floor for any Node process serving a
 *    socket).
 *  - reference: `node -e 0`, spawn -> exit.
 * The VMM's own process_startup_time_cpu_us is not used: sparkler reports it
 * only with --start-time-cpu-us and only at InstanceStart.
 *
 * The children run without NODE_EXTRA_CA_CERTS (unless --keep-env): Node reads
 * that bundle eagerly at start-up (~30 ms here), and a VMM does not need it.
 * When it is set, `node -e 0` is also measured with it, to show its cost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const USAGE = `usage: bench/api-start [options]
  --runs N       measured rounds (default 50)
  --warmups N    unmeasured rounds first (default 3)
  --idle-ms N    idle time before the second memory sample (default 1000)
  --bin PATH     the sparkler launcher to measure (default <root>/bin/sparkler)
  --keep-env     keep NODE_EXTRA_CA_CERTS in the children's environment
  --markdown     print the report as markdown
  --json FILE    also write the raw samples to FILE
  --no-build     (bench/api-start script) do not run tsc first
`;

const TARGET_WALL_MS = 50;
const FC_WALL_MS = 12;
const FC_CPU_MS = 8;
const POLL_US = 200;
const ACCEPT_TIMEOUT_MS = 10_000;

interface Options {
  runs: number;
  warmups: number;
  idleMs: number;
  bin: string;
  keepEnv: boolean;
  markdown: boolean;
  json: string | null;
}

function projectRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    try {
      if ((JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'sparkler') return dir;
    } catch {
      /* keep looking */
    }
    if (path.dirname(dir) === dir) throw new Error("cannot find sparkler's package.json");
  }
}

function parseOptions(argv: string[]): Options {
  const o: Options = { runs: 50, warmups: 3, idleMs: 1000, bin: path.join(projectRoot(), 'bin', 'sparkler'), keepEnv: false, markdown: false, json: null };
  const num = (i: number, name: string): number => {
    const v = Number(argv[i]);
    if (argv[i] === undefined || !Number.isInteger(v) || v < 0) die(`${name} needs a non-negative integer`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '--runs': o.runs = Math.max(1, num(++i, a)); break;
      case '--warmups': o.warmups = num(++i, a); break;
      case '--idle-ms': o.idleMs = num(++i, a); break;
      case '--bin': o.bin = path.resolve(argv[++i] ?? die('--bin needs a path')); break;
      case '--keep-env': o.keepEnv = true; break;
      case '--markdown': o.markdown = true; break;
      case '--json': o.json = argv[++i] ?? die('--json needs a file'); break;
      case '--no-build': break;
      case '-h': case '--help': process.stdout.write(USAGE); process.exit(0); break;
      default: die(`unknown option ${a}\n${USAGE}`);
    }
  }
  return o;
}

function die(msg: string): never {
  process.stderr.write(`bench/api-start: ${msg}\n`);
  process.exit(2);
}

const log = (m: string): void => void process.stderr.write(`${m}\n`);

// ---------------------------------------------------------------- /proc

const CLK_TCK = 100; // USER_HZ; Linux reports utime/stime in these ticks on every architecture.

/** utime+stime of the whole process, ms (10 ms resolution). */
function statCpuMs(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // Fields after "pid (comm) ": state=0 … utime=11 stime=12.
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/** CPU time of each live thread from schedstat (ns, exact), ms; [all threads, main thread, threads]. */
function schedCpuMs(pid: number): [number, number, number] {
  let sum = 0;
  let main = 0;
  let n = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const ns = Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      sum += ns;
      if (tid === String(pid)) main = ns;
      n++;
    } catch {
      /* thread ended meanwhile */
    }
  }
  return [sum / 1e6, main / 1e6, n];
}

interface Mem {
  rssAnonKiB: number;
  rssFileKiB: number;
}

function readMem(pid: number): Mem {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k: string): number => Number(new RegExp(`^${k}:\\s*(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rssAnonKiB: kib('RssAnon'), rssFileKiB: kib('RssFile') };
}

// ---------------------------------------------------------------- timing

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the thread for us microseconds (no event loop turn, no CPU spent). */
const sleepUs = (us: number): void => void Atomics.wait(sleepCell, 0, 0, us / 1000);

function tryConnect(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(sock);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => { c.destroy(); resolve(false); });
  });
}

/** Polls the socket until a connection is accepted; resolves with the time it was (ms, nowMs clock), or null if the child ended or time ran out. */
async function waitAccept(sock: string, child: ChildProcess, t0: number): Promise<number | null> {
  for (;;) {
    if (await tryConnect(sock)) return nowMs();
    if (child.exitCode !== null || child.signalCode !== null || nowMs() - t0 > ACCEPT_TIMEOUT_MS) return null;
    sleepUs(POLL_US);
  }
}

function waitExit(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- subjects

interface ServeSample {
  wallMs: number;
  spawnMs: number;
  cpuMs: number;
  mainCpuMs: number;
  statCpuMs: number;
  threads: number;
  atAccept: Mem;
  afterIdle: Mem | null;
  stopMs: number | null;
}

interface Failure { subject: string; what: string }

/** Starts a process that serves `sock`, measures it at accept (and after idleMs), then SIGTERMs it. */
async function measureServer(
  subject: string,
  cmd: string,
  args: string[],
  sock: string,
  env: NodeJS.ProcessEnv,
  idleMs: number | null,
  expectCleanExit: boolean,
  failures: Failure[],
): Promise<ServeSample | null> {
  try { fs.unlinkSync(sock); } catch { /* absent */ }
  let stderr = '';
  const t0 = nowMs();
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const spawnMs = nowMs() - t0;
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
  child.on('error', (e) => { stderr += `spawn error: ${e.message}`; });
  const tAccept = await waitAccept(sock, child, t0);
  const pid = child.pid;
  if (tAccept === null || pid === undefined) {
    child.kill('SIGKILL');
    await waitExit(child);
    failures.push({ subject, what: `socket never accepted (exit ${child.exitCode ?? child.signalCode}): ${stderr.trim().split('\n').pop() ?? ''}` });
    return null;
  }
  const sCpu = statCpuMs(pid);
  const [cpuMs, mainCpuMs, threads] = schedCpuMs(pid);
  const atAccept = readMem(pid);
  let afterIdle: Mem | null = null;
  if (idleMs !== null) {
    await delay(idleMs);
    afterIdle = readMem(pid);
  }
  const tStop = nowMs();
  child.kill('SIGTERM');
  const { code, signal } = await waitExit(child);
  const stopMs = nowMs() - tStop;
  if (expectCleanExit) {
    if (code !== 0) failures.push({ subject, what: `SIGTERM: exit ${code ?? signal}, expected 0: ${stderr.trim().split('\n').pop() ?? ''}` });
    if (fs.existsSync(sock)) failures.push({ subject, what: 'the socket file was left behind after SIGTERM' });
  }
  try { fs.unlinkSync(sock); } catch { /* removed by the child */ }
  return { wallMs: tAccept - t0, spawnMs, cpuMs, mainCpuMs, statCpuMs: sCpu, threads, atAccept, afterIdle, stopMs: expectCleanExit ? stopMs : null };
}

async function measureExit(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number | null> {
  const t0 = nowMs();
  const child = spawn(cmd, args, { env, stdio: 'ignore' });
  const { code } = await waitExit(child);
  return code === 0 ? nowMs() - t0 : null;
}

// ---------------------------------------------------------------- statistics and report

/** Percentile with linear interpolation between the closest ranks (numpy's default). */
function pct(xs: readonly number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const r = (p / 100) * (s.length - 1);
  const lo = Math.floor(r);
  const hi = Math.ceil(r);
  return s[lo]! + (s[hi]! - s[lo]!) * (r - lo);
}

interface Machine {
  nproc: number;
  cpuModel: string;
  kernel: string;
  date: string;
  node: string;
  load: string;
}

function machine(): Machine {
  let cpuModel = '?';
  try {
    cpuModel = /^model name\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? '?';
  } catch { /* no /proc */ }
  return {
    nproc: os.availableParallelism(),
    cpuModel,
    kernel: `${os.release()} (${os.machine()})`,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    node: `${process.version} (${process.execPath})`,
    load: '',
  };
}

interface Results {
  machine: Machine;
  options: Omit<Options, 'markdown' | 'json'>;
  extraCaCerts: string | null;
  sparkler: ServeSample[];
  nodeServer: ServeSample[];
  nodeBare: number[];
  nodeBareInherited: number[];
  loads: number[];
  failures: Failure[];
}

type Row = [string, number | null, number | null, number | null, string];

function stats(xs: number[]): [number | null, number | null, number | null] {
  return [pct(xs, 50), pct(xs, 10), pct(xs, 90)];
}

function rows(r: Results): Row[] {
  const s = r.sparkler;
  const n = r.nodeServer;
  const mib = (k: number): number => k / 1024;
  const out: Row[] = [
    ['sparkler: spawn → API socket accepts (ms)', ...stats(s.map((x) => x.wallMs)), `≤ ${TARGET_WALL_MS} (Firecracker ~${FC_WALL_MS})`],
    ['sparkler: CPU time at accept, all threads (ms)', ...stats(s.map((x) => x.cpuMs)), `Firecracker ~${FC_CPU_MS}`],
    ['sparkler: CPU at accept, main thread only (ms)', ...stats(s.map((x) => x.mainCpuMs)), ''],
    ['sparkler: CPU at accept, /proc stat utime+stime (ms, 10 ms ticks)', ...stats(s.map((x) => x.statCpuMs)), ''],
    ['sparkler: threads at accept', ...stats(s.map((x) => x.threads)), ''],
    ['sparkler: RssAnon at accept (MiB)', ...stats(s.map((x) => mib(x.atAccept.rssAnonKiB))), ''],
    ['sparkler: RssFile at accept (MiB)', ...stats(s.map((x) => mib(x.atAccept.rssFileKiB))), ''],
    [`sparkler: RssAnon after ${r.options.idleMs} ms idle (MiB)`, ...stats(s.flatMap((x) => (x.afterIdle ? [mib(x.afterIdle.rssAnonKiB)] : []))), ''],
    [`sparkler: RssFile after ${r.options.idleMs} ms idle (MiB)`, ...stats(s.flatMap((x) => (x.afterIdle ? [mib(x.afterIdle.rssFileKiB)] : []))), ''],
    ['sparkler: SIGTERM → exit (ms)', ...stats(s.flatMap((x) => (x.stopMs !== null ? [x.stopMs] : []))), ''],
    ['ref: `node -e 0` spawn → exit (ms)', ...stats(r.nodeBare), ''],
  ];
  if (r.extraCaCerts !== null && r.nodeBareInherited.length > 0) {
    out.push(['ref: `node -e 0` with NODE_EXTRA_CA_CERTS (ms)', ...stats(r.nodeBareInherited), '']);
  }
  out.push(
    ['ref: minimal Node server spawn → accepts (ms)', ...stats(n.map((x) => x.wallMs)), ''],
    ['ref: minimal Node server CPU at accept (ms)', ...stats(n.map((x) => x.cpuMs)), ''],
    ['ref: minimal Node server threads at accept', ...stats(n.map((x) => x.threads)), ''],
    ['ref: minimal Node server RssAnon at accept (MiB)', ...stats(n.map((x) => mib(x.atAccept.rssAnonKiB))), ''],
    ['ref: minimal Node server RssFile at accept (MiB)', ...stats(n.map((x) => mib(x.atAccept.rssFileKiB))), ''],
  );
  return out;
}

function fmt(v: number | null): string {
  if (v === null || Number.isNaN(v)) return '–';
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function report(r: Results, markdown: boolean): string {
  const lines: string[] = [];
  const p = (s = ''): void => void lines.push(s);
  const m = r.machine;
  const nS = r.sparkler.length;
  p(markdown ? `### sparkler API start-up benchmark (${m.date})` : `sparkler API start-up benchmark — ${m.date}`);
  p();
  const kv: [string, string][] = [
    ['machine', `${m.nproc} CPUs (nproc), ${m.cpuModel}`],
    ['kernel', m.kernel],
    ['node', m.node],
    ['load', m.load],
    ['runs', `${r.options.runs} measured rounds after ${r.options.warmups} warm-up round(s); ${nS} sparkler, ${r.nodeServer.length} Node-server, ${r.nodeBare.length} \`node -e 0\` samples ok`],
    ['subject', `${r.options.bin} --api-sock <tmp>/api.sock`],
    ['env', r.extraCaCerts === null ? 'inherited (no NODE_EXTRA_CA_CERTS)' : r.options.keepEnv ? `inherited, NODE_EXTRA_CA_CERTS=${r.extraCaCerts} kept` : `inherited minus NODE_EXTRA_CA_CERTS (${r.extraCaCerts}); see the row measuring it`],
  ];
  for (const [k, v] of kv) p(markdown ? `- **${k}**: ${v}` : `  ${k.padEnd(8)} ${v}`);
  p();
  const header = ['measurement', 'median', 'p10', 'p90', 'target'];
  const body = rows(r).map(([name, a, b, c, t]) => [name, fmt(a), fmt(b), fmt(c), t]);
  if (markdown) {
    p(`| ${header.join(' | ')} |`);
    p(`|${header.map((_, i) => (i === 0 || i === 4 ? ' --- ' : ' ---: ')).join('|')}|`);
    for (const b of body) p(`| ${b.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  } else {
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
    const line = (cells: string[]): string =>
      cells.map((c, i) => (i >= 1 && i <= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
    p(line(header));
    p(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const b of body) p(line(b));
  }
  p();
  const wall = pct(r.sparkler.map((x) => x.wallMs), 50);
  const cpu = pct(r.sparkler.map((x) => x.cpuMs), 50);
  const floor = pct(r.nodeServer.map((x) => x.wallMs), 50);
  const floorCpu = pct(r.nodeServer.map((x) => x.cpuMs), 50);
  const notes: string[] = [];
  if (wall !== null) {
    notes.push(
      `start-up (median ${fmt(wall)} ms) ${wall <= TARGET_WALL_MS ? 'MEETS' : 'MISSES'} the ≤ ${TARGET_WALL_MS} ms target; ` +
        `${(wall / FC_WALL_MS).toFixed(1)}× Firecracker's ~${FC_WALL_MS} ms` +
        (floor !== null ? `; ${fmt(wall - floor)} ms above a minimal Node process serving a socket (${fmt(floor)} ms)` : ''),
    );
  }
  if (cpu !== null) {
    notes.push(
      `start-up CPU (median ${fmt(cpu)} ms, all threads) is ${(cpu / FC_CPU_MS).toFixed(1)}× Firecracker's ~${FC_CPU_MS} ms` +
        (floorCpu !== null ? `; ${fmt(cpu - floorCpu)} ms above the minimal Node server (${fmt(floorCpu)} ms)` : ''),
    );
  }
  notes.push('wall: spawn() call → first accepted connect(), polled every 0.2 ms; CPU: /proc/<pid>/task/*/schedstat read right after the accept');
  notes.push('private memory: RssAnon (heap, stacks, JIT code) is what each extra VMM costs; RssFile is mostly the node binary and shared libraries, shared between processes');
  const maxLoad = Math.max(...r.loads);
  if (maxLoad > m.nproc) notes.push(`WARNING: the 1-min load average reached ${maxLoad.toFixed(2)} on ${m.nproc} CPUs during the run: other work competed for the CPUs, times are inflated`);
  const counts = new Map<string, number>();
  for (const f of r.failures) counts.set(`${f.subject}: ${f.what}`, (counts.get(`${f.subject}: ${f.what}`) ?? 0) + 1);
  for (const [f, k] of counts) notes.push(`FAILED ${k}×: ${f}`);
  for (const n of notes) p(markdown ? `- ${n}` : `  ${n}`);
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (!fs.existsSync(o.bin)) die(`${o.bin} does not exist`);
  const extraCaCerts = process.env.NODE_EXTRA_CA_CERTS ?? null;
  const inherited = { ...process.env };
  const env = { ...process.env };
  if (!o.keepEnv) delete env.NODE_EXTRA_CA_CERTS;
  const node = process.execPath;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-api-start-'));
  const sock = path.join(dir, 'api.sock');
  const refSock = path.join(dir, 'ref.sock');
  const results: Results = {
    machine: machine(),
    options: { runs: o.runs, warmups: o.warmups, idleMs: o.idleMs, bin: o.bin, keepEnv: o.keepEnv },
    extraCaCerts,
    sparkler: [],
    nodeServer: [],
    nodeBare: [],
    nodeBareInherited: [],
    loads: [os.loadavg()[0]!],
    failures: [],
  };
  const load0 = os.loadavg();
  const stopAll = (): void => {
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
  };
  process.once('SIGINT', () => { stopAll(); process.exit(130); });
  log(`bench/api-start: ${o.warmups} warm-up + ${o.runs} rounds (sparkler, minimal Node server, node -e 0), ~${Math.ceil(((o.runs + o.warmups) * (o.idleMs + 400)) / 1000)} s`);
  try {
    for (let i = -o.warmups; i < o.runs; i++) {
      const measured = i >= 0;
      const failures = measured ? results.failures : [];
      const s = await measureServer('sparkler', o.bin, ['--api-sock', sock], sock, env, measured ? o.idleMs : null, true, failures);
      const n = await measureServer('node server', node, ['-e', "require('net').createServer().listen(process.argv[1])", refSock], refSock, env, null, false, failures);
      const b = await measureExit(node, ['-e', '0'], env);
      const bi = extraCaCerts !== null && !o.keepEnv ? await measureExit(node, ['-e', '0'], inherited) : null;
      if (!measured) continue;
      if (s) results.sparkler.push(s);
      if (n) results.nodeServer.push(n);
      if (b !== null) results.nodeBare.push(b);
      if (bi !== null) results.nodeBareInherited.push(bi);
      results.loads.push(os.loadavg()[0]!);
      if ((i + 1) % 10 === 0) log(`  ${i + 1}/${o.runs}: sparkler median so far ${fmt(pct(results.sparkler.map((x) => x.wallMs), 50))} ms`);
    }
  } finally {
    stopAll();
  }
  const load1 = os.loadavg();
  results.machine.load = `1-min load average ${load0[0]!.toFixed(2)} at start, ${load1[0]!.toFixed(2)} at end, max ${Math.max(...results.loads).toFixed(2)}`;
  if (o.json) fs.writeFileSync(o.json, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(report(results, o.markdown));
  if (results.sparkler.length === 0) process.exit(1);
}

main().catch((e: unknown) => die(e instanceof Error ? (e.stack ?? e.message) : String(e)));
