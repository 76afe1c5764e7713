/**
 * The guest's userland is one static busybox. The host's /bin/busybox is
 * used when it is static and has every applet the init needs (Debian's
 * busybox-static package installs exactly that); otherwise the caller
 * unpacks busybox-static's .deb and inspects that binary instead.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { isStaticElf } from './elf.js';

export interface Busybox {
  path: string;
  /** First line of its banner, e.g. "BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1)". */
  version: string;
  applets: Set<string>;
}

/** Describes a static busybox at `path`, or undefined if it is absent, dynamic or does not run. */
export function inspectBusybox(path: string): Busybox | undefined {
  if (!existsSync(path)) return undefined;
  try {
    // A dynamic busybox would miss its libc inside the initramfs.
    if (!isStaticElf(readFileSync(path))) return undefined;
    const banner = execFileSync(path, ['--help'], { encoding: 'utf8' }).split('\n')[0];
    const list = execFileSync(path, ['--list'], { encoding: 'utf8' });
    const version = banner.replace(/\s*multi-call binary\.?$/, '').trim();
    return { path, version, applets: new Set(list.split('\n').filter(Boolean)) };
  } catch {
    return undefined;
  }
}

export function missingApplets(bb: Busybox, needed: readonly string[]): string[] {
  return needed.filter((a) => !bb.applets.has(a));
}
