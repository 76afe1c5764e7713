/**
 * Guest assets for tests and the demo: Debian's cloud kernel and a small
 * busybox initramfs, built from Debian packages and cached by content.
 *
 * Cache layout (under the project root):
 *   .cache/guest/<key>/vmlinuz             the kernel's bzImage
 *   .cache/guest/<key>/initramfs.cpio.gz   busybox + modules + guest/init.sh as /init
 *   .cache/guest/<key>/manifest.json       written last: the directory is complete iff it matches <key>
 *   .cache/guest/latest -> <key>           the most recently prepared guest
 * <key> hashes everything the output depends on, so a new kernel upload, a
 * new busybox or an edited init script gives a new directory.
 */

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspectBusybox, missingApplets, type Busybox } from './busybox.js';
import { aptUpdate, candidateVersion, downloadDeb, extractDeb, resolveKernelPackage, type DebPackage } from './debian.js';
import { buildInitramfs } from './initramfs.js';
import { collectModules } from './modules.js';

export interface PreparedGuest {
  dir: string;
  kernel: string;
  initramfs: string;
  /** `uname -r` inside the guest, e.g. 6.1.0-56-cloud-amd64. */
  kernelVersion: string;
}

export interface PrepareOptions {
  /** Where to put the files (default: the cache directory for this content). */
  outDir?: string;
  /** Progress lines (default: stderr). */
  log?: (s: string) => void;
}

interface Manifest {
  format: number;
  key: string;
  kernelPackage: DebPackage;
  kernelVersion: string;
  busybox: string;
  modules: string[];
  builtinModules: string[];
  kernel: string;
  initramfs: string;
}

/** Bump when the layout of the output changes in a way the key does not see. */
const FORMAT = 1;
const KERNEL_META = 'linux-image-cloud-amd64';
const BUSYBOX_PKG = 'busybox-static';
const KERNEL_FILE = 'vmlinuz';
const INITRAMFS_FILE = 'initramfs.cpio.gz';
const MANIFEST_FILE = 'manifest.json';

/** Drivers for Firecracker's devices (all virtio-mmio) and the root filesystem. */
export const GUEST_MODULES = ['virtio_mmio', 'virtio_blk', 'virtio_net', 'vmw_vsock_virtio_transport', 'virtio_rng', 'ext4'] as const;
/** Applets guest/init.sh runs; busybox must have all of them. */
const INIT_APPLETS = ['sh', 'mount', 'insmod', 'nproc', 'uname', 'devmem', 'setsid', 'cttyhack', 'reboot', 'poweroff', 'switch_root'];
/** A few more for `sparkler.cmd=shell` sessions. */
const SHELL_APPLETS = ['cat', 'dd', 'dmesg', 'free', 'ip', 'ls', 'lsmod', 'mkdir', 'ps', 'sleep', 'sync', 'umount', 'wc'];
/** For the network tests' `sparkler.cmd=nettest` (tests/lab/net_vsock.test.ts). */
const NET_APPLETS = ['ping', 'nc', 'timeout'];
const APPLETS = [...INIT_APPLETS, ...SHELL_APPLETS, ...NET_APPLETS];

/** The package root: the nearest ancestor of this module with a package.json (works from src/ and dist/). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('sparkler: package root not found');
    dir = up;
  }
  return dir;
}

export function guestCacheRoot(): string {
  return join(projectRoot(), '.cache', 'guest');
}

export function initScriptPath(): string {
  return join(projectRoot(), 'guest', 'init.sh');
}

/** The most recently prepared cached guest, without touching apt or the network. */
export function findPreparedGuest(): PreparedGuest | undefined {
  const latest = join(guestCacheRoot(), 'latest');
  try {
    return readComplete(resolve(guestCacheRoot(), readlinkSync(latest)));
  } catch {
    return undefined;
  }
}

export async function prepareGuest(opts: PrepareOptions = {}): Promise<PreparedGuest> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`sparkler-guest: ${s}\n`));
  let refreshed = false;
  let kernelPkg = await resolveKernelPackage(KERNEL_META);
  if (!kernelPkg) {
    log('apt knows no kernel package yet: apt-get update');
    await aptUpdate();
    refreshed = true;
    kernelPkg = await resolveKernelPackage(KERNEL_META);
  }
  if (!kernelPkg) throw new Error(`cannot resolve ${KERNEL_META} with apt-cache`);

  for (;;) {
    try {
      return await prepareFrom(kernelPkg, opts.outDir, log);
    } catch (e) {
      // Stale package lists name versions the mirror no longer has: refresh once and re-resolve.
      if (refreshed || !(e instanceof DownloadError)) throw e;
      log(`${e.message}; apt-get update and retry`);
      await aptUpdate();
      refreshed = true;
      kernelPkg = (await resolveKernelPackage(KERNEL_META)) ?? kernelPkg;
    }
  }
}

class DownloadError extends Error {}

async function prepareFrom(kernelPkg: DebPackage, outDir: string | undefined, log: (s: string) => void): Promise<PreparedGuest> {
  const init = readFileSync(initScriptPath(), 'utf8');
  const host = inspectBusybox('/bin/busybox');
  const hostBusybox = host && missingApplets(host, APPLETS).length === 0 ? host : undefined;
  const bbPkg = hostBusybox ? undefined : await busyboxPackage();
  const busyboxId = hostBusybox ? hostBusybox.version : `${bbPkg?.name} ${bbPkg?.version}`;

  const key = createHash('sha256')
    .update(JSON.stringify({ FORMAT, kernelPkg, busyboxId, init, GUEST_MODULES, APPLETS }))
    .digest('hex')
    .slice(0, 12);
  const cached = outDir === undefined;
  const dir = resolve(outDir ?? join(guestCacheRoot(), key));

  const done = readComplete(dir, key);
  if (done) {
    log(`up to date: ${dir}`);
    if (cached) pointLatest(key);
    return done;
  }

  log(`preparing ${kernelPkg.name} ${kernelPkg.version} + ${busyboxId} in ${dir}`);
  const scratch = mkdtempSync(join(tmpdir(), 'sparkler-guest-'));
  try {
    const kroot = join(scratch, 'kernel');
    await fetchAndExtract(kernelPkg, scratch, kroot, log);
    const kernelVersion = onlyEntry(join(kroot, 'lib/modules'));
    const vmlinuz = join(kroot, 'boot', `vmlinuz-${kernelVersion}`);
    if (!existsSync(vmlinuz)) throw new Error(`${kernelPkg.name} has no boot/vmlinuz-${kernelVersion}`);

    let busybox: Busybox | undefined = hostBusybox;
    if (bbPkg) {
      const broot = join(scratch, 'busybox');
      await fetchAndExtract(bbPkg, scratch, broot, log);
      busybox = inspectBusybox(join(broot, 'bin/busybox'));
      if (!busybox) throw new Error(`${bbPkg.name} has no static bin/busybox`);
      const missing = missingApplets(busybox, APPLETS);
      if (missing.length) throw new Error(`${bbPkg.name} lacks applets: ${missing.join(' ')}`);
    }
    if (!busybox) throw new Error('no static busybox');

    const modules = collectModules(kroot, kernelVersion, GUEST_MODULES);
    log(`modules in load order: ${modules.order.join(' ')}` + (modules.builtin.length ? ` (built in: ${modules.builtin.join(' ')})` : ''));
    const initramfs = buildInitramfs({ init, busybox: readFileSync(busybox.path), applets: APPLETS, modules });

    mkdirSync(dir, { recursive: true });
    // Each file lands by rename and the manifest last, so a reader never sees a half-written guest.
    atomicCopy(vmlinuz, join(dir, KERNEL_FILE));
    atomicWrite(join(dir, INITRAMFS_FILE), initramfs);
    const manifest: Manifest = {
      format: FORMAT, key, kernelPackage: kernelPkg, kernelVersion, busybox: busybox.version,
      modules: modules.order, builtinModules: modules.builtin, kernel: KERNEL_FILE, initramfs: INITRAMFS_FILE,
    };
    atomicWrite(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    if (cached) pointLatest(key);
    log(`ready: ${dir} (initramfs ${(initramfs.length / 1024).toFixed(0)} KiB)`);
    const result = readComplete(dir, key);
    if (!result) throw new Error(`guest in ${dir} is incomplete after writing it`);
    return result;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function busyboxPackage(): Promise<DebPackage> {
  const version = await candidateVersion(BUSYBOX_PKG);
  if (!version) throw new Error(`apt knows no ${BUSYBOX_PKG} (and /bin/busybox is not a usable static busybox)`);
  return { name: BUSYBOX_PKG, version };
}

async function fetchAndExtract(pkg: DebPackage, scratch: string, dest: string, log: (s: string) => void): Promise<void> {
  log(`downloading ${pkg.name} ${pkg.version}`);
  const dl = join(scratch, `dl-${pkg.name}`);
  mkdirSync(dl);
  let deb: string;
  try {
    deb = await downloadDeb(pkg, dl);
  } catch (e) {
    throw new DownloadError((e as Error).message);
  }
  await extractDeb(deb, dest);
  rmSync(dl, { recursive: true, force: true });
}

/** The guest in `dir` if its manifest is there (and has `key`, when given) and its files exist. */
function readComplete(dir: string, key?: string): PreparedGuest | undefined {
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
  if (m.format !== FORMAT || (key !== undefined && m.key !== key)) return undefined;
  const kernel = join(dir, m.kernel);
  const initramfs = join(dir, m.initramfs);
  if (!existsSync(kernel) || !existsSync(initramfs)) return undefined;
  return { dir, kernel, initramfs, kernelVersion: m.kernelVersion };
}

function pointLatest(key: string): void {
  const link = join(guestCacheRoot(), 'latest');
  const tmp = `${link}.${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(key, tmp); // relative, so the cache survives moving the checkout
  renameSync(tmp, link);
}

function onlyEntry(dir: string): string {
  const entries = readdirSync(dir);
  if (entries.length !== 1) throw new Error(`expected one entry in ${dir}, found: ${entries.join(' ')}`);
  return entries[0];
}

function atomicWrite(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

function atomicCopy(src: string, dest: string): void {
  const tmp = `${dest}.${process.pid}.tmp`;
  copyFileSync(src, tmp);
  renameSync(tmp, dest);
}
