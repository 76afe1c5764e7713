/**
 * virtio-mmio devices with Debian's cloud kernel, which finds them through
 * ACPI (LNRO0005): the guest mounts an ext4 drive, reads a file the host
 * wrote and writes one the host reads after shutdown; a read-only drive
 * refuses writes and its file stays byte-identical; the entropy device feeds
 * /dev/hwrng. The drive checks run with both io engines (Sync, and Async:
 * io_uring). A root drive (is_root_device) gets root=/dev/vda rw on the
 * command line, and the guest runs the /sbin/init on it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { prepareGuest } from '../../src/guest/assets.js';
import { freshDir, runWithLinuxKvm } from '../helpers/lab.js';
import { describeRun, projectRoot, requireKvm } from '../helpers/sparkler_run.js';
import type { Scenario, ScenarioResults } from './scenarios.js';

const BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 i8042.noaux i8042.nomux i8042.dumbkbd quiet sparkler.cmd=devtest';

/** The rate-limited drive: 512 KiB every 64 ms = 8 MiB/s. */
const RATE_BUCKET_BYTES = 512 * 1024;
const RATE_REFILL_MS = 64;
const RATE_BYTES_PER_S = (RATE_BUCKET_BYTES * 1000) / RATE_REFILL_MS;

function sparse(dir: string, name: string, size: number): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, '');
  fs.truncateSync(file, size);
  return file;
}

let results: ScenarioResults = {};
let labLog = '';
let rwImage = '';
let roImage = '';
let roHashBefore = '';
let asyncImage = '';
let asyncRoImage = '';
let asyncRoHashBefore = '';
let rootImage = '';

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * A root filesystem: the test guest's static busybox (from its initramfs) and
 * an /sbin/init that reports what it was started with, writes a file and reboots.
 */
function rootfsImage(dir: string, initramfs: string): string {
  const content = path.join(dir, 'rootfs-content');
  for (const d of ['bin', 'sbin', 'dev', 'proc']) fs.mkdirSync(path.join(content, d), { recursive: true });
  execFileSync('sh', ['-c', 'zcat "$1" | cpio -i --quiet --to-stdout bin/busybox > "$2"', 'sh', initramfs, path.join(content, 'bin/busybox')]);
  fs.chmodSync(path.join(content, 'bin/busybox'), 0o755);
  fs.writeFileSync(path.join(content, 'sbin/init'), [
    '#!/bin/busybox sh',
    'B=/bin/busybox',
    '$B mount -t proc proc /proc',
    'echo "rootfs-init pid=$$ $($B grep -o "root=[^ ]*" /proc/cmdline) mode=$($B awk \'$2 == "/" { split($4, o, ","); print o[1] }\' /proc/mounts | $B tail -n 1)"',
    'echo "written from the root drive" > /from-rootfs.txt && $B sync && echo rootfs-write=ok',
    '$B reboot -f',
    '',
  ].join('\n'), { mode: 0o755 });
  const img = path.join(dir, 'rootfs.ext4');
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', content, img, '16M']);
  return img;
}

/** An ext4 image holding hello.txt, made with Debian's mkfs.ext4 -d. */
function ext4Image(dir: string, name: string, text: string): string {
  const content = path.join(dir, `${name}-content`);
  fs.mkdirSync(content);
  fs.writeFileSync(path.join(content, 'hello.txt'), text);
  const img = path.join(dir, `${name}.ext4`);
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', content, img, '16M']);
  return img;
}

before(async () => {
  requireKvm();
  const guest = await prepareGuest({ log: () => undefined });
  const dir = freshDir('virtio');
  rwImage = ext4Image(dir, 'rw', 'hello from the host');
  roImage = ext4Image(dir, 'ro', 'read-only data');
  roHashBefore = sha256(roImage);
  asyncImage = ext4Image(dir, 'async', 'hello through io_uring');
  asyncRoImage = ext4Image(dir, 'async-ro', 'read-only through io_uring');
  asyncRoHashBefore = sha256(asyncRoImage);
  rootImage = rootfsImage(dir, guest.initramfs);
  const scenarios: Scenario[] = [{
    name: 'devices',
    run: {
      kernel: guest.kernel, initrd: guest.initramfs, vcpus: 2, memMib: 256, bootArgs: BOOT_ARGS, timeoutMs: 240_000,
      drives: [
        { drive_id: 'data', path_on_host: rwImage, is_root_device: false, is_read_only: false, cache_type: 'Writeback' },
        { drive_id: 'ro', path_on_host: roImage, is_root_device: false, is_read_only: true },
      ],
      entropy: {},
    },
  }, {
    // The same checks with Firecracker's Async engine (io_uring) on both drives.
    name: 'async',
    run: {
      kernel: guest.kernel, initrd: guest.initramfs, vcpus: 1, memMib: 128, bootArgs: BOOT_ARGS, timeoutMs: 240_000,
      drives: [
        { drive_id: 'data', path_on_host: asyncImage, is_root_device: false, is_read_only: false, cache_type: 'Writeback', io_engine: 'Async' },
        { drive_id: 'ro', path_on_host: asyncRoImage, is_root_device: false, is_read_only: true, io_engine: 'Async' },
      ],
    },
  }, {
    name: 'rate-limited',
    run: {
      kernel: guest.kernel, initrd: guest.initramfs, vcpus: 1, memMib: 128,
      bootArgs: BOOT_ARGS.replace('sparkler.cmd=devtest', 'sparkler.cmd=ratetest'), timeoutMs: 240_000,
      drives: [{
        drive_id: 'slow', path_on_host: sparse(dir, 'slow.img', 32 * 1024 * 1024), is_root_device: false, is_read_only: true,
        rate_limiter: { bandwidth: { size: RATE_BUCKET_BYTES, refill_time: RATE_REFILL_MS } },
      }],
    },
  }, {
    // Firecracker's root drive: sparkler adds root=/dev/vda rw; the initramfs mounts it and starts its /sbin/init.
    name: 'rootfs',
    run: {
      kernel: guest.kernel, initrd: guest.initramfs, vcpus: 1, memMib: 128, bootArgs: BOOT_ARGS.replace(' sparkler.cmd=devtest', ''), timeoutMs: 240_000,
      drives: [{ drive_id: 'rootfs', path_on_host: rootImage, is_root_device: true, is_read_only: false }],
    },
  }];
  fs.writeFileSync(path.join(dir, 'scenarios.json'), JSON.stringify(scenarios));
  const r = await runWithLinuxKvm(
    [process.execPath, path.join(projectRoot, 'dist/tests/lab/scenarios.js'), path.join(dir, 'scenarios.json'), path.join(dir, 'results.json')],
    dir, 600_000,
  );
  labLog = `lab exit ${r.code} after ${r.durationMs} ms\n${r.stderr.slice(-3000)}`;
  if (fs.existsSync(path.join(dir, 'results.json'))) results = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as ScenarioResults;
});

function run(): NonNullable<ScenarioResults[string]> {
  const r = results.devices;
  assert.ok(r, `the VM did not run\n${labLog}`);
  return r;
}

test('the guest mounts an ext4 drive and reads the file the host wrote', () => {
  const r = run();
  assert.match(r.stdout, /^vda-hello=hello from the host\r?$/m, describeRun(r));
  assert.match(r.stdout, /^vda-umount=ok/m, describeRun(r));
});

test('a file the guest wrote is on the image after shutdown', () => {
  const r = run();
  assert.equal(r.code, 0, describeRun(r));
  const out = execFileSync('debugfs', ['-R', 'cat /from-guest.txt', rwImage], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  assert.equal(out.trim(), 'written by the guest');
});

test('a read-only drive refuses writes and its file is untouched', () => {
  const r = run();
  assert.match(r.stdout, /^vdb-ro=1/m, describeRun(r));
  assert.match(r.stdout, /^vdb-write=refused/m, describeRun(r));
  assert.equal(sha256(roImage), roHashBefore, 'the read-only image changed');
});

test('the entropy device feeds /dev/hwrng', () => {
  const r = run();
  assert.match(r.stdout, /^rng-current=virtio_rng/m, describeRun(r));
  assert.match(r.stdout, /^rng-bytes=64/m, describeRun(r));
});

test('a rate-limited drive reads at the configured rate (±15%)', () => {
  const r = results['rate-limited'];
  assert.ok(r, `the VM did not run\n${labLog}`);
  const m = /^ratetest bytes=(\d+) start=([\d.]+) end=([\d.]+)/m.exec(r.stdout);
  assert.ok(m, describeRun(r));
  const rate = Number(m[1]) / (Number(m[3]) - Number(m[2]));
  const ratio = rate / RATE_BYTES_PER_S;
  assert.ok(ratio > 0.85 && ratio < 1.15, `read ${(rate / 2 ** 20).toFixed(2)} MiB/s, configured ${(RATE_BYTES_PER_S / 2 ** 20).toFixed(2)} MiB/s (ratio ${ratio.toFixed(3)})\n${describeRun(r)}`);
});

test('a root drive: root=/dev/vda rw reaches the guest, which runs the drive\'s /sbin/init and writes to it', () => {
  const r = results.rootfs;
  assert.ok(r, `the VM did not run\n${labLog}`);
  assert.match(r.stdout, /^rootfs-init pid=1 root=\/dev\/vda mode=rw\r?$/m, describeRun(r));
  assert.match(r.stdout, /^rootfs-write=ok/m, describeRun(r));
  assert.equal(r.code, 0, describeRun(r));
  const out = execFileSync('debugfs', ['-R', 'cat /from-rootfs.txt', rootImage], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  assert.equal(out.trim(), 'written from the root drive');
});

test('io_engine Async: the guest reads and writes an ext4 drive through io_uring', () => {
  const r = results.async;
  assert.ok(r, `the VM did not run\n${labLog}`);
  assert.match(r.stdout, /^vda-hello=hello through io_uring\r?$/m, describeRun(r));
  assert.match(r.stdout, /^vda-umount=ok/m, describeRun(r));
  assert.equal(r.code, 0, describeRun(r));
  const out = execFileSync('debugfs', ['-R', 'cat /from-guest.txt', asyncImage], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  assert.equal(out.trim(), 'written by the guest');
});

test('io_engine Async: a read-only drive refuses writes and its file is untouched', () => {
  const r = results.async;
  assert.ok(r, `the VM did not run\n${labLog}`);
  assert.match(r.stdout, /^vdb-ro=1/m, describeRun(r));
  assert.match(r.stdout, /^vdb-write=refused/m, describeRun(r));
  assert.equal(sha256(asyncRoImage), asyncRoHashBefore, 'the read-only image changed');
});
