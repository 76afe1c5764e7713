/**
 * Picks kernel modules out of an extracted linux-image package, with their
 * dependency closure in load order.
 *
 * Debian's package ships no modules.dep (the postinst runs depmod), so the
 * dependencies come from each module's own `.modinfo depends=`, which is what
 * depmod would have written for them. Compressed modules are decompressed here
 * because busybox's insmod reads plain ELF only.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { modinfo } from './elf.js';

export interface ModuleSet {
  /** Module names (underscored) in an order where each follows its dependencies. */
  order: string[];
  /** Plain ELF contents by module name. */
  files: Map<string, Uint8Array>;
  /** Wanted modules that the kernel has built in (nothing to load). */
  builtin: string[];
}

const KO = /\.ko(\.xz|\.zst|\.gz)?$/;

/** The kernel's own name for a module: file names may use '-' where names use '_'. */
const canon = (name: string) => name.replace(/-/g, '_');

export function moduleDir(root: string, kver: string): string {
  for (const d of [join(root, 'lib/modules', kver), join(root, 'usr/lib/modules', kver)]) {
    if (existsSync(d)) return d;
  }
  throw new Error(`no modules directory for ${kver} under ${root}`);
}

export function collectModules(root: string, kver: string, wanted: readonly string[]): ModuleSet {
  const dir = moduleDir(root, kver);
  const paths = indexModules(dir);
  const builtinFile = join(dir, 'modules.builtin');
  const builtins = new Set(
    existsSync(builtinFile)
      ? readFileSync(builtinFile, 'utf8').split('\n').filter(Boolean).map((l) => canon(l.replace(/^.*\//, '').replace(KO, '')))
      : [],
  );

  const order: string[] = [];
  const files = new Map<string, Uint8Array>();
  const builtin: string[] = [];
  const visiting = new Set<string>();

  const visit = (name: string, wantedBy: string) => {
    if (files.has(name) || (builtins.has(name) && !paths.has(name))) return;
    if (visiting.has(name)) throw new Error(`module dependency cycle through ${name}`);
    const path = paths.get(name);
    if (!path) throw new Error(`module ${name} (needed by ${wantedBy}) is neither in ${dir} nor built in`);
    visiting.add(name);
    const elf = readModule(path);
    const deps = (modinfo(elf).get('depends') ?? []).flatMap((d) => d.split(',')).filter(Boolean);
    for (const d of deps) visit(canon(d), name);
    visiting.delete(name);
    files.set(name, elf);
    order.push(name);
  };

  for (const w of wanted.map(canon)) {
    if (!paths.has(w) && builtins.has(w)) { builtin.push(w); continue; }
    visit(w, 'the guest');
  }
  return { order, files, builtin };
}

function indexModules(dir: string, out = new Map<string, string>()): Map<string, string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) indexModules(p, out);
    else if (e.isFile() && KO.test(e.name)) out.set(canon(e.name.replace(KO, '')), p);
  }
  return out;
}

function readModule(path: string): Uint8Array {
  if (path.endsWith('.ko')) return readFileSync(path);
  if (path.endsWith('.gz')) return gunzipSync(readFileSync(path));
  // node:zlib has neither xz nor zstd; the tools are in every Debian base system (xz) or one apt away.
  const tool = path.endsWith('.xz') ? 'xz' : 'zstd';
  return execFileSync(tool, ['-dc', path], { maxBuffer: 256 << 20 });
}
