/**
 * Builds sparkler's freestanding test guests (tests/guests/) with the host's gcc
 * at test time and caches them in <root>/.cache/test-guests/, keyed by a hash of
 * the sources, the flags and the compiler version (a changed source rebuilds).
 *
 * A guest NAME is made of tests/guests/common/* (entry, serial, IDT, PIC, paging),
 * tests/guests/NAME.c and any tests/guests/NAME_*.{c,S} (e.g. smp_tramp.S),
 * linked by tests/guests/guest.ld into an ELF64 executable at 2 MiB.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from './sparkler_run.js';

const execFileP = promisify(execFile);

export const GUESTS = ['hello', 'irq', 'smp', 'triplefault', 'fpu', 'halt'] as const;
export type GuestName = (typeof GUESTS)[number];

export const guestSourceDir: string = path.join(projectRoot, 'tests', 'guests');
export const guestCacheDir: string = path.join(projectRoot, '.cache', 'test-guests');

/** Compiler flags: no SSE/x87/MMX anywhere (kvm_pvm cannot emulate them), no PIC, no libc. */
export const GUEST_CFLAGS: readonly string[] = [
  '-ffreestanding',
  '-nostdlib',
  '-static',
  '-mgeneral-regs-only',
  '-mno-sse',
  '-mno-mmx',
  '-mno-80387',
  '-mno-red-zone',
  '-fno-pic',
  '-no-pie',
  '-O2',
  '-fno-builtin',
  '-fno-stack-protector',
  '-fno-asynchronous-unwind-tables',
  '-fno-unwind-tables',
  '-fcf-protection=none',
  '-Wall',
  '-Wextra',
  '-Wl,--build-id=none',
  '-Wl,-z,noexecstack',
  '-Wl,-z,max-page-size=4096',
];

const CC = process.env.SPARKLER_GUEST_CC ?? 'gcc';

let compilerIdentity: Promise<string> | undefined;
function compilerVersion(): Promise<string> {
  compilerIdentity ??= execFileP(CC, ['--version']).then(
    (r) => r.stdout.split('\n', 1)[0] ?? '',
    (e: NodeJS.ErrnoException) => {
      throw new Error(
        e.code === 'ENOENT'
          ? `${CC} not found: the KVM tests build their guests with gcc (Debian: apt-get install gcc)`
          : `${CC} --version failed: ${e.message}`,
      );
    },
  );
  return compilerIdentity;
}

export interface BuildOptions {
  /** Where the guest sources are (default: tests/guests of this project). */
  sourceDir?: string;
  /** Where built ELFs are cached (default: .cache/test-guests of this project). */
  cacheDir?: string;
}

/** The source files of a guest, compile units first (order matters for the link). */
export function guestSources(name: string, sourceDir: string = guestSourceDir): { units: string[]; all: string[] } {
  const common = path.join(sourceDir, 'common');
  const list = (dir: string, pred: (f: string) => boolean) =>
    fs
      .readdirSync(dir)
      .filter(pred)
      .sort()
      .map((f) => path.join(dir, f));
  const commonFiles = list(common, (f) => /\.(c|S|h)$/.test(f));
  const own = list(sourceDir, (f) => f === `${name}.c` || f === `${name}.S` || (f.startsWith(`${name}_`) && /\.(c|S|h)$/.test(f)));
  if (!own.some((f) => /\.(c|S)$/.test(f))) {
    throw new Error(`unknown test guest '${name}': no ${name}.c or ${name}.S in ${sourceDir}`);
  }
  const all = [...commonFiles, ...own, path.join(sourceDir, 'guest.ld')];
  // start.S first so that _start leads .text (the link script also puts .text.start first).
  const units = [...commonFiles, ...own].filter((f) => /\.(c|S)$/.test(f)).sort((a, b) => rank(a) - rank(b));
  return { units, all };
}

function rank(f: string): number {
  return path.basename(f) === 'start.S' ? 0 : f.includes(`${path.sep}common${path.sep}`) ? 1 : 2;
}

const inflight = new Map<string, Promise<string>>();

/** Builds (or finds in the cache) the guest NAME; returns the absolute path of its ELF. */
export function buildGuest(name: GuestName | string, opts: BuildOptions = {}): Promise<string> {
  const sourceDir = opts.sourceDir ?? guestSourceDir;
  const cacheDir = opts.cacheDir ?? guestCacheDir;
  if (opts.sourceDir || opts.cacheDir) return build(name, sourceDir, cacheDir);
  let p = inflight.get(name);
  if (!p) {
    p = build(name, sourceDir, cacheDir);
    inflight.set(name, p);
    p.catch(() => inflight.delete(name));
  }
  return p;
}

async function build(name: string, sourceDir: string, cacheDir: string): Promise<string> {
  const { units, all } = guestSources(name, sourceDir);
  const hash = createHash('sha256');
  hash.update(await compilerVersion());
  hash.update('\0' + GUEST_CFLAGS.join(' ') + '\0');
  for (const f of all) {
    hash.update(path.relative(sourceDir, f) + '\0');
    hash.update(fs.readFileSync(f));
    hash.update('\0');
  }
  const key = hash.digest('hex').slice(0, 16);
  fs.mkdirSync(cacheDir, { recursive: true });
  const out = path.join(cacheDir, `${name}-${key}.elf`);
  if (fs.existsSync(out)) return out;

  const tmp = path.join(cacheDir, `.${name}-${key}.${process.pid}.tmp`);
  const args = [
    ...GUEST_CFLAGS,
    '-I',
    sourceDir,
    '-I',
    path.join(sourceDir, 'common'),
    '-T',
    path.join(sourceDir, 'guest.ld'),
    '-o',
    tmp,
    ...units,
  ];
  try {
    await execFileP(CC, args, { cwd: sourceDir });
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    const err = e as Error & { stderr?: string };
    throw new Error(`building test guest '${name}' failed: ${CC} ${args.join(' ')}\n${err.stderr ?? err.message}`);
  }
  checkGuestElf(fs.readFileSync(tmp), name);
  fs.renameSync(tmp, out); // atomic: concurrent test processes may build the same guest
  // Drop older builds of this guest.
  for (const f of fs.readdirSync(cacheDir)) {
    if (f.startsWith(`${name}-`) && f.endsWith('.elf') && f !== path.basename(out)) {
      fs.rmSync(path.join(cacheDir, f), { force: true });
    }
  }
  return out;
}

export interface ElfLoad {
  paddr: number;
  vaddr: number;
  filesz: number;
  memsz: number;
  flags: number;
}

/** Checks what the VMM's ELF loader requires: ELF64 x86_64 EXEC, PT_LOADs at p_paddr >= 1 MiB, entry inside one. */
export function checkGuestElf(buf: Buffer, label = 'guest'): { entry: number; loads: ElfLoad[] } {
  const fail = (why: string): never => {
    throw new Error(`${label}: bad guest ELF: ${why}`);
  };
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) fail('no ELF magic');
  if (buf[4] !== 2 || buf[5] !== 1) fail('not ELF64 little endian');
  if (buf.readUInt16LE(16) !== 2) fail('not ET_EXEC');
  if (buf.readUInt16LE(18) !== 62) fail('not x86_64');
  const entry = Number(buf.readBigUInt64LE(24));
  const phoff = Number(buf.readBigUInt64LE(32));
  const phentsize = buf.readUInt16LE(54);
  const phnum = buf.readUInt16LE(56);
  const loads: ElfLoad[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (buf.readUInt32LE(o) !== 1) continue; // PT_LOAD
    loads.push({
      flags: buf.readUInt32LE(o + 4),
      vaddr: Number(buf.readBigUInt64LE(o + 16)),
      paddr: Number(buf.readBigUInt64LE(o + 24)),
      filesz: Number(buf.readBigUInt64LE(o + 32)),
      memsz: Number(buf.readBigUInt64LE(o + 40)),
    });
  }
  if (loads.length === 0) fail('no PT_LOAD segment');
  for (const l of loads) {
    if (l.paddr < 0x100000) fail(`PT_LOAD at p_paddr 0x${l.paddr.toString(16)} < 1 MiB`);
    if (l.paddr !== l.vaddr) fail('p_paddr != p_vaddr (the guests run identity mapped)');
    if (l.memsz < l.filesz) fail('p_memsz < p_filesz');
  }
  if (entry < 0x100000) fail(`entry 0x${entry.toString(16)} < 1 MiB`);
  if (!loads.some((l) => entry >= l.vaddr && entry < l.vaddr + l.memsz && (l.flags & 1) !== 0)) {
    fail(`entry 0x${entry.toString(16)} is not inside an executable PT_LOAD`);
  }
  return { entry, loads };
}
