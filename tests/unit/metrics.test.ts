/**
 * The metrics system against Firecracker's behaviour (src/vmm/src/logger/
 * metrics.rs): one JSON object per line with utc_timestamp_ms and every
 * group, counters as deltas between lines, store metrics as they are, and a
 * file or FIFO target that never blocks the VMM. Group and field names in
 * the assertions are Firecracker's, written out literally.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { logger } from '../../src/logger/logger.js';
import {
  GROUP_NAMES, Metrics, MetricsConfigError, MetricsError, ProcessTimeReporter, metrics as singleton, monotonicUs,
  type MetricsDeps,
} from '../../src/vmm/metrics/metrics.js';

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-metrics-'));
}

interface Harness {
  m: Metrics;
  logged: string[];
}

function harness(deps: MetricsDeps = {}): Harness {
  const logged: string[] = [];
  const m = new Metrics({ wallClockMs: () => 1541591155180, logError: (msg) => logged.push(msg), ...deps });
  return { m, logged };
}

type Line = Record<string, any>;

function readLines(file: string): Line[] {
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'), 'every line ends with a newline');
  return text.slice(0, -1).split('\n').map((l) => JSON.parse(l) as Line);
}

/** A configured registry writing to a fresh file; `lines()` reads what it wrote. */
function fileHarness(deps: MetricsDeps = {}): Harness & { file: string; lines(): Line[] } {
  const h = harness(deps);
  const file = path.join(tmpDir(), 'metrics.json');
  h.m.configure(file);
  return { ...h, file, lines: () => readLines(file) };
}

function mkfifo(): string {
  const p = path.join(tmpDir(), 'metrics.fifo');
  execFileSync('mkfifo', [p]);
  return p;
}

/** Reads whatever is in a non-blocking fd now. */
function drain(fd: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw err;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

// ---- line format ----

const EXPECTED_ORDER = [
  'utc_timestamp_ms', 'api_server', 'balloon', 'block', 'deprecated_api', 'get_api_requests', 'i8042', 'uart',
  'latencies_us', 'logger', 'mmds', 'net', 'patch_api_requests', 'put_api_requests', 'seccomp', 'vcpu', 'vmm',
  'signals', 'vsock', 'entropy', 'pmem', 'interrupts', 'memory_hotplug',
];

test('a line is one JSON object: utc_timestamp_ms first, then every group in Firecracker\'s order', () => {
  const h = fileHarness();
  assert.equal(h.m.flush(), true);
  const raw = fs.readFileSync(h.file, 'utf8');
  assert.equal(raw.split('\n').length, 2, 'exactly one line, newline-terminated');
  const [line] = h.lines();
  assert.deepEqual(Object.keys(line!), EXPECTED_ORDER);
  assert.deepEqual(['utc_timestamp_ms', ...GROUP_NAMES], EXPECTED_ORDER);
  assert.equal(line!['utc_timestamp_ms'], 1541591155180);
});

test('groups have Firecracker\'s fields, all zero before anything happens', () => {
  const h = fileHarness();
  h.m.flush();
  const [l] = h.lines();
  const line = l!;
  assert.deepEqual(line['api_server'], { process_startup_time_us: 0, process_startup_time_cpu_us: 0 });
  assert.deepEqual(line['i8042'], {
    error_count: 0, missed_read_count: 0, missed_write_count: 0, read_count: 0, reset_count: 0, write_count: 0,
  });
  assert.deepEqual(line['uart'], {
    error_count: 0, flush_count: 0, missed_read_count: 0, missed_write_count: 0, read_count: 0, write_count: 0,
    rate_limiter_dropped_bytes: 0,
  });
  assert.deepEqual(line['logger'], { missed_metrics_count: 0, metrics_fails: 0, missed_log_count: 0, rate_limited_log_count: 0 });
  assert.deepEqual(line['vmm'], { panic_count: 0 });
  assert.deepEqual(line['seccomp'], { num_faults: 0 });
  assert.deepEqual(line['signals'], { sigbus: 0, sigsegv: 0, sigxfsz: 0, sigxcpu: 0, sigpipe: 0, sighup: 0, sigill: 0 });
  assert.deepEqual(line['get_api_requests'], {
    instance_info_count: 0, machine_cfg_count: 0, mmds_count: 0, vmm_version_count: 0, hotplug_memory_count: 0,
  });
  assert.deepEqual(Object.keys(line['put_api_requests']), [
    'actions_count', 'actions_fails', 'boot_source_count', 'boot_source_fails', 'drive_count', 'drive_fails',
    'logger_count', 'logger_fails', 'machine_cfg_count', 'machine_cfg_fails', 'cpu_cfg_count', 'cpu_cfg_fails',
    'metrics_count', 'metrics_fails', 'network_count', 'network_fails', 'mmds_count', 'mmds_fails',
    'vsock_count', 'vsock_fails', 'pmem_count', 'pmem_fails', 'serial_count', 'serial_fails',
    'hotplug_memory_count', 'hotplug_memory_fails',
  ]);
  assert.deepEqual(Object.keys(line['patch_api_requests']), [
    'drive_count', 'drive_fails', 'network_count', 'network_fails', 'machine_cfg_count', 'machine_cfg_fails',
    'mmds_count', 'mmds_fails', 'hotplug_memory_count', 'hotplug_memory_fails', 'pmem_count', 'pmem_fails',
  ]);
  assert.deepEqual(Object.keys(line['latencies_us']), [
    'full_create_snapshot', 'diff_create_snapshot', 'load_snapshot', 'pause_vm', 'resume_vm',
    'vmm_full_create_snapshot', 'vmm_diff_create_snapshot', 'vmm_load_snapshot', 'vmm_pause_vm', 'vmm_resume_vm',
  ]);
  const agg = { min_us: 0, max_us: 0, sum_us: 0 };
  assert.deepEqual(line['vcpu'], {
    exit_io_in: 0, exit_io_out: 0, exit_mmio_read: 0, exit_mmio_write: 0, failures: 0, kvmclock_ctrl_fails: 0,
    exit_io_in_agg: agg, exit_io_out_agg: agg, exit_mmio_read_agg: agg, exit_mmio_write_agg: agg,
  });
  assert.deepEqual(line['interrupts'], { triggers: 0, config_updates: 0 });
  for (const g of GROUP_NAMES) {
    const zeros = JSON.stringify(line[g]).replace(/":0/g, '').match(/":\d/);
    assert.equal(zeros, null, `${g} is all zeros`);
  }
});

test('emit_id and properties add "id" and "properties" after the timestamp, properties sorted', () => {
  const h = harness();
  h.m.instanceId = 'vm-7';
  const file = path.join(tmpDir(), 'm.json');
  h.m.configure(file, { emitId: true, properties: { customer_id: '1234', bundle_id: 'fn-abc' } });
  h.m.flush();
  const [line] = readLines(file);
  assert.deepEqual(Object.keys(line!).slice(0, 4), ['utc_timestamp_ms', 'id', 'properties', 'api_server']);
  assert.equal(line!['id'], 'vm-7');
  assert.equal(JSON.stringify(line!['properties']), '{"bundle_id":"fn-abc","customer_id":"1234"}');

  const plain = fileHarness();
  plain.m.flush();
  assert.equal('id' in plain.lines()[0]!, false);
  assert.equal('properties' in plain.lines()[0]!, false);
});

// ---- counters and stores ----

test('counters are reported as the delta since the previous line', () => {
  const h = fileHarness();
  const exits = h.m.counter('vcpu', 'exit_io_out');
  const puts = h.m.counter('put_api_requests', 'actions_count');
  exits.inc();
  exits.inc(2);
  puts.inc();
  h.m.flush();
  h.m.flush();
  exits.inc(5);
  h.m.counter('vcpu', 'exit_io_out').inc(); // another handle on the same counter
  h.m.flush();
  const [a, b, c] = h.lines();
  assert.equal(a!['vcpu'].exit_io_out, 3);
  assert.equal(a!['put_api_requests'].actions_count, 1);
  assert.equal(b!['vcpu'].exit_io_out, 0);
  assert.equal(b!['put_api_requests'].actions_count, 0);
  assert.equal(c!['vcpu'].exit_io_out, 6);
  assert.equal(exits.count(), 9, 'count() is cumulative');
});

test('store metrics are reported as they are, on every line', () => {
  const h = fileHarness();
  h.m.store('latencies_us', 'pause_vm').set(1234);
  h.m.store('api_server', 'process_startup_time_us').set(56789);
  h.m.flush();
  h.m.flush();
  h.m.store('latencies_us', 'pause_vm').set(99);
  h.m.flush();
  const [a, b, c] = h.lines();
  assert.equal(a!['latencies_us'].pause_vm, 1234);
  assert.equal(b!['latencies_us'].pause_vm, 1234);
  assert.equal(c!['latencies_us'].pause_vm, 99);
  assert.equal(c!['api_server'].process_startup_time_us, 56789);
});

test('latency aggregates keep min/max and count the sum', () => {
  const h = fileHarness();
  const lat = h.m.latency('vcpu', 'exit_io_in_agg');
  lat.record(30);
  lat.record(10);
  lat.record(20);
  h.m.flush();
  lat.record(5);
  h.m.flush();
  const [a, b] = h.lines();
  assert.deepEqual(a!['vcpu'].exit_io_in_agg, { min_us: 10, max_us: 30, sum_us: 60 });
  assert.deepEqual(b!['vcpu'].exit_io_in_agg, { min_us: 5, max_us: 30, sum_us: 5 });
});

test('names Firecracker does not have, or of the other kind, are refused', () => {
  const { m } = harness();
  assert.throws(() => m.counter('vcpu', 'exit_io_inn'), /no field "exit_io_inn"/);
  assert.throws(() => m.counter('cpu', 'exit_io_in'), /unknown metrics group "cpu"/);
  assert.throws(() => m.counter('latencies_us', 'pause_vm'), /is a store metric/);
  assert.throws(() => m.store('i8042', 'read_count'), /is a counter metric/);
});

// ---- external sources ----

test('an external source reports cumulative counts; lines carry the deltas', () => {
  const h = fileHarness();
  const cells = new Int32Array(new SharedArrayBuffer(8));
  h.m.addSource('uart', () => ({ write_count: Atomics.load(cells, 0), read_count: Atomics.load(cells, 1) }));
  Atomics.add(cells, 0, 10);
  h.m.flush();
  Atomics.add(cells, 0, 5);
  Atomics.add(cells, 1, 2);
  h.m.flush();
  h.m.flush();
  const [a, b, c] = h.lines();
  assert.equal(a!['uart'].write_count, 10);
  assert.equal(b!['uart'].write_count, 5);
  assert.equal(b!['uart'].read_count, 2);
  assert.equal(c!['uart'].write_count, 0);
});

test('sources add up with each other and with the group\'s own counters', () => {
  const h = fileHarness();
  const vcpu0 = { exit_io_in: 0 };
  const vcpu1 = { exit_io_in: 0 };
  h.m.addSource('vcpu', () => ({ ...vcpu0 }));
  h.m.addSource('vcpu', () => ({ ...vcpu1 }));
  vcpu0.exit_io_in = 3;
  vcpu1.exit_io_in = 4;
  h.m.counter('vcpu', 'exit_io_in').inc();
  h.m.flush();
  const [a] = h.lines();
  assert.equal(a!['vcpu'].exit_io_in, 8);
});

test('32-bit source counters that wrap around still give the right delta', () => {
  const h = fileHarness();
  const cells = new Int32Array(new SharedArrayBuffer(4));
  cells[0] = 0x7fff_fffe;
  h.m.addSource('i8042', () => ({ read_count: cells[0]! }));
  h.m.flush();
  cells[0] = (cells[0]! + 3) | 0; // wraps to negative
  h.m.flush();
  const [a, b] = h.lines();
  assert.equal(a!['i8042'].read_count, 0x7fff_fffe);
  assert.equal(b!['i8042'].read_count, 3);
});

test('a 64-bit source that goes down is taken as restarted', () => {
  const h = fileHarness();
  let n = 2 ** 40;
  h.m.addSource('net', () => ({ rx_bytes_count: n }), { width: 64 });
  h.m.flush();
  n += 2 ** 33;
  h.m.flush();
  n = 7;
  h.m.flush();
  const lines = h.lines();
  assert.deepEqual(lines.map((l) => l['net'].rx_bytes_count), [2 ** 40, 2 ** 33, 7]);
});

test('a removed source\'s last counts reach the next line; bad field names are refused', () => {
  const h = fileHarness();
  let n = 0;
  const src = h.m.addSource('i8042', () => ({ write_count: n }));
  n = 4;
  h.m.flush();
  n = 9;
  src.remove();
  n = 100; // no longer read
  h.m.flush();
  h.m.flush();
  assert.deepEqual(h.lines().map((l) => l['i8042'].write_count), [4, 5, 0]);
  assert.throws(() => h.m.addSource('i8042', () => ({ writes: 1 })), /no field "writes"/);
  assert.throws(() => h.m.addSource('nope', () => ({})), /unknown metrics group/);
});

test('store fields from sources are reported as they are', () => {
  const h = fileHarness();
  const agg = { 'exit_mmio_read_agg.min_us': 7, 'exit_mmio_read_agg.max_us': 40, 'exit_mmio_read_agg.sum_us': 100 };
  h.m.addSource('vcpu', () => agg);
  h.m.addSource('vcpu', () => ({ 'exit_mmio_read_agg.min_us': 3, 'exit_mmio_read_agg.max_us': 20 }));
  h.m.flush();
  h.m.flush();
  const [a, b] = h.lines();
  assert.deepEqual(a!['vcpu'].exit_mmio_read_agg, { min_us: 3, max_us: 40, sum_us: 100 });
  assert.deepEqual(b!['vcpu'].exit_mmio_read_agg, { min_us: 3, max_us: 40, sum_us: 0 });
});

test('per-device groups come in id order before their aggregate, which sums them', () => {
  const h = fileHarness();
  const b = h.m.device('block', 'scratch');
  const a = h.m.device('block', 'rootfs');
  assert.equal(h.m.device('block', 'rootfs'), 'block_rootfs', 'device() is idempotent');
  h.m.counter(a, 'read_count').inc(2);
  h.m.counter(b, 'read_count').inc(3);
  h.m.counter(b, 'write_bytes').inc(512);
  h.m.store(a, 'read_agg.max_us').set(77);
  h.m.device('vhost_user', 'fs0');
  h.m.flush();
  h.m.flush();
  const [l1, l2] = h.lines();
  const keys = Object.keys(l1!);
  assert.deepEqual(keys.slice(keys.indexOf('balloon'), keys.indexOf('block') + 1), ['balloon', 'block_rootfs', 'block_scratch', 'block']);
  assert.deepEqual(keys.slice(keys.indexOf('pmem'), keys.indexOf('interrupts') + 1), ['pmem', 'vhost_user_fs0', 'interrupts']);
  assert.equal(l1!['block_rootfs'].read_count, 2);
  assert.equal(l1!['block_scratch'].read_count, 3);
  assert.equal(l1!['block'].read_count, 5);
  assert.equal(l1!['block'].write_bytes, 512);
  assert.equal(l1!['block_rootfs'].read_agg.max_us, 77);
  assert.equal(l1!['block'].read_agg.max_us, 0, 'Firecracker aggregates only counters');
  assert.deepEqual(Object.keys(l1!['vhost_user_fs0']), ['activate_fails', 'cfg_fails', 'init_time_us', 'activate_time_us', 'config_change_time_us']);
  assert.equal(l2!['block'].read_count, 0);
  assert.equal(l2!['block_scratch'].read_count, 0);
});

// ---- target ----

test('flush() and write() without a configured target return false', () => {
  const { m, logged } = harness();
  assert.equal(m.configured, false);
  assert.equal(m.flush(), false);
  assert.equal(m.write(), false);
  assert.deepEqual(logged, [], 'not an error');
});

test('configuring twice is refused with Firecracker\'s message; the first target stays', () => {
  const h = fileHarness();
  const other = path.join(tmpDir(), 'other.json');
  assert.throws(() => h.m.configure(other), (err: unknown) => {
    assert.ok(err instanceof MetricsConfigError);
    assert.equal(err.message, 'Cannot initialize the metrics system due to bad user input: Reinitialization of metrics not allowed.');
    return true;
  });
  assert.equal(h.m.flush(), true);
  assert.equal(h.lines().length, 1);
  assert.equal(fs.readFileSync(other, 'utf8'), '', 'nothing goes to the refused path');
});

test('a path that cannot be opened reports the OS error as Firecracker does', () => {
  const { m } = harness();
  assert.throws(() => m.configure('/nonexistent-dir/metrics.json'), {
    name: 'MetricsConfigError',
    message: 'Cannot initialize the metrics system due to bad user input: No such file or directory (os error 2)',
  });
  assert.equal(m.configured, false);
});

test('an existing file is appended to', () => {
  const file = path.join(tmpDir(), 'm.json');
  fs.writeFileSync(file, '{"old":1}\n');
  const { m } = harness();
  m.configure(file);
  m.flush();
  const lines = readLines(file);
  assert.equal(lines.length, 2);
  assert.deepEqual(lines[0], { old: 1 });
});

test('a FIFO with a reader receives whole lines', () => {
  const fifo = mkfifo();
  const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const { m } = harness();
  try {
    m.configure(fifo);
    m.counter('i8042', 'reset_count').inc();
    assert.equal(m.flush(), true);
    assert.equal(m.flush(), true);
    const lines = drain(reader).split('\n');
    assert.equal(lines.pop(), '', 'ends with a newline');
    assert.equal(lines.length, 2);
    const parsed = lines.map((l) => JSON.parse(l) as Line);
    assert.equal(parsed[0]!['i8042'].reset_count, 1);
    assert.equal(parsed[1]!['i8042'].reset_count, 0);
  } finally {
    m.close();
    fs.closeSync(reader);
  }
});

test('a FIFO nobody reads: configure and flush return at once, failures are counted, lines stay whole', () => {
  const fifo = mkfifo();
  const h = harness();
  h.m.configure(fifo);
  // Fill the pipe (64 KiB by default): writes fail with EAGAIN instead of blocking.
  const results: boolean[] = [];
  for (let i = 0; i < 200; i++) results.push(h.m.flush());
  assert.equal(results[0], true);
  const failures = results.filter((r) => !r).length;
  assert.ok(failures > 0, 'a full pipe refuses lines');
  assert.equal(h.logged.length, failures);
  assert.equal(
    h.logged[0],
    'Failed to write metrics: Failed to write metrics: Resource temporarily unavailable (os error 11)',
  );
  // A reader comes: it gets the buffered lines, then the next ones, all whole,
  // and the missed lines are counted in the logger group.
  const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    let text = drain(reader);
    assert.equal(h.m.flush(), true);
    text += drain(reader);
    const lines = text.split('\n');
    assert.equal(lines.pop(), '');
    const parsed = lines.map((l) => JSON.parse(l) as Line);
    const last = parsed[parsed.length - 1]!;
    assert.equal(last['logger'].missed_metrics_count, failures);
    assert.equal(last['logger'].metrics_fails, failures);
  } finally {
    fs.closeSync(reader);
    h.m.close();
  }
});

test('a FIFO nobody reads never hangs the process (checked in a child with a timeout)', () => {
  const fifo = mkfifo();
  const here = path.dirname(fileURLToPath(import.meta.url));
  const mod = path.join(here, '../../src/vmm/metrics/metrics.js');
  const script = `
    import { Metrics } from ${JSON.stringify(mod)};
    const m = new Metrics({ logError: () => {} });
    m.configure(${JSON.stringify(fifo)});
    let ok = 0;
    for (let i = 0; i < 100; i++) if (m.flush()) ok++;
    m.startPeriodic(10);
    console.log('done ' + ok);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000, encoding: 'utf8' });
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^done \d+\n$/, 'and the unref\'d periodic timer let it exit');
});

test('startPeriodic writes a line at once and then every period; stop() stops it', async () => {
  const h = fileHarness();
  h.m.startPeriodic(20);
  assert.equal(h.lines().length, 1, 'the first line is written at start, as Firecracker does');
  assert.equal(h.m.writer.periodic, true);
  await new Promise((r) => setTimeout(r, 130));
  h.m.stop();
  const n = h.lines().length;
  assert.ok(n >= 3, `periodic lines written (${n})`);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(h.lines().length, n, 'no line after stop()');
  assert.equal(h.m.writer.periodic, false);
});

test('MetricsError messages are Firecracker\'s', () => {
  assert.equal(MetricsError.alreadyInitialized().message, 'Reinitialization of metrics not allowed.');
  const eagain = Object.assign(new Error('EAGAIN: resource temporarily unavailable, write'), { code: 'EAGAIN', errno: -11 });
  assert.equal(MetricsError.write(eagain).message, 'Failed to write metrics: Resource temporarily unavailable (os error 11)');
});

// ---- the process-wide instance ----

test('the process-wide `metrics` reads the logger\'s counters', () => {
  const before = singleton.snapshot().object['logger'] as Record<string, number>;
  logger.stats.rateLimitedLogCount += 2;
  logger.stats.missedLogCount += 1;
  const after = singleton.snapshot().object['logger'] as Record<string, number>;
  assert.equal(after['rate_limited_log_count']! - before['rate_limited_log_count']!, 2);
  assert.equal(after['missed_log_count']! - before['missed_log_count']!, 1);
  assert.equal(singleton.configured, false);
});

test('ProcessTimeReporter stores the startup times given by the jailer\'s arguments', () => {
  const { m } = harness();
  const wall = m.store('api_server', 'process_startup_time_us');
  const cpu = m.store('api_server', 'process_startup_time_cpu_us');
  new ProcessTimeReporter(null, null, null, m).reportStartTime();
  assert.equal(wall.fetch(), 0, 'nothing without --start-time-us');
  const r = new ProcessTimeReporter(monotonicUs() - 5000, 0, 700, m);
  r.reportStartTime();
  r.reportCpuStartTime();
  assert.ok(wall.fetch() >= 5000 && wall.fetch() < 5_000_000, `wall ${wall.fetch()}`);
  const used = process.cpuUsage();
  assert.ok(cpu.fetch() >= 700 && cpu.fetch() <= used.user + used.system + 700, `cpu ${cpu.fetch()}`);
});
