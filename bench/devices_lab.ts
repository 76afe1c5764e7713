/**
 * The in-lab half of bench/devices: boots the Linux guest with
 * `sparkler.cmd=devbench` alternately under sparkler and QEMU microvm, each
 * with the same scratch disk (virtio-blk, cache unsafe) and the same TAP
 * (virtio-net). The guest times dd (O_DIRECT 1 MiB sequential read and
 * write, each twice: a first pass while sparkler's JIT warms up, then the
 * timed pass) and randread (O_DIRECT 4 KiB random reads, queue depth 1) on
 * its own clock, then sends a fixed amount over TCP to randread's sink on
 * the TAP's host side, which times it on the host's clock. Last, host →
 * guest: the guest starts randread's sink and says "netbench recv-ready" on
 * its console; this runner, reading the console, then starts `randread send`
 * to the guest, and the guest's sink times the transfer on the guest's clock.
 * Runs as root where stock Linux guests boot (inside tools/kvm-lab/run
 * here); writes its results (JSON) after every boot.
 *   node dist/bench/devices_lab.js <params.json> <results.json>
 */
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { machineInfo, runVmm, trySampleMemory } from './boot_shared.js';
import { guestErrors, parseGuest, parseSend, parseSink, type DevLabParams, type DevLabResults, type DevRunRecord, type Vmm } from './devices_shared.js';

const [paramsFile, resultsFile] = process.argv.slice(2);
if (!paramsFile || !resultsFile) {
  process.stderr.write('usage: devices_lab.js <params.json> <results.json>\n');
  process.exit(2);
}
const p = JSON.parse(fs.readFileSync(paramsFile, 'utf8')) as DevLabParams;
fs.mkdirSync(p.workDir, { recursive: true });
const log = (msg: string): void => void process.stderr.write(`devices-lab: ${msg}\n`);

const results: DevLabResults = {
  params: p,
  machine: await machineInfo(p.qemu),
  startedAt: new Date().toISOString(),
  finishedAt: null,
  setup: [],
  records: [],
};

function save(): void {
  const tmp = `${resultsFile}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(results, null, 1));
  fs.renameSync(tmp, resultsFile!);
}

const tail = (s: string, n = 1500): string => (s.length > n ? '…' + s.slice(-n) : s);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- set-up

// The disk image lives off the --rw share (9p would put the lab's 9p transport on the I/O path):
// in the lab that is the machine's own RAM-backed /tmp; the host's page cache holds it either way.
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-devbench-'));
const image = path.join(scratch, 'disk.img');
{
  const chunk = crypto.randomBytes(1 << 20);
  const fd = fs.openSync(image, 'w');
  for (let i = 0; i < p.imageMib; i++) {
    chunk.writeUInt32LE(i, 0); // no two MiB alike
    fs.writeSync(fd, chunk);
  }
  fs.closeSync(fd);
  results.setup.push(`image ${image}: ${p.imageMib} MiB of random data`);
}

// sparkler from the lab's RAM: the snapshot on the --rw share (9p, uncached) would load slowly.
let sparklerBin = p.sparklerBin;
if (p.sparklerDir) {
  const local = path.join(scratch, 'sparkler');
  fs.cpSync(p.sparklerDir, local, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  sparklerBin = path.join(local, path.relative(p.sparklerDir, p.sparklerBin));
  results.setup.push(`sparkler: ${sparklerBin} (copied from ${p.sparklerDir})`);
}

// Host → guest needs the network part and a port; params of an earlier bench/devices have neither.
const recvMib = p.netMib > 0 && p.recvPort ? p.netRecvMib ?? 0 : 0;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
function deleteTap(): void {
  try {
    ip('link', 'del', 'dev', p.tap);
  } catch { /* not there */ }
}
if (p.netMib > 0) {
  deleteTap();
  ip('tuntap', 'add', 'dev', p.tap, 'mode', 'tap');
  const v6 = `/proc/sys/net/ipv6/conf/${p.tap}/disable_ipv6`;
  if (fs.existsSync(v6)) fs.writeFileSync(v6, '1'); // no router solicitations etc. on the wire
  ip('addr', 'add', `${p.hostIp}/30`, 'dev', p.tap);
  ip('link', 'set', 'dev', p.tap, 'up');
  results.setup.push(`TAP ${p.tap} = ${p.hostIp}/30, guest ${p.guestIp}, sink on port ${p.port}` +
    (recvMib > 0 ? `; host → guest: ${recvMib} MiB to the guest's sink on port ${p.recvPort}` : ''));
}
save();

function cleanup(): void {
  if (p.netMib > 0) deleteTap();
  fs.rmSync(scratch, { recursive: true, force: true });
}

// ---------------------------------------------------------------- one run

const metricsFile = path.join(scratch, 'metrics.ndjson');

/** Sums the block device's counters over the metrics lines sparkler wrote (each line holds the deltas since the previous one). */
function blockMetrics(): DevRunRecord['vmmBlock'] {
  if (!fs.existsSync(metricsFile)) return null;
  const sum: Record<string, number> = {};
  let lines = 0;
  for (const line of fs.readFileSync(metricsFile, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let g: Record<string, unknown> | undefined;
    try {
      g = (JSON.parse(line) as Record<string, Record<string, unknown>>)['block_d'];
    } catch {
      continue;
    }
    if (!g) continue;
    lines++;
    const add = (k: string, v: unknown): void => void (typeof v === 'number' && (sum[k] = (sum[k] ?? 0) + v));
    for (const [k, v] of Object.entries(g)) {
      if (v && typeof v === 'object') add(`${k}.sum_us`, (v as Record<string, unknown>)['sum_us']);
      else add(k, v);
    }
  }
  if (lines === 0) return null;
  return {
    readCount: sum['read_count'] ?? 0,
    readBytes: sum['read_bytes'] ?? 0,
    readUs: sum['read_agg.sum_us'] ?? 0,
    writeCount: sum['write_count'] ?? 0,
    writeBytes: sum['write_bytes'] ?? 0,
    writeUs: sum['write_agg.sum_us'] ?? 0,
    queueEvents: sum['queue_event_count'] ?? 0,
  };
}

function command(vmm: Vmm): { file: string; args: string[] } {
  if (vmm === 'sparkler') {
    const cfg = path.join(p.workDir, 'vm.json');
    fs.writeFileSync(
      cfg,
      JSON.stringify({
        'boot-source': { kernel_image_path: p.kernel, initrd_path: p.initrd, boot_args: p.cmdline },
        'machine-config': { vcpu_count: p.vcpus, mem_size_mib: p.memMib },
        drives: [{ drive_id: 'd', path_on_host: image, is_root_device: false, is_read_only: false, cache_type: 'Unsafe', io_engine: p.ioEngine ?? 'Sync' }],
        ...(p.netMib > 0 ? { 'network-interfaces': [{ iface_id: 'eth0', host_dev_name: p.tap, guest_mac: p.guestMac }] } : {}),
      }, null, 1),
    );
    // Firecracker-style metrics (flushed at start and exit): the block device's own request counts and host I/O time.
    return { file: sparklerBin, args: ['--no-api', '--config-file', cfg, '--metrics-path', metricsFile] };
  }
  return {
    file: p.qemu,
    args: [
      '-M', p.qemuMachine, '-accel', 'kvm', '-cpu', 'host',
      '-m', String(p.memMib), '-smp', String(p.vcpus),
      '-nodefaults', '-no-user-config', '-nographic', '-serial', 'stdio',
      '-kernel', p.kernel, '-initrd', p.initrd, '-append', p.qemuCmdline, '-no-reboot',
      '-drive', `id=d,file=${image},format=raw,if=none,cache=unsafe`, '-device', 'virtio-blk-device,drive=d',
      ...(p.netMib > 0
        ? ['-netdev', `tap,id=n,ifname=${p.tap},script=no,downscript=no,vhost=off`, '-device', `virtio-net-device,netdev=n,mac=${p.guestMac}`]
        : []),
    ],
  };
}

/** Runs randread on the lab host with `args`; done: all it printed once it ends. */
function runRandread(args: string[]): { out: () => string; exited: () => boolean; done: Promise<string>; kill: () => void } {
  const child = spawn(p.randread, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RANDREAD_TIMEOUT: String(p.runTimeoutS + 30) } });
  let out = '';
  child.stdout.setEncoding('latin1');
  child.stderr.setEncoding('latin1');
  child.stdout.on('data', (d: string) => (out += d));
  child.stderr.on('data', (d: string) => (out += d));
  const done = new Promise<string>((resolve) => {
    child.on('close', () => resolve(out));
    child.on('error', (e) => resolve(out + `spawn failed: ${e.message}`));
  });
  return { out: () => out, exited: () => child.exitCode !== null, done, kill: () => void child.kill('SIGKILL') };
}

/** Starts the host-side TCP sink and waits until it listens. */
async function startSink(): Promise<{ done: Promise<string>; kill: () => void }> {
  const sink = runRandread(['sink', String(p.port)]);
  const end = Date.now() + 10_000;
  while (!sink.out().includes('netsink listening') && !sink.exited() && Date.now() < end) await sleep(20);
  return sink;
}

/**
 * Starts the host → guest sender (randread send, which retries its connect for 30 s): called when the
 * guest's sink listens. done: its output once it ends (the guest's sink closes after EOF).
 */
function startSender(): { done: Promise<string>; kill: () => void } {
  return runRandread(['send', p.guestIp, String(p.recvPort), String(recvMib)]);
}

async function one(vmm: Vmm, iter: number, warmup: boolean): Promise<void> {
  const label = `${warmup ? 'warm-up ' : ''}${vmm} #${iter + 1}`;
  log(`${label}: starting`);
  const sink = p.netMib > 0 ? await startSink() : null;
  fs.rmSync(metricsFile, { force: true });
  const { file, args } = command(vmm);
  let sender: ReturnType<typeof startSender> | null = null;
  let sample: ReturnType<typeof trySampleMemory> | null = null;
  // sparkler writes each virtio device's ring indices and interrupt state to stderr when it stops
  // (SPARKLER_DEVICE_STATE_AT_STOP): what a run stopped for a stalled guest left behind.
  const r = await runVmm(file, args, p.runTimeoutS, (out, pid, atMs) => {
    // The guest's sink listens: send now (the guest waits for it before bench-done).
    if (sender === null && recvMib > 0 && /^netbench recv-ready/m.test(out)) sender = startSender();
    // After the block tests, while the VMM runs: how its guest RAM is backed (THP or 4 KiB pages).
    if (sample === null && /^blkbench randread/m.test(out)) sample = trySampleMemory(pid, p.memMib, atMs);
  }, vmm === 'sparkler' ? { SPARKLER_DEVICE_STATE_AT_STOP: '1', ...(p.v8Flags ? { SPARKLER_V8_FLAGS: p.v8Flags } : {}) } : undefined);
  fs.writeFileSync(path.join(p.workDir, `console-${vmm}-${warmup ? 'w' : ''}${iter + 1}.txt`), r.out);
  fs.writeFileSync(path.join(p.workDir, `stderr-${vmm}-${warmup ? 'w' : ''}${iter + 1}.txt`), r.err);
  // The VMM's metrics (flushed at start and stop, also after a timeout's SIGTERM): the device counters of a run that went wrong.
  if (fs.existsSync(metricsFile)) fs.copyFileSync(metricsFile, path.join(p.workDir, `metrics-${vmm}-${warmup ? 'w' : ''}${iter + 1}.ndjson`));
  const g = parseGuest(r.out);
  // TS narrows `sample` to its initial null (it is assigned in a callback): read it back through a cast.
  const mem = (sample as ReturnType<typeof trySampleMemory> | null)?.mem ?? null;
  const rec: DevRunRecord = {
    vmm, iter, warmup, argv: [file, ...args], code: r.code, signal: r.signal, timedOut: r.timedOut, wallMs: r.exitMs,
    blk: g.blk,
    net: { info: g.netInfo, sink: null, send: g.send, sinkOutput: '', ...(recvMib > 0 ? { recv: g.recv, recvSend: null, recvSendOutput: '' } : {}) },
    guestRam: mem === null ? null : mem.guestRam,
    vmmBlock: vmm === 'sparkler' ? blockMetrics() : null,
    errors: guestErrors(r.out),
    consoleTail: tail(r.out),
    stderrTail: tail(r.err),
  };
  if (sink) {
    // The sink ends at the guest's EOF; if the guest never connected it is still waiting.
    const t = setTimeout(sink.kill, 3000);
    const out = await sink.done;
    clearTimeout(t);
    rec.net.sinkOutput = out.trim();
    rec.net.sink = parseSink(out);
    if (!rec.net.sink) rec.errors.push(`sink: ${out.trim() || 'no output'}`);
  }
  if (recvMib > 0) {
    // TS narrows `sender` to its initial null (it is assigned in a callback): read it back through a cast.
    const snd = sender as ReturnType<typeof startSender> | null;
    if (!snd) rec.errors.push('host → guest: the guest never said "netbench recv-ready"');
    else {
      // The sender ends when the guest's sink closes; if the guest went away first it would wait on.
      const t = setTimeout(snd.kill, 3000);
      const out = await snd.done;
      clearTimeout(t);
      rec.net.recvSendOutput = out.trim();
      rec.net.recvSend = parseSend(out);
      if (!rec.net.recvSend) rec.errors.push(`host → guest sender: ${out.trim() || 'no output'}`);
    }
    if (!rec.net.recv) rec.errors.push('no host → guest result from the guest\'s sink');
  }
  if (!rec.blk.seqReadCold) rec.errors.push('no sequential-read first-pass result');
  if (!rec.blk.seqRead) rec.errors.push('no sequential-read result');
  if (!rec.blk.seqWriteCold) rec.errors.push('no sequential-write first-pass result');
  if (!rec.blk.seqWrite) rec.errors.push('no sequential-write result');
  if (!rec.blk.rand) rec.errors.push('no random-read result');
  if (p.netMib > 0 && !rec.net.send) rec.errors.push('no netsend result from the guest');
  if (rec.code !== 0) rec.errors.push(`VMM exit ${rec.code}${rec.signal ? ` ${rec.signal}` : ''}${rec.timedOut ? ' (timed out)' : ''}`);
  if (!/^bench-done/m.test(rec.consoleTail)) rec.errors.push('the guest did not finish its benchmarks (no bench-done line)');
  results.records.push(rec);
  save();
  const mbs = (bytes?: number, s?: number): string => (bytes && s ? `${(bytes / 1e6 / s).toFixed(1)} MB/s` : '-');
  log(
    `${label}: ${rec.errors.length ? `PROBLEMS: ${rec.errors.join('; ')}` : 'ok'}; wall ${rec.wallMs === null ? '-' : (rec.wallMs / 1000).toFixed(1)} s, ` +
      `seq read ${mbs(rec.blk.seqRead?.bytes, rec.blk.seqRead?.seconds)} (cold ${mbs(rec.blk.seqReadCold?.bytes, rec.blk.seqReadCold?.seconds)}), ` +
      `seq write ${mbs(rec.blk.seqWrite?.bytes, rec.blk.seqWrite?.seconds)} (cold ${mbs(rec.blk.seqWriteCold?.bytes, rec.blk.seqWriteCold?.seconds)}), ` +
      `4k rand ${rec.blk.rand ? `${rec.blk.rand.iops.toFixed(0)} IOPS` : '-'}, net out ${mbs(rec.net.sink?.bytes, rec.net.sink?.seconds)}` +
      (recvMib > 0 ? `, net in ${mbs(rec.net.recv?.bytes, rec.net.recv?.seconds)}` : ''),
  );
  if (rec.errors.length) log(`console tail:\n${rec.consoleTail}\nstderr tail:\n${rec.stderrTail}`);
}

// Warm the page cache for both VMMs' inputs.
for (const f of [p.kernel, p.initrd, image]) fs.readFileSync(f);

try {
  for (let w = 0; w < p.warmups; w++) {
    if (p.only !== 'qemu') await one('sparkler', w, true);
    if (p.only !== 'sparkler') await one('qemu', w, true);
  }
  for (let i = 0; i < p.runs; i++) {
    // Alternate which VMM goes first, so neither always runs right after the other's disk writes.
    const order: Vmm[] = i % 2 === 0 ? ['sparkler', 'qemu'] : ['qemu', 'sparkler'];
    for (const vmm of order) if (!p.only || vmm === p.only) await one(vmm, i, false);
  }
} finally {
  results.finishedAt = new Date().toISOString();
  save();
  cleanup();
}
const failed = results.records.filter((r) => r.errors.length > 0).length;
process.exit(failed ? 1 : 0);
