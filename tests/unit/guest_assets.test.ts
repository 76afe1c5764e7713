// Prepares the real guest (downloads Debian's cloud kernel on a cold cache)
// and checks what a VMM will load from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { findPreparedGuest, initScriptPath, prepareGuest } from '../../src/guest/assets.js';

function cpioOut(args: string[], archive: Uint8Array): string {
  const r = spawnSync('cpio', [...args, '--quiet'], { input: archive, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('prepareGuest builds a bootable kernel + initramfs and caches it', { timeout: 600_000 }, async () => {
  const logs: string[] = [];
  const guest = await prepareGuest({ log: (s) => logs.push(s) });
  assert.match(guest.kernelVersion, /^\d+\.\d+\.\d+-\d+-cloud-amd64$/);

  // A bzImage carries the boot protocol's "HdrS" magic at 0x202.
  const kernel = readFileSync(guest.kernel);
  assert.equal(kernel.subarray(0x202, 0x206).toString('latin1'), 'HdrS');

  const archive = gunzipSync(readFileSync(guest.initramfs));
  const names = new Set(cpioOut(['-t'], archive).trim().split('\n'));
  for (const n of ['init', 'bin/busybox', 'bin/sh', 'dev/console', 'lib/modules/virtio_mmio.ko', 'lib/modules/load-order']) {
    assert.ok(names.has(n), `initramfs lacks ${n}`);
  }
  assert.equal(cpioOut(['-i', '--to-stdout', 'init'], archive), readFileSync(initScriptPath(), 'utf8'));
  const order = cpioOut(['-i', '--to-stdout', 'lib/modules/load-order'], archive).trim().split('\n');
  for (const m of order) assert.ok(names.has(`lib/modules/${m}.ko`), `load-order names ${m} but it is not packed`);
  // Dependencies load first.
  assert.ok(order.indexOf('virtio_ring') < order.indexOf('virtio_mmio'), order.join(' '));
  assert.ok(order.indexOf('vsock') < order.indexOf('vmw_vsock_virtio_transport'), order.join(' '));

  const t0 = performance.now();
  const again = await prepareGuest({ log: (s) => logs.push(s) });
  const ms = performance.now() - t0;
  assert.equal(again.dir, guest.dir);
  assert.ok(logs.some((l) => l.startsWith('up to date')), logs.join('\n'));
  assert.ok(ms < 10_000, `cache hit took ${ms.toFixed(0)} ms`);

  assert.deepEqual(findPreparedGuest(), guest);
});
