/**
 * What the VMM adds to the guest's kernel command line, seen by a test guest
 * that prints it: Firecracker's root= for the root drive (PARTUUID when
 * given, ro/rw from is_read_only), virtio_mmio.device= for each device, and
 * pci=off.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { buildGuest } from '../helpers/guest_build.js';
import { describeRun, requireKvm, runSparkler } from '../helpers/sparkler_run.js';

function image(dir: string, name: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, Buffer.alloc(1024 * 1024));
  return f;
}

test('root drive, virtio devices and pci=off appear on the command line', { timeout: 60_000 }, async () => {
  requireKvm();
  const kernel = await buildGuest('hello');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-cmdline-'));
  try {
    const r = await runSparkler({
      kernel, bootArgs: 'console=ttyS0',
      drives: [
        { drive_id: 'data', path_on_host: image(dir, 'data.img'), is_root_device: false, is_read_only: true },
        { drive_id: 'rootfs', path_on_host: image(dir, 'root.img'), is_root_device: true, is_read_only: false },
      ],
      entropy: {},
    });
    const info = describeRun(r);
    assert.equal(r.code, 0, info);
    const line = /^cmdline: (.*)$/m.exec(r.stdout)?.[1] ?? '';
    assert.match(line, /(^| )root=\/dev\/vda rw( |$)/, info);
    assert.match(line, /(^| )pci=off( |$)/, info);
    // The root drive is the first device (/dev/vda) even though it was configured second.
    assert.match(line, /virtio_mmio\.device=4K@0xc0001000:5 virtio_mmio\.device=4K@0xc0002000:6 virtio_mmio\.device=4K@0xc0003000:7/, info);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a root drive with a PARTUUID is named by it, read-only', { timeout: 60_000 }, async () => {
  requireKvm();
  const kernel = await buildGuest('hello');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-cmdline-'));
  try {
    const r = await runSparkler({
      kernel, bootArgs: 'console=ttyS0',
      drives: [{ drive_id: 'rootfs', path_on_host: image(dir, 'root.img'), is_root_device: true, is_read_only: true, partuuid: '0eaa91a0-01' }],
    });
    const line = /^cmdline: (.*)$/m.exec(r.stdout)?.[1] ?? '';
    assert.match(line, /(^| )root=PARTUUID=0eaa91a0-01 ro( |$)/, describeRun(r));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
