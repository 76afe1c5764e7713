/**
 * A microVM's life through the API, black box, with the small test guests
 * (needs /dev/kvm: fails, never skips, without it). Every request and answer
 * is validated against the spec.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { ApiError, Client } from '../../src/client/index.js';
import { makeTempDir, startApi, withoutNullProperties, type ApiProcess } from '../helpers/api_process.js';
import { buildGuest } from '../helpers/guest_build.js';
import { validateRequest, validateResponse } from '../helpers/openapi.js';
import { hasStackTrace, requireKvm } from '../helpers/sparkler_run.js';

const GREETING = /Hello from a sparkler test guest/;

/** A typed-client call of a 204 endpoint, with the request validated first and the (empty) answer after. */
async function clientPut<B>(method: string, urlPath: string, body: B, call: (b: B) => Promise<void>): Promise<void> {
  validateRequest(method, urlPath, body);
  const result = await call(body);
  validateResponse(method, urlPath, 204, result);
}

function state(json: unknown): string {
  return (json as { state: string }).state;
}

describe('lifecycle through the API (needs /dev/kvm)', () => {
  const procs: ApiProcess[] = [];
  after(async () => {
    for (const p of procs) await p.stop('SIGKILL');
  });

  it('hello guest: configure, InstanceStart → 204, the greeting on stdout, exit 0 by itself', async () => {
    requireKvm();
    const kernel = await buildGuest('hello');
    const vmm = await startApi();
    procs.push(vmm);
    const client = new Client({ socketPath: vmm.socketPath });

    const bootSource = { kernel_image_path: kernel, boot_args: 'console=ttyS0 reboot=k panic=1' };
    const machineConfig = { vcpu_count: 1, mem_size_mib: 64 };
    await clientPut('PUT', '/boot-source', bootSource, (b) => client.putBootSource(b));
    await clientPut('PUT', '/machine-config', machineConfig, (b) => client.putMachineConfig(b));
    const info = await client.describeInstance();
    validateResponse('GET', '/', 200, info);
    assert.equal(info.state, 'Not started');

    const start = await vmm.request('PUT', '/actions', { action_type: 'InstanceStart' });
    assert.equal(start.status, 204, start.text);
    assert.equal(start.text, '');

    await vmm.waitFor(GREETING, 'stdout', 20_000);
    const end = await vmm.waitExit(20_000);
    assert.equal(end.code, 0, `the VMM should exit 0 after the guest's reset\n${vmm.describe()}`);
    assert.match(end.stdout, GREETING);
    assert.equal(hasStackTrace(end.stderr), false, vmm.describe());
  });

  it('halt guest: Running, Paused, Resumed, /vm/config, SendCtrlAltDel, no reconfiguration, SIGTERM → 0', async () => {
    requireKvm();
    const kernel = await buildGuest('halt');
    const vmm = await startApi();
    procs.push(vmm);
    const client = new Client({ socketPath: vmm.socketPath });

    const bootSource = { kernel_image_path: kernel, boot_args: 'console=ttyS0 reboot=k panic=1' };
    const machineConfig = { vcpu_count: 2, mem_size_mib: 96, smt: false, track_dirty_pages: false, huge_pages: 'None' as const };
    assert.equal((await vmm.request('PUT', '/boot-source', bootSource)).status, 204);
    assert.equal((await vmm.request('PUT', '/machine-config', machineConfig)).status, 204);
    assert.equal(state((await vmm.request('GET', '/')).json), 'Not started');

    const start = await vmm.request('PUT', '/actions', { action_type: 'InstanceStart' });
    assert.equal(start.status, 204, start.text);
    await vmm.waitFor(/halting/, 'stdout', 20_000);

    let r = await vmm.request('GET', '/');
    assert.equal(r.status, 200);
    assert.equal(state(r.json), 'Running');

    r = await vmm.request('PATCH', '/vm', { state: 'Paused' });
    assert.equal(r.status, 204, r.text);
    assert.equal(state((await vmm.request('GET', '/')).json), 'Paused');
    // Pausing a paused VM is not an error.
    assert.equal((await vmm.request('PATCH', '/vm', { state: 'Paused' })).status, 204);

    r = await vmm.request('PATCH', '/vm', { state: 'Resumed' });
    assert.equal(r.status, 204, r.text);
    assert.equal(state((await vmm.request('GET', '/')).json), 'Running');

    // GET /vm/config: what was configured (validated against the spec by the helper).
    r = await vmm.request('GET', '/vm/config');
    assert.equal(r.status, 200);
    const cfg = r.json as { 'boot-source': Record<string, unknown>; 'machine-config': Record<string, unknown> };
    assert.equal(cfg['boot-source'].kernel_image_path, kernel);
    assert.equal(cfg['boot-source'].boot_args, bootSource.boot_args);
    for (const [k, v] of Object.entries(machineConfig)) assert.equal(cfg['machine-config'][k], v, `machine-config.${k}`);
    // The typed client reads the same.
    const viaClient = await client.getVmConfig();
    validateResponse('GET', '/vm/config', 200, withoutNullProperties(viaClient));
    assert.deepEqual(viaClient, r.json);
    r = await vmm.request('GET', '/machine-config');
    assert.deepEqual(r.json, cfg['machine-config']);

    r = await vmm.request('PUT', '/actions', { action_type: 'SendCtrlAltDel' });
    assert.equal(r.status, 204, r.text);

    r = await vmm.request('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 64 });
    assert.equal(r.status, 400);
    assert.match((r.json as { fault_message: string }).fault_message, /not supported after starting/);
    // The same refusal through the typed client.
    await assert.rejects(client.putMachineConfig({ vcpu_count: 1, mem_size_mib: 64 }), (e: unknown) => {
      assert.ok(e instanceof ApiError, String(e));
      assert.equal(e.statusCode, 400);
      assert.match(e.faultMessage ?? '', /not supported after starting/);
      return true;
    });
    assert.equal(state((await vmm.request('GET', '/')).json), 'Running');
    assert.equal(vmm.hasExited, false, vmm.describe());

    const end = await vmm.stop('SIGTERM', 10_000);
    assert.equal(end.signal, null, `killed by ${end.signal}\n${vmm.describe()}`);
    assert.equal(end.code, 0, vmm.describe());
    assert.equal(hasStackTrace(end.stderr), false, vmm.describe());
  });

  it('--config-file with --api-sock: the VM boots from the file and the API answers Running', async () => {
    requireKvm();
    const kernel = await buildGuest('halt');
    const dir = makeTempDir('sparkler-cfg-');
    try {
      const config = {
        'boot-source': { kernel_image_path: kernel, boot_args: 'console=ttyS0' },
        'machine-config': { vcpu_count: 1, mem_size_mib: 80 },
      };
      const cfgPath = path.join(dir, 'vm.json');
      fs.writeFileSync(cfgPath, JSON.stringify(config));
      const vmm = await startApi({ dir, args: ['--config-file', cfgPath] });
      procs.push(vmm);

      // The first answer already sees the booted VM.
      let r = await vmm.request('GET', '/');
      assert.equal(r.status, 200);
      assert.equal(state(r.json), 'Running', vmm.describe());
      await vmm.waitFor(/halting/, 'stdout', 20_000);

      r = await vmm.request('GET', '/vm/config');
      const cfg = r.json as { 'boot-source': Record<string, unknown>; 'machine-config': Record<string, unknown> };
      assert.equal(cfg['boot-source'].kernel_image_path, kernel);
      assert.equal(cfg['machine-config'].mem_size_mib, 80);

      r = await vmm.request('PUT', '/boot-source', { kernel_image_path: kernel });
      assert.equal(r.status, 400);
      assert.match((r.json as { fault_message: string }).fault_message, /not supported after starting/);

      const end = await vmm.stop('SIGTERM', 10_000);
      assert.equal(end.code, 0, vmm.describe());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
