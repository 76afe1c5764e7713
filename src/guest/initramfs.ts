/**
 * Lays out the guest's initramfs: /init, a static busybox with applet
 * symlinks in /bin, flat /lib/modules/<name>.ko plus a load-order list.
 */

import { gzipSync } from 'node:zlib';
import { CpioWriter } from './cpio.js';
import type { ModuleSet } from './modules.js';

export interface InitramfsParts {
  init: string;
  busybox: Uint8Array;
  applets: readonly string[];
  modules: ModuleSet;
}

export function buildInitramfs(p: InitramfsParts): Uint8Array {
  const w = new CpioWriter();
  for (const d of ['bin', 'dev', 'proc', 'sys', 'lib', 'lib/modules']) w.addDirectory(d);
  w.addDirectory('tmp', 0o1777);
  w.addDirectory('root', 0o700);
  // The kernel opens /dev/console for init's stdio before init can mount
  // devtmpfs, so the node must exist in the archive or /init prints nothing.
  w.addCharDevice('dev/console', 5, 1, 0o600);
  w.addCharDevice('dev/null', 1, 3, 0o666);
  w.addFile('bin/busybox', p.busybox, 0o755);
  for (const a of p.applets) w.addSymlink(`bin/${a}`, 'busybox');
  for (const name of p.modules.order) {
    const ko = p.modules.files.get(name);
    if (!ko) throw new Error(`module ${name} has no contents`);
    w.addFile(`lib/modules/${name}.ko`, ko, 0o644);
  }
  w.addFile('lib/modules/load-order', p.modules.order.map((m) => m + '\n').join(''), 0o644);
  w.addFile('init', p.init, 0o755);
  return gzipSync(w.finish(), { level: 9 });
}
