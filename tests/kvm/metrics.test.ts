/**
 * Metrics a user reads from --metrics-path: one JSON object per line, with
 * Firecracker's groups, counters as deltas since the previous line, written
 * at InstanceStart and at exit. The guest's serial writes, PIO exits and its
 * i8042 reset show up, and each virtio device has its group.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { buildGuest } from '../helpers/guest_build.js';
import { describeRun, requireKvm, runSparkler } from '../helpers/sparkler_run.js';

type Line = Record<string, Record<string, number> | number>;

test('the metrics file has a line at start and one at exit with the guest\'s activity', { timeout: 60_000 }, async () => {
  requireKvm();
  const kernel = await buildGuest('hello');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-metrics-'));
  try {
    const img = path.join(dir, 'data.img');
    fs.writeFileSync(img, Buffer.alloc(1 << 20));
    const metricsPath = path.join(dir, 'metrics.json');
    const r = await runSparkler({
      kernel, bootArgs: 'console=ttyS0',
      drives: [{ drive_id: 'data', path_on_host: img, is_root_device: false, is_read_only: false }],
      entropy: {},
      args: ['--metrics-path', metricsPath],
    });
    const info = describeRun(r);
    assert.equal(r.code, 0, info);
    const lines = fs.readFileSync(metricsPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
    assert.ok(lines.length >= 2, `expected a line at start and one at exit, got ${lines.length}`);
    for (const l of lines) {
      assert.equal(typeof l.utc_timestamp_ms, 'number');
      for (const g of ['api_server', 'vcpu', 'vmm', 'uart', 'i8042', 'latencies_us', 'logger', 'block', 'entropy']) assert.ok(g in l, `group ${g} missing`);
    }
    assert.ok('block_data' in lines[lines.length - 1]!, 'no per-device group for the drive');
    // Counters are deltas: summed over the lines they give the totals.
    const sum = (group: string, field: string): number => lines.reduce((n, l) => n + ((l[group] as Record<string, number>)[field] ?? 0), 0);
    assert.ok(sum('uart', 'write_count') > 20, `uart.write_count ${sum('uart', 'write_count')}`);
    assert.ok(sum('vcpu', 'exit_io_out') > 20, `vcpu.exit_io_out ${sum('vcpu', 'exit_io_out')}`);
    assert.equal(sum('i8042', 'reset_count'), 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
