/**
 * Firecracker's getting-started flow with `curl --unix-socket`, as a user
 * would run it, against Debian's cloud kernel: configure, InstanceStart, the
 * guest boots, PATCH /vm pauses (no guest progress, GET / says Paused) and
 * resumes (the guest's clock does not jump over the pause), SendCtrlAltDel,
 * and the guest's reboot ends the VMM with status 0. Every request and
 * response is checked against Firecracker's published API spec.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { prepareGuest } from '../../src/guest/assets.js';
import { freshDir, runWithLinuxKvm } from '../helpers/lab.js';
import { validateRequest, validateResponse } from '../helpers/openapi.js';
import { projectRoot, requireKvm } from '../helpers/sparkler_run.js';

interface Step { method: string; path: string; status: number; req?: unknown; resp?: unknown }

let dir = '';
let steps: Step[] = [];
let labLog = '';

function readIf(p: string): string | undefined {
  return fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : undefined;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined || text === '') return undefined;
  return JSON.parse(text) as unknown;
}

before(async () => {
  requireKvm();
  const guest = await prepareGuest({ log: () => undefined });
  dir = freshDir('api-flow');
  const r = await runWithLinuxKvm(['bash', path.join(projectRoot, 'tests/lab/api_flow.sh'), dir, guest.kernel, guest.initramfs], dir, 600_000);
  labLog = `lab exit ${r.code} after ${r.durationMs} ms\n${r.stderr.slice(-2000)}\n--- console ---\n${(readIf(path.join(dir, 'console.txt')) ?? '').slice(-2000)}\n--- vmm.log ---\n${(readIf(path.join(dir, 'vmm.log')) ?? '').slice(-2000)}\n--- errors ---\n${readIf(path.join(dir, 'errors.txt')) ?? ''}`;
  const stepDir = path.join(dir, 'steps');
  const ids = fs.existsSync(stepDir) ? [...new Set(fs.readdirSync(stepDir).map((f) => Number(f.split('.')[0])))].sort((a, b) => a - b) : [];
  steps = ids.map((n) => {
    const [line, status] = fs.readFileSync(path.join(stepDir, `${n}.meta`), 'utf8').trim().split('\n');
    const [method, p] = line!.split(' ');
    return { method: method!, path: p!, status: Number(status), req: parseJson(readIf(path.join(stepDir, `${n}.req`))), resp: parseJson(readIf(path.join(stepDir, `${n}.resp`))) };
  });
});

function step(i: number): Step {
  const s = steps[i];
  assert.ok(s, `request ${i + 1} was not made\n${labLog}`);
  return s;
}

test('every request and response of the flow matches the Firecracker API spec', () => {
  assert.ok(steps.length >= 12, `only ${steps.length} requests were made\n${labLog}`);
  for (const s of steps) {
    if (s.req !== undefined) validateRequest(s.method, s.path, s.req);
    // GET /vm/config reports unset sections as null, as Firecracker does (the yaml omits `x-nullable`).
    validateResponse(s.method, s.path, s.status, s.resp, { nullableOptional: s.path === '/vm/config' });
  }
});

test('configure and InstanceStart: 204s, GET / goes from "Not started" to "Running"', () => {
  assert.deepEqual((step(0).resp as { state: string }).state, 'Not started');
  for (const i of [1, 2, 4]) assert.equal(step(i).status, 204, `${step(i).method} ${step(i).path}: ${JSON.stringify(step(i).resp)}\n${labLog}`);
  assert.equal((step(3).resp as { vcpu_count: number }).vcpu_count, 2);
  assert.equal((step(5).resp as { state: string }).state, 'Running');
  const console = readIf(path.join(dir, 'console.txt')) ?? '';
  assert.match(console, /SPARKLER-GUEST-UP/, labLog);
  assert.match(console, /^cpus=2/m, labLog);
});

test('PATCH /vm Paused stops the guest, Resumed restarts it, and its clock does not jump', () => {
  assert.equal(step(6).status, 204, labLog);
  assert.equal((step(7).resp as { state: string }).state, 'Paused');
  assert.equal(readIf(path.join(dir, 'pause.txt'))?.trim(), 'ticks_during_pause=0', `the guest kept running while paused\n${labLog}`);
  assert.equal(step(8).status, 204, labLog);
  assert.equal((step(9).resp as { state: string }).state, 'Running');
  // Ticks print the guest's uptime once a second; across a ≥ 4 s pause it must advance by about one tick, not by the pause.
  const ups = [...(readIf(path.join(dir, 'console.txt')) ?? '').matchAll(/^tick (\d+) uptime=([\d.]+)/gm)].map((m) => Number(m[2]));
  const maxGap = Math.max(...ups.slice(1).map((u, i) => u - ups[i]!));
  assert.ok(ups.length >= 4 && maxGap < 3.5, `guest uptime jumped by ${maxGap.toFixed(2)} s between ticks (${ups.join(', ')})\n${labLog}`);
});

test('GET /vm/config returns the configuration that was PUT', () => {
  const cfg = step(10).resp as { 'machine-config': { vcpu_count: number; mem_size_mib: number }; 'boot-source': { boot_args: string } };
  assert.equal(step(10).status, 200, labLog);
  assert.equal(cfg['machine-config'].vcpu_count, 2);
  assert.equal(cfg['machine-config'].mem_size_mib, 256);
  assert.match(cfg['boot-source'].boot_args, /sparkler\.cmd=idle/);
});

test('SendCtrlAltDel makes the guest reboot, which ends the VMM with status 0', () => {
  assert.equal(step(11).status, 204, `${JSON.stringify(step(11).resp)}\n${labLog}`);
  assert.equal(readIf(path.join(dir, 'exit.txt'))?.trim(), '0', labLog);
  // The guest would tick 10 times before rebooting on its own: it rebooted on Ctrl-Alt-Del instead.
  const ticks = [...(readIf(path.join(dir, 'console.txt')) ?? '').matchAll(/^tick \d+/gm)].length;
  assert.ok(ticks < 10, `the guest ticked ${ticks} times: Ctrl-Alt-Del did not reboot it\n${labLog}`);
});
