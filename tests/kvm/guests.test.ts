/**
 * The test guests themselves (no KVM needed): they build with the host's gcc,
 * are ELF64 executables the VMM's loader accepts (PT_LOADs and entry >= 1 MiB),
 * and contain no x87/SSE/MMX instruction except the fpu guest's deliberate ones
 * (this host's KVM, kvm_pvm, cannot emulate most of them).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { GUESTS, buildGuest, checkGuestElf, guestSourceDir } from '../helpers/guest_build.js';

const FP_INSN = /\b(xmm\d+|ymm\d+|zmm\d+|%st\b|%st\(|%mm\d)|\s(f[a-z0-9]+|fx(save|rstor)\w*|ldmxcsr|stmxcsr|emms)\s/;

for (const name of GUESTS) {
  test(`guest '${name}' builds to a loadable ELF without unintended x87/SSE`, async () => {
    const elf = await buildGuest(name);
    const { entry, loads } = checkGuestElf(fs.readFileSync(elf), name);
    assert.ok(entry >= 0x100000, `entry 0x${entry.toString(16)}`);
    for (const l of loads) assert.ok(l.paddr >= 0x100000);

    const dis = execFileSync('objdump', ['-d', '--no-show-raw-insn', elf], { encoding: 'utf8' });
    const fpLines = dis.split('\n').filter((l) => /^\s+[0-9a-f]+:/.test(l) && FP_INSN.test(l + ' '));
    if (name === 'fpu') {
      assert.deepEqual(
        fpLines.map((l) => l.trim().split(/\s+/)[1]).sort(),
        ['fld1', 'fstp', 'pxor'],
        `fpu guest: expected exactly fld1, fstp and pxor:\n${fpLines.join('\n')}`,
      );
    } else {
      assert.deepEqual(fpLines, [], `guest '${name}' contains x87/SSE/MMX instructions:\n${fpLines.join('\n')}`);
    }
  });
}

test('the guest cache: same sources give the cached ELF, a changed source rebuilds', async () => {
  const a = await buildGuest('halt');
  assert.equal(await buildGuest('halt'), a, 'same sources, same cached ELF');
  assert.match(a, /\.cache\/test-guests\/halt-[0-9a-f]{16}\.elf$/);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-guests-'));
  try {
    const src = path.join(tmp, 'src');
    fs.cpSync(guestSourceDir, src, { recursive: true });
    const cacheDir = path.join(tmp, 'cache');
    const first = await buildGuest('halt', { sourceDir: src, cacheDir });
    assert.equal(await buildGuest('halt', { sourceDir: src, cacheDir }), first);
    fs.appendFileSync(path.join(src, 'common', 'lib.c'), '\n/* changed */\n');
    const second = await buildGuest('halt', { sourceDir: src, cacheDir });
    assert.notEqual(second, first, 'a changed common source must give a new build');
    assert.ok(fs.existsSync(second));
    assert.ok(!fs.existsSync(first), 'the stale build is removed');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
