/**
 * Malformed and refused API requests, black box: each is answered 400 with a
 * fault_message that names the problem, every answer matches the spec's
 * error response, and the server keeps serving (GET / → 200) after each.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { startApi, validateAnswer, type ApiProcess, type ApiResponse } from '../helpers/api_process.js';
import { buildGuest } from '../helpers/guest_build.js';
import { validateDefinition } from '../helpers/openapi.js';
import { requireKvm } from '../helpers/sparkler_run.js';

interface BadCase {
  name: string;
  method: string;
  path: string;
  /** A JSON value, or a string sent verbatim. */
  body?: unknown;
  /** The request itself breaks the spec on purpose (skip request validation). */
  malformed?: boolean;
  /** What fault_message must match. */
  fault: RegExp;
  /** What fault_message must not match (e.g. a validation error must not be the not-supported one). */
  notFault?: RegExp;
}

const NOT_JSON = /not valid JSON/i;
const UNKNOWN_ROUTE = (m: string, p: string) => new RegExp(`Invalid request method and/or path: ${m} ${p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\.?$`);
const NOT_SUPPORTED_YET = /not supported by sparkler yet/;
const BEFORE_START = /not supported before starting the microVM/;

async function assertServing(vmm: ApiProcess): Promise<void> {
  const r = await vmm.request('GET', '/');
  assert.equal(r.status, 200, `GET / after the bad request: ${r.status} ${r.text}\n${vmm.describe()}`);
  assert.equal((r.json as { state: string }).state, 'Not started');
}

function assertFault(c: BadCase, r: ApiResponse): void {
  assert.equal(r.status, 400, `${c.method} ${c.path} ${JSON.stringify(c.body)}: expected 400, got ${r.status} ${r.text}`);
  const msg = (r.json as { fault_message: string }).fault_message;
  assert.match(msg, c.fault, `${c.name}: fault_message does not name the problem`);
  if (c.notFault) assert.doesNotMatch(msg, c.notFault, `${c.name}: wrong kind of error`);
}

describe('malformed requests before InstanceStart', () => {
  let vmm: ApiProcess;
  let kernelDir: string;
  before(async () => {
    vmm = await startApi();
    kernelDir = path.join(vmm.dir, 'a-directory');
    fs.mkdirSync(kernelDir);
  });
  after(async () => {
    const end = await vmm?.stop();
    assert.equal(end?.code, 0, `SIGTERM before start should exit 0\n${vmm?.describe()}`);
  });

  const cases: BadCase[] = [
    // Malformed JSON and empty bodies.
    { name: 'truncated JSON', method: 'PUT', path: '/machine-config', body: '{"vcpu_count": 2,', malformed: true, fault: NOT_JSON },
    { name: 'not JSON at all', method: 'PUT', path: '/boot-source', body: 'kernel=/vmlinux', malformed: true, fault: NOT_JSON },
    { name: 'JSON with a trailing comma', method: 'PUT', path: '/actions', body: '{"action_type": "InstanceStart",}', malformed: true, fault: NOT_JSON },
    { name: 'empty body on PUT /machine-config', method: 'PUT', path: '/machine-config', body: '', malformed: true, fault: /Empty PUT request/ },
    { name: 'empty body on PUT /actions', method: 'PUT', path: '/actions', body: '', malformed: true, fault: /Empty PUT request/ },
    { name: 'no body at all on PATCH /vm', method: 'PATCH', path: '/vm', malformed: true, fault: /Empty PATCH request/ },
    { name: 'a JSON array instead of an object', method: 'PUT', path: '/machine-config', body: [1, 2], malformed: true, fault: /expected (a JSON )?(an )?object, got an array/ },
    { name: 'JSON null body', method: 'PUT', path: '/boot-source', body: 'null', malformed: true, fault: /expected (a JSON )?(an )?object, got null/ },

    // Unknown fields.
    { name: 'unknown field in machine-config', method: 'PUT', path: '/machine-config', body: { vcpu_count: 1, mem_size_mib: 64, cpus: 2 }, malformed: true, fault: /unknown field "cpus"/ },
    { name: 'unknown field in boot-source', method: 'PUT', path: '/boot-source', body: { kernel_image_path: '/bin/true', cmdline: 'x' }, malformed: true, fault: /unknown field "cmdline"/ },
    { name: 'unknown field in actions', method: 'PUT', path: '/actions', body: { action_type: 'InstanceStart', force: true }, malformed: true, fault: /unknown field "force"/ },
    { name: 'unknown field in logger', method: 'PUT', path: '/logger', body: { level: 'Info', colour: true }, malformed: true, fault: /unknown field "colour"/ },
    { name: 'drive whose backing file does not exist', method: 'PUT', path: '/drives/rootfs', body: { drive_id: 'rootfs', is_root_device: true, is_read_only: false, path_on_host: '/nonexistent/rootfs.ext4' }, fault: /path_on_host: unable to open the block device backing file.*no such file or directory/i },
    { name: 'drive whose backing file is a directory', method: 'PUT', path: '/drives/rootfs', body: { drive_id: 'rootfs', is_root_device: true, is_read_only: true, path_on_host: '/tmp' }, fault: /not a regular file or block device/ },
    { name: 'PATCH /drives before InstanceStart', method: 'PATCH', path: '/drives/rootfs', body: { drive_id: 'rootfs', path_on_host: '/tmp/other.ext4' }, fault: BEFORE_START },
    { name: 'unknown field in drives', method: 'PUT', path: '/drives/rootfs', body: { drive_id: 'rootfs', is_root_device: true, path_on_host: '/tmp/r', size: 5 }, malformed: true, fault: /unknown field "size"/, notFault: NOT_SUPPORTED_YET },
    { name: 'unknown field in PATCH /vm', method: 'PATCH', path: '/vm', body: { state: 'Paused', now: true }, malformed: true, fault: /unknown field "now"/ },

    // Wrong types.
    { name: 'vcpu_count as a string', method: 'PUT', path: '/machine-config', body: { vcpu_count: '2', mem_size_mib: 64 }, malformed: true, fault: /vcpu_count: expected an integer, got string "2"/ },
    { name: 'vcpu_count not an integer', method: 'PUT', path: '/machine-config', body: { vcpu_count: 1.5, mem_size_mib: 64 }, malformed: true, fault: /vcpu_count: expected an integer/ },
    { name: 'mem_size_mib -1', method: 'PUT', path: '/machine-config', body: { vcpu_count: 1, mem_size_mib: -1 }, malformed: true, fault: /mem_size_mib: -1 is out of range/ },
    { name: 'smt "yes"', method: 'PUT', path: '/machine-config', body: { vcpu_count: 2, mem_size_mib: 64, smt: 'yes' }, malformed: true, fault: /smt: expected a boolean, got string "yes"/ },
    { name: 'boot_args a number', method: 'PUT', path: '/boot-source', body: { kernel_image_path: '/bin/true', boot_args: 5 }, malformed: true, fault: /boot_args: expected a string/ },
    { name: 'action_type null', method: 'PUT', path: '/actions', body: { action_type: null }, malformed: true, fault: /action_type: .*got null/ },

    // Out of range.
    { name: 'vcpu_count 0', method: 'PUT', path: '/machine-config', body: { vcpu_count: 0, mem_size_mib: 64 }, malformed: true, fault: /vcpu_count: 0 is out of range \(1\.\.32\)/ },
    { name: 'vcpu_count 33', method: 'PUT', path: '/machine-config', body: { vcpu_count: 33, mem_size_mib: 64 }, malformed: true, fault: /vcpu_count: 33 is out of range \(1\.\.32\)/ },
    { name: 'mem_size_mib 0', method: 'PUT', path: '/machine-config', body: { vcpu_count: 1, mem_size_mib: 0 }, malformed: true, fault: /mem_size_mib: 0 is out of range/ },
    // The spec cannot express this rule: the request is spec-valid.
    { name: 'smt true with an odd vcpu_count', method: 'PUT', path: '/machine-config', body: { vcpu_count: 3, mem_size_mib: 64, smt: true }, fault: /vcpu_count: must be 1 or an even number when smt is true \(got 3\)/ },

    // Bad enum values.
    { name: 'action_type "Reboot"', method: 'PUT', path: '/actions', body: { action_type: 'Reboot' }, malformed: true, fault: /action_type: invalid value "Reboot".*InstanceStart/ },
    { name: 'huge_pages "1G"', method: 'PUT', path: '/machine-config', body: { vcpu_count: 1, mem_size_mib: 64, huge_pages: '1G' }, malformed: true, fault: /huge_pages: invalid value "1G".*2M/ },
    { name: 'PATCH /vm state "Stopped"', method: 'PATCH', path: '/vm', body: { state: 'Stopped' }, malformed: true, fault: /state: invalid value "Stopped".*Paused.*Resumed/ },
    { name: 'cpu_template "Bogus"', method: 'PUT', path: '/machine-config', body: { vcpu_count: 1, mem_size_mib: 64, cpu_template: 'Bogus' }, malformed: true, fault: /cpu_template: invalid value "Bogus"/ },
    { name: 'logger level "Loud"', method: 'PUT', path: '/logger', body: { level: 'Loud' }, malformed: true, fault: /level: invalid value "Loud"/ },

    // Missing required fields.
    { name: 'machine-config without mem_size_mib', method: 'PUT', path: '/machine-config', body: { vcpu_count: 1 }, malformed: true, fault: /missing required field "mem_size_mib"/ },
    { name: 'machine-config without vcpu_count', method: 'PUT', path: '/machine-config', body: { mem_size_mib: 64 }, malformed: true, fault: /missing required field "vcpu_count"/ },
    { name: 'boot-source without kernel_image_path', method: 'PUT', path: '/boot-source', body: { boot_args: 'console=ttyS0' }, malformed: true, fault: /missing required field "kernel_image_path"/ },
    { name: 'actions without action_type', method: 'PUT', path: '/actions', body: {}, malformed: true, fault: /missing required field "action_type"/ },
    { name: 'metrics without metrics_path', method: 'PUT', path: '/metrics', body: {}, malformed: true, fault: /missing required field "metrics_path"/ },
    // (The spec gives PATCH /machine-config the PUT schema, with its required fields; Firecracker takes any subset.)
    { name: 'PATCH /machine-config with no field', method: 'PATCH', path: '/machine-config', body: {}, malformed: true, fault: /at least one field/ },

    // Files that are not kernels (spec-valid requests).
    { name: 'kernel_image_path that does not exist', method: 'PUT', path: '/boot-source', body: { kernel_image_path: '/nonexistent/vmlinux' }, fault: /kernel_image_path:.*"\/nonexistent\/vmlinux".*(no such file|ENOENT)/ },
    { name: 'kernel_image_path that is a directory', method: 'PUT', path: '/boot-source', body: { kernel_image_path: '<DIR>' }, fault: /kernel_image_path:.*is not a regular file/ },
    { name: 'initrd_path that does not exist', method: 'PUT', path: '/boot-source', body: { kernel_image_path: '/bin/true', initrd_path: '/nonexistent/initrd' }, fault: /initrd_path:.*"\/nonexistent\/initrd".*(no such file|ENOENT)/ },

    // Path and body disagree.
    { name: 'drive id mismatch between path and body', method: 'PUT', path: '/drives/rootfs', body: { drive_id: 'other', is_root_device: true, path_on_host: '/tmp/r' }, fault: /id from the path does not match the id from the body/ },
    { name: 'PATCH drive id mismatch', method: 'PATCH', path: '/drives/rootfs', body: { drive_id: 'other', path_on_host: '/tmp/r' }, fault: /id from the path does not match the id from the body/ },
    { name: 'network interface id mismatch', method: 'PUT', path: '/network-interfaces/eth0', body: { iface_id: 'eth1', host_dev_name: 'tap0' }, fault: /id from the path does not match the id from the body/ },

    // Unknown paths and methods.
    { name: 'unknown path', method: 'GET', path: '/no-such-endpoint', malformed: true, fault: UNKNOWN_ROUTE('GET', '/no-such-endpoint') },
    { name: 'known path with a trailing slash', method: 'GET', path: '/machine-config/', malformed: true, fault: UNKNOWN_ROUTE('GET', '/machine-config/') },
    { name: 'DELETE /machine-config', method: 'DELETE', path: '/machine-config', malformed: true, fault: UNKNOWN_ROUTE('DELETE', '/machine-config') },
    { name: 'POST /actions', method: 'POST', path: '/actions', body: { action_type: 'InstanceStart' }, malformed: true, fault: UNKNOWN_ROUTE('POST', '/actions') },
    { name: 'PUT /version', method: 'PUT', path: '/version', body: {}, malformed: true, fault: UNKNOWN_ROUTE('PUT', '/version') },
    { name: 'drive with an empty id', method: 'PUT', path: '/drives/', body: { drive_id: '', is_root_device: true }, malformed: true, fault: UNKNOWN_ROUTE('PUT', '/drives/') },

    // Operations in the wrong state (spec-valid requests).
    { name: 'SendCtrlAltDel before start', method: 'PUT', path: '/actions', body: { action_type: 'SendCtrlAltDel' }, fault: BEFORE_START },
    { name: 'PATCH /vm Paused before start', method: 'PATCH', path: '/vm', body: { state: 'Paused' }, fault: BEFORE_START },
    { name: 'PATCH /vm Resumed before start', method: 'PATCH', path: '/vm', body: { state: 'Resumed' }, fault: BEFORE_START },
    { name: 'FlushMetrics with no metrics configured', method: 'PUT', path: '/actions', body: { action_type: 'FlushMetrics' }, fault: /metrics.*not .*initiali[sz]ed|configure.*metrics/i },
    { name: 'InstanceStart with no boot source', method: 'PUT', path: '/actions', body: { action_type: 'InstanceStart' }, fault: /without kernel configuration/ },
  ];

  // Devices not implemented yet: a valid body is refused as not supported...
  const notYetValid: BadCase[] = [
    { name: 'PUT /balloon', method: 'PUT', path: '/balloon', body: { amount_mib: 0, deflate_on_oom: false }, fault: /balloon.*not supported/ },
    { name: 'PATCH /balloon', method: 'PATCH', path: '/balloon', body: { amount_mib: 16 }, fault: /balloon.*not supported/ },
    { name: 'GET /balloon', method: 'GET', path: '/balloon', fault: /balloon.*not supported/ },
    { name: 'PUT /mmds', method: 'PUT', path: '/mmds', body: { latest: { 'meta-data': {} } }, fault: /MMDS.*not supported/ },
    { name: 'GET /mmds', method: 'GET', path: '/mmds', fault: /MMDS.*not supported/ },
    { name: 'PUT /snapshot/create', method: 'PUT', path: '/snapshot/create', body: { snapshot_path: '/tmp/snap', mem_file_path: '/tmp/mem' }, fault: /Snapshots.*not supported/ },
    { name: 'PUT /snapshot/load', method: 'PUT', path: '/snapshot/load', body: { snapshot_path: '/tmp/snap', mem_backend: { backend_type: 'File', backend_path: '/tmp/mem' } }, fault: /Snapshots.*not supported/ },
    { name: 'PUT /pmem', method: 'PUT', path: '/pmem/pm0', body: { id: 'pm0', path_on_host: '/tmp/pmem' }, fault: /pmem.*not supported/ },
    { name: 'PUT /hotplug/memory', method: 'PUT', path: '/hotplug/memory', body: { total_size_mib: 1024 }, fault: /hotplug.*not supported/i },
    { name: 'PUT /cpu-config', method: 'PUT', path: '/cpu-config', body: {}, fault: /CPU templates.*not supported/ },
  ];

  // ...and an invalid one with the validation error, not the not-supported one.
  const notYetInvalid: BadCase[] = ([
    { name: 'PUT /drives without is_root_device', method: 'PUT', path: '/drives/rootfs', body: { drive_id: 'rootfs', path_on_host: '/tmp/r' }, malformed: true, fault: /missing required field "is_root_device"/ },
    { name: 'PUT /network-interfaces without host_dev_name', method: 'PUT', path: '/network-interfaces/eth0', body: { iface_id: 'eth0' }, malformed: true, fault: /missing required field "host_dev_name"/ },
    { name: 'PUT /vsock with guest_cid a string', method: 'PUT', path: '/vsock', body: { guest_cid: 'three', uds_path: '/tmp/v.sock' }, malformed: true, fault: /guest_cid: expected an integer/ },
    { name: 'PUT /entropy with an unknown field', method: 'PUT', path: '/entropy', body: { source: '/dev/urandom' }, malformed: true, fault: /unknown field "source"/ },
    { name: 'PUT /balloon without deflate_on_oom', method: 'PUT', path: '/balloon', body: { amount_mib: 0 }, malformed: true, fault: /missing required field "deflate_on_oom"/ },
    { name: 'PATCH /balloon without amount_mib', method: 'PATCH', path: '/balloon', body: {}, malformed: true, fault: /missing required field "amount_mib"/ },
    { name: 'PUT /mmds with an array', method: 'PUT', path: '/mmds', body: [1], malformed: true, fault: /expected (a JSON )?(an )?object/ },
    { name: 'PUT /mmds/config naming an interface that does not exist', method: 'PUT', path: '/mmds/config', body: { network_interfaces: ['eth0'] }, fault: /network_interfaces: "eth0" does not name a configured network interface/ },
    { name: 'PUT /snapshot/load with no memory backend', method: 'PUT', path: '/snapshot/load', body: { snapshot_path: '/tmp/snap' }, fault: /mem_backend/ },
    { name: 'PUT /mmds/config without network_interfaces', method: 'PUT', path: '/mmds/config', body: {}, malformed: true, fault: /missing required field "network_interfaces"/ },
    { name: 'PUT /snapshot/create without mem_file_path', method: 'PUT', path: '/snapshot/create', body: { snapshot_path: '/tmp/snap' }, malformed: true, fault: /missing required field "mem_file_path"/ },
    { name: 'PUT /snapshot/load without snapshot_path', method: 'PUT', path: '/snapshot/load', body: { mem_file_path: '/tmp/mem' }, malformed: true, fault: /missing required field "snapshot_path"/ },
    { name: 'PUT /pmem without path_on_host', method: 'PUT', path: '/pmem/pm0', body: { id: 'pm0' }, malformed: true, fault: /missing required field "path_on_host"/ },
    { name: 'PUT /cpu-config with an unknown field', method: 'PUT', path: '/cpu-config', body: { cpuid: [] }, malformed: true, fault: /unknown field "cpuid"/ },
  ] as BadCase[]).map((c) => ({ ...c, notFault: /not supported/ }));

  it('has at least 30 malformed requests in its table', () => {
    assert.ok(cases.length >= 30, `only ${cases.length}`);
  });

  for (const c of cases) {
    it(`400: ${c.name}`, async () => {
      // '<DIR>' in a body stands for a directory made for the test.
      const body = c.body && typeof c.body === 'object' && !Array.isArray(c.body)
        ? Object.fromEntries(Object.entries(c.body).map(([k, v]) => [k, v === '<DIR>' ? kernelDir : v]))
        : c.body;
      const r = await vmm.request(c.method, c.path, body, { malformed: c.malformed });
      assertFault(c, r);
      await assertServing(vmm);
    });
  }

  for (const c of notYetValid) {
    it(`400 not supported (valid body): ${c.name}`, async () => {
      const r = await vmm.request(c.method, c.path, c.body, { malformed: c.malformed });
      assertFault(c, r);
      assert.match((r.json as { fault_message: string }).fault_message, NOT_SUPPORTED_YET);
      await assertServing(vmm);
    });
  }

  for (const c of notYetInvalid) {
    it(`400 validation error (invalid body): ${c.name}`, async () => {
      const r = await vmm.request(c.method, c.path, c.body, { malformed: c.malformed });
      assertFault(c, r);
      await assertServing(vmm);
    });
  }
});

describe('refused requests after InstanceStart (halt guest)', () => {
  let vmm: ApiProcess;
  before(async () => {
    requireKvm();
    const kernel = await buildGuest('halt');
    vmm = await startApi();
    assert.equal((await vmm.request('PUT', '/boot-source', { kernel_image_path: kernel, boot_args: 'console=ttyS0' })).status, 204);
    assert.equal((await vmm.request('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 64 })).status, 204);
    assert.equal((await vmm.request('PUT', '/actions', { action_type: 'InstanceStart' })).status, 204);
    await vmm.waitFor(/halting/, 'stdout', 15_000);
  });
  after(async () => {
    if (!vmm) return;
    const end = await vmm.stop();
    assert.equal(end.code, 0, `SIGTERM of a running VM should exit 0\n${vmm.describe()}`);
  });

  const AFTER_START = /not supported after starting the microVM/;
  const cases: BadCase[] = [
    { name: 'PUT /boot-source after start', method: 'PUT', path: '/boot-source', body: { kernel_image_path: '/bin/true' }, fault: AFTER_START },
    { name: 'InstanceStart twice', method: 'PUT', path: '/actions', body: { action_type: 'InstanceStart' }, fault: AFTER_START },
    { name: 'PUT /machine-config after start', method: 'PUT', path: '/machine-config', body: { vcpu_count: 1, mem_size_mib: 64 }, fault: AFTER_START },
    { name: 'PATCH /machine-config after start', method: 'PATCH', path: '/machine-config', body: { vcpu_count: 1 }, malformed: true, fault: AFTER_START },
    { name: 'PUT /logger after start', method: 'PUT', path: '/logger', body: { level: 'Info' }, fault: AFTER_START },
    { name: 'PUT /drives after start', method: 'PUT', path: '/drives/rootfs', body: { drive_id: 'rootfs', is_root_device: true, path_on_host: '/tmp/r' }, fault: AFTER_START },
  ];
  for (const c of cases) {
    it(`400: ${c.name}`, async () => {
      const r = await vmm.request(c.method, c.path, c.body, { malformed: c.malformed });
      assertFault(c, r);
      const s = await vmm.request('GET', '/');
      assert.equal(s.status, 200);
      assert.equal((s.json as { state: string }).state, 'Running');
    });
  }
});

describe('malformed requests at the HTTP level', () => {
  // One process per test: a crash must not take the next test with it.
  let vmm: ApiProcess;
  beforeEach(async () => {
    vmm = await startApi();
  });
  afterEach(async () => {
    await vmm?.stop();
  });

  it('400 for a path parameter with a broken percent-encoding, and the server survives', async () => {
    const body = { drive_id: 'a', is_root_device: false, path_on_host: '/tmp/r' };
    const r = await vmm.rawRequest('PUT', '/drives/%ZZ', body).catch((e: Error) => {
      throw new Error(`PUT /drives/%ZZ got no answer (${e.message})\n${vmm.describe()}`);
    });
    assert.equal(r.status, 400, r.text);
    validateAnswer('PUT', '/drives/%ZZ', r);
    const s = await vmm.request('GET', '/').catch((e: Error) => {
      throw new Error(`the server died after PUT /drives/%ZZ (${e.message})\n${vmm.describe()}`);
    });
    assert.equal(s.status, 200);
  });

  it('400 with an error body for a request line that is not HTTP, and the server survives', async () => {
    const c = await vmm.connectRaw();
    try {
      await c.write('THIS IS NOT HTTP\r\n\r\n');
      const r = await c.readResponse(3000);
      assert.equal(r.status, 400, r.head);
      assert.notEqual(r.json, undefined, `the 400 answer to a request that does not parse has no JSON body: ${JSON.stringify(r.head + '\r\n\r\n' + r.text)}`);
      validateDefinition('Error', r.json);
    } finally {
      c.close();
    }
    assert.equal((await vmm.request('GET', '/')).status, 200);
  });
});
