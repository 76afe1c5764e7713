// The newc writer is checked against GNU cpio itself: what `cpio -t` lists
// and `cpio -i` unpacks is what the kernel's initramfs unpacker will see.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpioWriter, buildCpio, type CpioEntry } from '../../src/guest/cpio.js';

function cpio(args: string[], input: Uint8Array, cwd?: string): string {
  const r = spawnSync('cpio', args, { input, cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `cpio ${args.join(' ')}: ${r.stderr}`);
  // GNU cpio reports misaligned headers as "junk"; anything but the block count is a defect.
  assert.doesNotMatch(r.stderr, /junk|bad|premature|malformed/i, r.stderr);
  return r.stdout;
}

function withTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'sparkler-cpio-'));
  try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

/** Walks the archive's own headers: every entry 4-aligned, padding zero, trailer last. */
function walk(a: Uint8Array): string[] {
  const text = new TextDecoder();
  const names: string[] = [];
  let at = 0;
  const skipPad = () => {
    while (at % 4) { assert.equal(a[at], 0, `non-zero padding at ${at}`); at++; }
  };
  for (;;) {
    assert.equal(at % 4, 0);
    assert.equal(text.decode(a.subarray(at, at + 6)), '070701', `magic at ${at}`);
    const field = (i: number) => parseInt(text.decode(a.subarray(at + 6 + i * 8, at + 14 + i * 8)), 16);
    const size = field(6);
    const namesize = field(11);
    const name = text.decode(a.subarray(at + 110, at + 110 + namesize - 1));
    assert.equal(a[at + 110 + namesize - 1], 0, 'name NUL');
    at += 110 + namesize;
    skipPad();
    at += size;
    skipPad();
    if (name === 'TRAILER!!!') break;
    names.push(name);
  }
  assert.equal(at, a.length, 'nothing after the trailer');
  return names;
}

test('every name and data length mod 4 round-trips through cpio -i', () => {
  const entries: CpioEntry[] = [];
  for (let d = 0; d <= 8; d++) {
    entries.push({ type: 'dir', path: `d${d}` });
    for (let n = 1; n <= 8; n++) {
      const data = new Uint8Array(d).map((_, i) => (n * 31 + i * 7 + 1) & 0xff);
      entries.push({ type: 'file', path: `d${d}/${'n'.repeat(n)}`, data });
    }
  }
  const archive = buildCpio(entries);
  assert.equal(archive.length % 4, 0);
  assert.deepEqual(walk(archive), entries.map((e) => e.path));
  assert.deepEqual(cpio(['-t', '--quiet'], archive).trim().split('\n'), entries.map((e) => e.path));
  withTempDir((dir) => {
    cpio(['-i', '-d', '--quiet', '--no-absolute-filenames'], archive, dir);
    for (const e of entries) {
      if (e.type === 'file') assert.deepEqual(new Uint8Array(readFileSync(join(dir, e.path))), e.data, e.path);
      else assert.ok(lstatSync(join(dir, e.path)).isDirectory(), e.path);
    }
  });
});

test('modes, symlinks, directories, binary and UTF-8 names unpack as written', () => {
  const all = new Uint8Array(256).map((_, i) => i);
  const w = new CpioWriter()
    .addDirectory('/etc/')
    .addDirectory('etc/private', 0o700)
    .addDirectory('tmp', 0o1777)
    .addFile('/etc/hello.txt', 'hello\n')
    .addFile('etc/private/secret', 'x', 0o600)
    .addFile('bin/tool', all, 0o755)
    .addFile('etc/ünïcödé', 'utf8 name')
    .addSymlink('link-rel', 'etc/hello.txt')
    .addSymlink('link-abs', '/bin/busybox');
  const isRoot = process.getuid?.() === 0;
  if (isRoot) w.addCharDevice('console', 5, 1, 0o620);
  const archive = w.finish();

  const listed = cpio(['-t', '--quiet'], archive).trim().split('\n');
  assert.deepEqual(listed.slice(0, 9), ['etc', 'etc/private', 'tmp', 'etc/hello.txt', 'etc/private/secret', 'bin/tool', 'etc/ünïcödé', 'link-rel', 'link-abs']);

  withTempDir((dir) => {
    // -d makes bin/ for bin/tool, which has no entry of its own.
    cpio(['-i', '-d', '--quiet', '--no-absolute-filenames'], archive, dir);
    const mode = (p: string) => lstatSync(join(dir, p)).mode & 0o7777;
    assert.ok(lstatSync(join(dir, 'etc')).isDirectory());
    assert.equal(mode('etc/private'), 0o700);
    assert.equal(mode('tmp'), 0o1777);
    assert.equal(readFileSync(join(dir, 'etc/hello.txt'), 'utf8'), 'hello\n');
    assert.equal(mode('etc/hello.txt'), 0o644);
    assert.equal(mode('etc/private/secret'), 0o600);
    assert.equal(mode('bin/tool'), 0o755);
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'bin/tool'))), all);
    assert.equal(readFileSync(join(dir, 'etc/ünïcödé'), 'utf8'), 'utf8 name');
    assert.ok(lstatSync(join(dir, 'link-rel')).isSymbolicLink());
    assert.equal(readlinkSync(join(dir, 'link-rel')), 'etc/hello.txt');
    assert.equal(readlinkSync(join(dir, 'link-abs')), '/bin/busybox');
    if (isRoot) {
      const st = lstatSync(join(dir, 'console'));
      assert.ok(st.isCharacterDevice());
      assert.equal(st.rdev, (5 << 8) | 1);
      assert.equal(st.mode & 0o7777, 0o620);
    }
  });
});

test('the verbose listing shows types, modes, device numbers and epoch mtimes', () => {
  const archive = new CpioWriter().addDirectory('d', 0o750).addCharDevice('null', 1, 3, 0o666).addSymlink('l', 'd').finish();
  const lines = cpio(['-tv', '--quiet'], archive).trim().split('\n');
  assert.match(lines[0], /^drwxr-x--- .* 1970 d$/);
  assert.match(lines[1], /^crw-rw-rw- .*\s1,\s+3 .* 1970 null$/);
  assert.match(lines[2], /^lrwxrwxrwx .* l -> d$/);
});

test('an empty archive is just the trailer', () => {
  const archive = new CpioWriter().finish();
  assert.deepEqual(walk(archive), []);
  assert.equal(cpio(['-t', '--quiet'], archive), '');
});

test('same inputs give the same bytes', () => {
  const make = () => buildCpio([{ type: 'file', path: 'a', data: 'x' }, { type: 'symlink', path: 'b', target: 'a' }]);
  assert.deepEqual(make(), make());
});

test('bad entries are refused', () => {
  assert.throws(() => new CpioWriter().addFile('a', 'x').addFile('/a', 'y'), /duplicate/);
  assert.throws(() => new CpioWriter().addFile('../x', 'x'), /\.\./);
  assert.throws(() => new CpioWriter().addFile('/', 'x'), /empty path/);
  assert.throws(() => new CpioWriter().addFile('TRAILER!!!', 'x'), /reserved/);
  assert.throws(() => new CpioWriter().addFile('a', 'x', 0o100644), /mode/);
  assert.throws(() => new CpioWriter().addSymlink('a', ''), /empty symlink/);
  const w = new CpioWriter();
  w.finish();
  assert.throws(() => w.finish(), /finished/);
  assert.throws(() => w.addDirectory('late'), /finished/);
});
