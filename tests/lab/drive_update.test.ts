/**
 * PATCH /drives/{id} on a running microVM, driven with curl as a user would,
 * against Debian's cloud kernel: swapping the backing file for a larger one
 * reaches the guest (new capacity through the config-change interrupt, new
 * contents), and a rate limiter set by PATCH on the live drive holds its
 * reads to the configured rate (±15%). Requests and responses are checked
 * against Firecracker's published API spec.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { prepareGuest } from '../../src/guest/assets.js';
import { freshDir, runWithLinuxKvm } from '../helpers/lab.js';
import { validateRequest, validateResponse } from '../helpers/openapi.js';
import { projectRoot, requireKvm } from '../helpers/sparkler_run.js';

const MiB = 1024 * 1024;
const FIRST_BYTES = 8 * MiB;
const SECOND_BYTES = 32 * MiB;
const FIRST_MARK = 'first-backing-01';
const SECOND_MARK = 'second-backing-2';
/** The limiter PATCHed onto the live drive: 512 KiB every 64 ms = 8 MiB/s. */
const RATE_BUCKET_BYTES = 512 * 1024;
const RATE_REFILL_MS = 64;
const RATE_BYTES_PER_S = (RATE_BUCKET_BYTES * 1000) / RATE_REFILL_MS;

interface Step { method: string; path: string; status: number; req?: unknown; resp?: unknown }

let dir = '';
let steps: Step[] = [];
let consoleText = '';
let labLog = '';

function readIf(p: string): string | undefined {
  return fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : undefined;
}

/** A sparse image of `size` bytes whose first bytes are `mark`. */
function image(name: string, size: number, mark: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, mark);
  fs.truncateSync(file, size);
  return file;
}

before(async () => {
  requireKvm();
  const guest = await prepareGuest({ log: () => undefined });
  dir = freshDir('drive-update');
  const first = image('first.img', FIRST_BYTES, FIRST_MARK);
  const second = image('second.img', SECOND_BYTES, SECOND_MARK);
  const r = await runWithLinuxKvm(
    ['bash', path.join(projectRoot, 'tests/lab/drive_update.sh'), dir, guest.kernel, guest.initramfs, first, second, String(RATE_BUCKET_BYTES), String(RATE_REFILL_MS)],
    dir, 600_000,
  );
  consoleText = readIf(path.join(dir, 'console.txt')) ?? '';
  labLog = `lab exit ${r.code} after ${r.durationMs} ms\n${r.stderr.slice(-2000)}\n--- console ---\n${consoleText.slice(-2500)}\n--- vmm.log ---\n${(readIf(path.join(dir, 'vmm.log')) ?? '').slice(-2000)}\n--- errors ---\n${readIf(path.join(dir, 'errors.txt')) ?? ''}`;
  const stepDir = path.join(dir, 'steps');
  const ids = fs.existsSync(stepDir) ? [...new Set(fs.readdirSync(stepDir).map((f) => Number(f.split('.')[0])))].sort((a, b) => a - b) : [];
  steps = ids.map((n) => {
    const [line, status] = fs.readFileSync(path.join(stepDir, `${n}.meta`), 'utf8').trim().split('\n');
    const [method, p] = line!.split(' ');
    const body = (f: string): unknown => {
      const t = readIf(path.join(stepDir, `${n}.${f}`));
      return t === undefined || t === '' ? undefined : JSON.parse(t) as unknown;
    };
    return { method: method!, path: p!, status: Number(status), req: body('req'), resp: body('resp') };
  });
});

function step(method: string, p: string, nth = 0): Step {
  const s = steps.filter((x) => x.method === method && x.path === p)[nth];
  assert.ok(s, `request ${nth + 1} of ${method} ${p} was not made\n${labLog}`);
  return s;
}

function driveLine(tag: string): { size: number; head: string } {
  const m = new RegExp(`^${tag} size=(\\d+) head=(.*?)\\r?$`, 'm').exec(consoleText);
  assert.ok(m, `the guest printed no ${tag} line\n${labLog}`);
  return { size: Number(m[1]), head: m[2]! };
}

test('every request and response matches the Firecracker API spec; the PATCHes answer 204', () => {
  assert.ok(steps.length >= 7, `only ${steps.length} requests were made\n${labLog}`);
  for (const s of steps) {
    if (s.req !== undefined) validateRequest(s.method, s.path, s.req);
    validateResponse(s.method, s.path, s.status, s.resp, { nullableOptional: s.path === '/vm/config' });
  }
  for (const s of steps.filter((x) => x.method !== 'GET')) assert.equal(s.status, 204, `${s.method} ${s.path}: ${JSON.stringify(s.resp)}\n${labLog}`);
});

test('PATCH path_on_host: the guest sees the new file\'s size and contents', () => {
  const before = driveLine('drive-before');
  assert.equal(before.size, FIRST_BYTES / 512, `capacity before the PATCH (512-byte sectors)\n${labLog}`);
  assert.equal(before.head, FIRST_MARK, labLog);
  assert.equal(step('PATCH', '/drives/data', 0).status, 204, labLog);
  const after = driveLine('drive-after');
  assert.equal(after.size, SECOND_BYTES / 512, `the guest did not see the new capacity\n${labLog}`);
  assert.equal(after.head, SECOND_MARK, `the guest still reads the old file\n${labLog}`);
});

test('GET /vm/config reports the drive as PATCHed: the new file and the rate limiter', () => {
  const cfg = step('GET', '/vm/config').resp as { drives: Array<{ drive_id: string; path_on_host: string; rate_limiter?: { bandwidth?: { size: number; refill_time: number } } | null }> };
  const d = cfg.drives.find((x) => x.drive_id === 'data');
  assert.ok(d, labLog);
  assert.equal(path.basename(d.path_on_host), 'second.img');
  assert.deepEqual({ size: d.rate_limiter?.bandwidth?.size, refill_time: d.rate_limiter?.bandwidth?.refill_time }, { size: RATE_BUCKET_BYTES, refill_time: RATE_REFILL_MS });
});

test('PATCH rate_limiter on the live drive: the guest reads at the configured rate (±15%)', () => {
  assert.equal(step('PATCH', '/drives/data', 1).status, 204, labLog);
  const m = /^drive-rate bytes=(\d+) start=([\d.]+) end=([\d.]+)/m.exec(consoleText);
  assert.ok(m, `the guest printed no drive-rate line\n${labLog}`);
  const rate = Number(m[1]) / (Number(m[3]) - Number(m[2]));
  const ratio = rate / RATE_BYTES_PER_S;
  assert.ok(ratio > 0.85 && ratio < 1.15, `read ${(rate / MiB).toFixed(2)} MiB/s, configured ${(RATE_BYTES_PER_S / MiB).toFixed(2)} MiB/s (ratio ${ratio.toFixed(3)})\n${labLog}`);
});

test('the guest reboots and the VMM exits with status 0', () => {
  assert.equal(readIf(path.join(dir, 'exit.txt'))?.trim(), '0', labLog);
});
