/**
 * `--no-api --config-file` and the API accept and reject the same
 * machine-config and boot-source bodies, with the same message: the API
 * answers 400 `<msg>`; the config file path logs
 * `Configuration for VMM from one single json failed: <section>: <msg>`
 * (or `<section>.<msg>` when msg starts with a field name) and exits 152.
 * Accepted bodies boot the hello guest (needs /dev/kvm).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runSparklerArgs, startApi, type ApiProcess } from '../helpers/api_process.js';
import { buildGuest } from '../helpers/guest_build.js';
import { requireKvm } from '../helpers/sparkler_run.js';

type Section = 'machine-config' | 'boot-source';

interface Case {
  section: Section;
  name: string;
  /** '<HELLO>' stands for the hello guest's ELF, '<DIR>' for a directory. */
  body: unknown;
  accept: boolean;
  /** The body breaks the spec on purpose (skip request validation). */
  malformed?: boolean;
}

const BAD_CONFIG_EXIT = 152;
const CONFIG_FAILED = 'Configuration for VMM from one single json failed: ';
const GREETING = /Hello from a sparkler test guest/;

const CASES: Case[] = [
  // machine-config, accepted
  { section: 'machine-config', name: '1 vCPU, 64 MiB', body: { vcpu_count: 1, mem_size_mib: 64 }, accept: true },
  { section: 'machine-config', name: '2 vCPUs, smt false', body: { vcpu_count: 2, mem_size_mib: 128, smt: false }, accept: true },
  { section: 'machine-config', name: '2 vCPUs, smt true', body: { vcpu_count: 2, mem_size_mib: 64, smt: true }, accept: true },
  { section: 'machine-config', name: 'all defaults spelled out', body: { vcpu_count: 1, mem_size_mib: 64, smt: false, track_dirty_pages: false, huge_pages: 'None' }, accept: true },
  { section: 'machine-config', name: 'cpu_template None', body: { vcpu_count: 1, mem_size_mib: 64, cpu_template: 'None' }, accept: true },
  // machine-config, rejected
  { section: 'machine-config', name: 'vcpu_count 0', body: { vcpu_count: 0, mem_size_mib: 64 }, accept: false, malformed: true },
  { section: 'machine-config', name: 'vcpu_count 33', body: { vcpu_count: 33, mem_size_mib: 64 }, accept: false, malformed: true },
  { section: 'machine-config', name: 'vcpu_count "2"', body: { vcpu_count: '2', mem_size_mib: 64 }, accept: false, malformed: true },
  { section: 'machine-config', name: 'mem_size_mib -1', body: { vcpu_count: 1, mem_size_mib: -1 }, accept: false, malformed: true },
  { section: 'machine-config', name: 'smt "yes"', body: { vcpu_count: 2, mem_size_mib: 64, smt: 'yes' }, accept: false, malformed: true },
  { section: 'machine-config', name: 'smt true with 3 vCPUs', body: { vcpu_count: 3, mem_size_mib: 64, smt: true }, accept: false },
  { section: 'machine-config', name: 'huge_pages "1G"', body: { vcpu_count: 1, mem_size_mib: 64, huge_pages: '1G' }, accept: false, malformed: true },
  { section: 'machine-config', name: 'unknown field', body: { vcpu_count: 1, mem_size_mib: 64, memory: 64 }, accept: false, malformed: true },
  { section: 'machine-config', name: 'missing mem_size_mib', body: { vcpu_count: 1 }, accept: false, malformed: true },
  { section: 'machine-config', name: 'an array', body: [1, 64], accept: false, malformed: true },
  { section: 'machine-config', name: 'cpu_template "Bogus"', body: { vcpu_count: 1, mem_size_mib: 64, cpu_template: 'Bogus' }, accept: false, malformed: true },
  { section: 'machine-config', name: 'cpu_template "T2" (static templates not supported)', body: { vcpu_count: 1, mem_size_mib: 64, cpu_template: 'T2' }, accept: false },
  // boot-source, accepted
  { section: 'boot-source', name: 'kernel only', body: { kernel_image_path: '<HELLO>' }, accept: true },
  { section: 'boot-source', name: 'kernel and boot_args', body: { kernel_image_path: '<HELLO>', boot_args: 'console=ttyS0 reboot=k panic=1' }, accept: true },
  // boot-source, rejected
  { section: 'boot-source', name: 'kernel that does not exist', body: { kernel_image_path: '/nonexistent/vmlinux' }, accept: false },
  { section: 'boot-source', name: 'kernel that is a directory', body: { kernel_image_path: '<DIR>' }, accept: false },
  { section: 'boot-source', name: 'initrd that does not exist', body: { kernel_image_path: '<HELLO>', initrd_path: '/nonexistent/initrd' }, accept: false },
  { section: 'boot-source', name: 'unknown field', body: { kernel_image_path: '<HELLO>', cmdline: 'x' }, accept: false, malformed: true },
  { section: 'boot-source', name: 'boot_args a number', body: { kernel_image_path: '<HELLO>', boot_args: 7 }, accept: false, malformed: true },
  { section: 'boot-source', name: 'kernel_image_path a number', body: { kernel_image_path: 42 }, accept: false, malformed: true },
  { section: 'boot-source', name: 'missing kernel_image_path', body: { boot_args: 'console=ttyS0' }, accept: false, malformed: true },
];

const GOOD: Record<Section, unknown> = {
  'boot-source': { kernel_image_path: '<HELLO>' },
  'machine-config': { vcpu_count: 1, mem_size_mib: 64 },
};

function resolve(v: unknown, kernel: string, dir: string): unknown {
  if (v === '<HELLO>') return kernel;
  if (v === '<DIR>') return dir;
  if (Array.isArray(v)) return v.map((x) => resolve(x, kernel, dir));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x, kernel, dir)]));
  return v;
}

describe('--config-file and the API accept and reject the same bodies (needs /dev/kvm)', () => {
  let vmm: ApiProcess;
  let kernel: string;
  let aDirectory: string;
  before(async () => {
    requireKvm();
    kernel = await buildGuest('hello');
    vmm = await startApi();
    aDirectory = path.join(vmm.dir, 'not-a-kernel');
    fs.mkdirSync(aDirectory);
  });
  after(async () => {
    await vmm?.stop();
  });

  it('has at least 10 bodies of each kind', () => {
    assert.ok(CASES.filter((c) => c.section === 'machine-config').length >= 10);
    assert.ok(CASES.filter((c) => c.section === 'boot-source').length >= 5);
    assert.ok(CASES.length >= 10);
  });

  for (const c of CASES) {
    it(`${c.section}: ${c.name} → ${c.accept ? 'accepted' : 'rejected'} by both`, async () => {
      requireKvm();
      const body = resolve(c.body, kernel, aDirectory);

      // Through the API.
      const r = await vmm.request('PUT', `/${c.section}`, body, { malformed: c.malformed });
      const apiMsg = r.status >= 400 ? (r.json as { fault_message: string }).fault_message : undefined;

      // Through --no-api --config-file, the other section good.
      const other: Section = c.section === 'boot-source' ? 'machine-config' : 'boot-source';
      const config = { [c.section]: body, [other]: resolve(GOOD[other], kernel, aDirectory) };
      const cfgPath = path.join(vmm.dir, 'vm.json');
      fs.writeFileSync(cfgPath, JSON.stringify(config));
      const run = await runSparklerArgs(['--no-api', '--config-file', cfgPath], { cwd: vmm.dir, timeoutMs: 20_000 });
      const line = run.stderr.split('\n').find((l) => l.includes(CONFIG_FAILED));
      const cfgMsg = line === undefined ? undefined : line.slice(line.indexOf(CONFIG_FAILED) + CONFIG_FAILED.length);
      const what = `config ${JSON.stringify(config)}\nAPI: ${r.status} ${r.text}\nconfig file: exit ${run.code} signal ${run.signal}${run.timedOut ? ' (timed out)' : ''}\n${run.stderr}\n${run.stdout}`;

      // Same verdict, and the expected one.
      assert.equal(r.status < 300, cfgMsg === undefined, `the API and the config file disagree\n${what}`);
      if (c.accept) {
        assert.equal(r.status, 204, what);
        assert.equal(run.code, 0, what);
        assert.match(run.stdout, GREETING, what);
      } else {
        assert.equal(r.status, 400, what);
        assert.equal(run.code, BAD_CONFIG_EXIT, what);
        assert.ok(apiMsg && cfgMsg, what);
        // The API's message appears in the config file's error line...
        assert.ok(cfgMsg.includes(apiMsg), `the config file's message does not contain the API's\n  API:         ${apiMsg}\n  config file: ${cfgMsg}`);
        // ...exactly prefixed by the section.
        assert.ok(
          cfgMsg === `${c.section}: ${apiMsg}` || cfgMsg === `${c.section}.${apiMsg}`,
          `expected "${c.section}: <msg>" or "${c.section}.<msg>"\n  API:         ${apiMsg}\n  config file: ${cfgMsg}`,
        );
      }
    });
  }
});
