/**
 * The configuration model: the shared example config parses, bad configs
 * fail with a one-line ConfigError naming the problem, and the API-facing
 * setters decide exactly as the config file does.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { DEFAULT_KERNEL_CMDLINE, kernelCmdline } from '../../src/vmm/vmm_config/boot_source.js';
import { ConfigError, UnsupportedConfigError } from '../../src/vmm/vmm_config/errors.js';
import { toLoggerOptions } from '../../src/vmm/vmm_config/logger.js';
import { defaultMachineConfiguration } from '../../src/vmm/vmm_config/machine_config.js';
import { BODY_VALIDATORS } from '../../src/vmm/vmm_config/index.js';
import { parseConfigFile, VmResources } from '../../src/vmm/resources.js';

/** <root>/dist/tests/unit → <root>; shared/ sits beside the checkout. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const EXAMPLE_CANDIDATES = [
  path.join(ROOT, '..', 'shared', 'ref', 'firecracker-config.example.json'),
  '/work/shared/ref/firecracker-config.example.json',
];

let dir = '';
let kernel = '';
let initrd = '';

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-config-'));
  kernel = path.join(dir, 'vmlinux.bin');
  initrd = path.join(dir, 'initrd.img');
  fs.writeFileSync(kernel, Buffer.alloc(4096, 0x7f));
  fs.writeFileSync(initrd, Buffer.alloc(1024, 1));
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A minimal valid document plus overrides (a key set to undefined is removed). */
function doc(overrides: Record<string, unknown> = {}): string {
  const base: Record<string, unknown> = { 'boot-source': { kernel_image_path: kernel } };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return JSON.stringify(base);
}

function expectConfigError(text: string, pattern: RegExp, unsupported = false): ConfigError {
  let caught: unknown;
  try {
    parseConfigFile(text);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError for ${text}, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  assert.ok(!caught.message.includes('\n'), `message must be one line: ${caught.message}`);
  assert.equal(caught instanceof UnsupportedConfigError, unsupported, `unsupported flag for: ${caught.message}`);
  return caught;
}

describe('example config (shared ref)', () => {
  it('parses once pointed at real files with drives emptied', (t) => {
    const file = EXAMPLE_CANDIDATES.find((p) => fs.existsSync(p));
    if (file === undefined) {
      t.skip('shared/ref/firecracker-config.example.json not found beside the checkout');
      return;
    }
    const example = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;
    example['boot-source']!.kernel_image_path = kernel;
    example['boot-source']!.initrd_path = initrd;
    example.drives = [] as unknown as Record<string, unknown>;
    const r = parseConfigFile(JSON.stringify(example));
    assert.equal(r.bootSource?.kernel_image_path, kernel);
    assert.equal(r.bootSource?.initrd_path, initrd);
    assert.equal(r.bootSource?.boot_args, 'console=ttyS0 reboot=k panic=1');
    assert.deepEqual(r.machineConfig, {
      vcpu_count: 2,
      mem_size_mib: 1024,
      smt: false,
      cpu_template: null,
      track_dirty_pages: false,
      huge_pages: 'None',
    });
    assert.equal(r.logger, null);
    assert.equal(r.metrics, null);
    assert.deepEqual(r.drives, []);
  });

  it('is refused as a whole when the backing file of its drive does not exist', () => {
    const file = EXAMPLE_CANDIDATES.find((p) => fs.existsSync(p));
    assert.ok(file, `Firecracker's example config not found (looked in ${EXAMPLE_CANDIDATES.join(', ')})`);
    const example = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;
    example['boot-source']!.kernel_image_path = kernel;
    expectConfigError(JSON.stringify(example), /^drives\[0\]\.path_on_host: unable to open the block device backing file "bionic\.rootfs\.ext4"/);
  });

  it('accepts its drive once the backing file exists', () => {
    const file = EXAMPLE_CANDIDATES.find((p) => fs.existsSync(p));
    assert.ok(file);
    const example = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, Record<string, unknown> | Array<Record<string, unknown>>>;
    (example['boot-source'] as Record<string, unknown>).kernel_image_path = kernel;
    (example.drives as Array<Record<string, unknown>>)[0]!.path_on_host = kernel;
    const r = parseConfigFile(JSON.stringify(example));
    assert.equal(r.drives.length, 1);
    assert.equal(r.drives[0]!.drive_id, 'rootfs');
    assert.equal(r.drives[0]!.is_root_device, true);
  });

  it('accepts both io engines (Async: io_uring) and refuses others', () => {
    for (const io_engine of ['Sync', 'Async']) {
      const r = parseConfigFile(doc({ drives: [{ drive_id: 'd', is_root_device: false, path_on_host: kernel, io_engine }] }));
      assert.equal(r.drives[0]!.io_engine, io_engine);
    }
    expectConfigError(doc({ drives: [{ drive_id: 'd', is_root_device: false, path_on_host: kernel, io_engine: 'Uring' }] }), /^drives\[0\]\.io_engine: invalid value "Uring" \(expected one of: Sync, Async\)$/);
  });
});

describe('valid configs', () => {
  it('applies Firecracker defaults', () => {
    const r = parseConfigFile(doc());
    assert.deepEqual(r.machineConfig, defaultMachineConfiguration());
    assert.deepEqual(r.machineConfig, {
      vcpu_count: 1,
      mem_size_mib: 128,
      smt: false,
      cpu_template: null,
      track_dirty_pages: false,
      huge_pages: 'None',
    });
    assert.equal(r.bootSource?.boot_args, null);
    assert.equal(r.bootSource && kernelCmdline(r.bootSource), DEFAULT_KERNEL_CMDLINE);
    assert.equal(
      DEFAULT_KERNEL_CMDLINE,
      'reboot=k panic=1 nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd swiotlb=noforce',
    );
  });

  it('treats null sections and empty lists as "none"', () => {
    const r = parseConfigFile(
      doc({
        drives: [],
        'network-interfaces': null,
        pmem: [],
        vsock: null,
        entropy: null,
        balloon: null,
        'mmds-config': null,
        'cpu-config': null,
        'memory-hotplug': null,
        logger: null,
        metrics: null,
        serial: null,
        'machine-config': null,
      }),
    );
    assert.deepEqual(r.machineConfig, defaultMachineConfiguration());
  });

  it('accepts logger, metrics, an empty serial section and cpu_template None', () => {
    const r = parseConfigFile(
      doc({
        logger: { level: 'warn', log_path: path.join(dir, 'fc.log'), show_level: true, show_log_origin: null },
        metrics: { metrics_path: path.join(dir, 'metrics.fifo'), properties: { az: 'eu-1' } },
        serial: {},
        'machine-config': { vcpu_count: 4, mem_size_mib: 256, smt: true, cpu_template: 'None', huge_pages: '2M' },
        'boot-source': { kernel_image_path: kernel, initrd_path: null, boot_args: 'console=ttyS0 reboot=k panic=1' },
      }),
    );
    assert.equal(r.logger?.level, 'Warning');
    assert.equal(r.logger?.show_log_origin, null);
    assert.deepEqual(r.metrics, { metrics_path: path.join(dir, 'metrics.fifo'), emit_id: false, properties: { az: 'eu-1' } });
    assert.deepEqual(r.serial, { serial_out_path: null, rate_limiter: null });
    assert.equal(r.machineConfig.cpu_template, null);
    assert.equal(r.machineConfig.huge_pages, '2M');
    assert.equal(r.machineConfig.smt, true);
  });

  it('maps a logger section to logger options, omitted level meaning Info as in Firecracker', () => {
    const r = parseConfigFile(doc({ logger: { show_level: true } }));
    assert.ok(r.logger);
    assert.deepEqual(toLoggerOptions(r.logger), { level: 'Info', showLevel: true });
  });
});

// Each row: a document (or raw text), what the message must say, and whether
// it is a "not supported yet" refusal rather than an invalid input.
const BAD: Array<{ name: string; text: () => string; msg: RegExp; unsupported?: boolean }> = [
  { name: 'malformed JSON', text: () => '{\n  "boot-source": }', msg: /^config file is not valid JSON: Unexpected token '}'/ },
  { name: 'truncated JSON', text: () => '{"boot-source": ', msg: /^config file is not valid JSON: Unexpected end of JSON input \(line 1, column 17\)$/ },
  { name: 'top level is an array', text: () => '[]', msg: /expected a JSON object at the top level, got an array/ },
  { name: 'unknown top-level key', text: () => doc({ drive: [] }), msg: /unknown section "drive" \(expected one of: boot-source, machine-config, drives/ },
  { name: 'missing boot-source', text: () => doc({ 'boot-source': undefined }), msg: /missing required section "boot-source"/ },
  { name: 'null boot-source', text: () => doc({ 'boot-source': null }), msg: /^boot-source: expected an object, got null$/ },
  { name: 'unknown boot-source field', text: () => doc({ 'boot-source': { kernel_image_path: kernel, kernel: 'x' } }), msg: /^boot-source: unknown field "kernel" \(expected one of: kernel_image_path, initrd_path, boot_args\)$/ },
  { name: 'missing kernel_image_path', text: () => doc({ 'boot-source': { boot_args: 'x' } }), msg: /^boot-source: missing required field "kernel_image_path"$/ },
  { name: 'kernel_image_path wrong type', text: () => doc({ 'boot-source': { kernel_image_path: 5 } }), msg: /^boot-source\.kernel_image_path: expected a string, got integer 5$/ },
  { name: 'kernel missing on disk', text: () => doc({ 'boot-source': { kernel_image_path: path.join(dir, 'nope') } }), msg: /^boot-source\.kernel_image_path: the kernel file cannot be opened: ".*nope": no such file or directory \(ENOENT\)$/ },
  { name: 'kernel is a directory', text: () => doc({ 'boot-source': { kernel_image_path: dir } }), msg: /kernel_image_path: the kernel file ".*" is not a regular file/ },
  { name: 'initrd missing on disk', text: () => doc({ 'boot-source': { kernel_image_path: kernel, initrd_path: path.join(dir, 'no-initrd') } }), msg: /^boot-source\.initrd_path: the initrd file cannot be opened: .*ENOENT/ },
  { name: 'boot_args with a control character', text: () => doc({ 'boot-source': { kernel_image_path: kernel, boot_args: 'console=ttyS0\npanic=1' } }), msg: /boot_args: the kernel command line is invalid: non-printable or non-ASCII character at position 13/ },
  { name: 'boot_args too long', text: () => doc({ 'boot-source': { kernel_image_path: kernel, boot_args: 'a'.repeat(3000) } }), msg: /boot_args: the kernel command line is invalid: 3000 bytes is too long \(max 2047\)/ },
  { name: 'vcpu_count 0', text: () => doc({ 'machine-config': { vcpu_count: 0, mem_size_mib: 128 } }), msg: /^machine-config\.vcpu_count: 0 is out of range \(1\.\.32\)$/ },
  { name: 'vcpu_count 33', text: () => doc({ 'machine-config': { vcpu_count: 33, mem_size_mib: 128 } }), msg: /^machine-config\.vcpu_count: 33 is out of range \(1\.\.32\)$/ },
  { name: 'vcpu_count as string', text: () => doc({ 'machine-config': { vcpu_count: '2', mem_size_mib: 128 } }), msg: /^machine-config\.vcpu_count: expected an integer, got string "2"$/ },
  { name: 'vcpu_count fractional', text: () => doc({ 'machine-config': { vcpu_count: 1.5, mem_size_mib: 128 } }), msg: /vcpu_count: expected an integer, got number 1\.5/ },
  { name: 'odd vcpu_count with smt', text: () => doc({ 'machine-config': { vcpu_count: 3, mem_size_mib: 128, smt: true } }), msg: /^machine-config\.vcpu_count: must be 1 or an even number when smt is true \(got 3\)$/ },
  { name: 'mem_size_mib 0', text: () => doc({ 'machine-config': { vcpu_count: 1, mem_size_mib: 0 } }), msg: /^machine-config\.mem_size_mib: 0 is out of range \(1\.\.1048576\)$/ },
  { name: 'mem_size_mib above the bound', text: () => doc({ 'machine-config': { vcpu_count: 1, mem_size_mib: 2 * 1024 * 1024 } }), msg: /mem_size_mib: 2097152 is out of range \(1\.\.1048576\)/ },
  { name: 'missing mem_size_mib', text: () => doc({ 'machine-config': { vcpu_count: 1 } }), msg: /^machine-config: missing required field "mem_size_mib"$/ },
  { name: 'bad huge_pages', text: () => doc({ 'machine-config': { vcpu_count: 1, mem_size_mib: 128, huge_pages: '1G' } }), msg: /^machine-config\.huge_pages: invalid value "1G" \(expected one of: None, Transparent, 2M\)$/ },
  { name: 'odd memory with 2M pages', text: () => doc({ 'machine-config': { vcpu_count: 1, mem_size_mib: 127, huge_pages: '2M' } }), msg: /mem_size_mib: 127 is not a multiple of 2 MiB, which huge_pages "2M" requires/ },
  { name: 'smt null (a defaulted field, not an Option)', text: () => doc({ 'machine-config': { vcpu_count: 1, mem_size_mib: 128, smt: null } }), msg: /^machine-config\.smt: expected a boolean, got null$/ },
  { name: 'unknown machine-config field', text: () => doc({ 'machine-config': { vcpus: 2, vcpu_count: 1, mem_size_mib: 128 } }), msg: /^machine-config: unknown field "vcpus" \(expected one of: vcpu_count, mem_size_mib, smt, cpu_template, track_dirty_pages, huge_pages\)$/ },
  { name: 'invalid cpu_template', text: () => doc({ 'machine-config': { vcpu_count: 1, mem_size_mib: 128, cpu_template: 'T9' } }), msg: /cpu_template: invalid value "T9" \(expected one of: C3, T2, T2S, T2CL, T2A, V1N1, None\)/ },
  { name: 'static cpu_template', text: () => doc({ 'machine-config': { vcpu_count: 1, mem_size_mib: 128, cpu_template: 'T2' } }), msg: /^machine-config\.cpu_template: static CPU template "T2" is not supported yet$/, unsupported: true },
  { name: 'drives not an array', text: () => doc({ drives: {} }), msg: /^drives: expected an array, got an object$/ },
  { name: 'drive with bad cache_type', text: () => doc({ drives: [{ drive_id: 'root', is_root_device: true, path_on_host: '/x', cache_type: 'Fast' }] }), msg: /^drives\[0\]\.cache_type: invalid value "Fast" \(expected one of: Unsafe, Writeback\)$/ },
  { name: 'drive mixing socket and path_on_host', text: () => doc({ drives: [{ drive_id: 'd', is_root_device: false, path_on_host: '/x', socket: '/s' }] }), msg: /drives\[0\]: "path_on_host" cannot be used with "socket"/ },
  { name: 'drive without a backend', text: () => doc({ drives: [{ drive_id: 'd', is_root_device: false }] }), msg: /drives\[0\]: missing "path_on_host"/ },
  { name: 'drive rate limiter bucket without size', text: () => doc({ drives: [{ drive_id: 'd', is_root_device: false, path_on_host: '/x', rate_limiter: { bandwidth: { refill_time: 100 } } }] }), msg: /^drives\[0\]\.rate_limiter\.bandwidth: missing required field "size"$/ },
  { name: 'drive with a missing backing file', text: () => doc({ drives: [{ drive_id: 'rootfs', is_root_device: true, path_on_host: '/x', is_read_only: false }] }), msg: /^drives\[0\]\.path_on_host: unable to open the block device backing file "\/x"/ },
  { name: 'two root drives', text: () => doc({ drives: [{ drive_id: 'a', is_root_device: true, path_on_host: kernel }, { drive_id: 'b', is_root_device: true, path_on_host: kernel }] }), msg: /only one drive can be the root device/ },
  { name: 'bad guest_mac', text: () => doc({ 'network-interfaces': [{ iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '06:00:zz:00:00:01' }] }), msg: /network-interfaces\[0\]\.guest_mac: invalid MAC address "06:00:zz:00:00:01"/ },
  { name: 'mtu too small', text: () => doc({ 'network-interfaces': [{ iface_id: 'eth0', host_dev_name: 'tap0', mtu: 40 }] }), msg: /network-interfaces\[0\]\.mtu: 40 is out of range \(68\.\.65535\)/ },
  { name: 'network interface with an MTU below 68', text: () => doc({ 'network-interfaces': [{ iface_id: 'eth0', host_dev_name: 'tap0', mtu: 40 }] }), msg: /^network-interfaces\[0\]\.mtu/ },
  { name: 'two interfaces on one TAP', text: () => doc({ 'network-interfaces': [{ iface_id: 'eth0', host_dev_name: 'tap0' }, { iface_id: 'eth1', host_dev_name: 'tap0' }] }), msg: /already used by interface eth0/ },
  { name: 'vsock reserved cid', text: () => doc({ vsock: { guest_cid: 2, uds_path: '/tmp/v.sock' } }), msg: /^vsock\.guest_cid: 2 is out of range \(3\.\.4294967295\)$/ },
  { name: 'vsock with a reserved CID', text: () => doc({ vsock: { guest_cid: 2, uds_path: '/tmp/v.sock' } }), msg: /^vsock\.guest_cid/ },
  { name: 'entropy with an unknown field', text: () => doc({ entropy: { source: 'x' } }), msg: /^entropy: unknown field "source"/ },
  { name: 'balloon missing deflate_on_oom', text: () => doc({ balloon: { amount_mib: 10 } }), msg: /^balloon: missing required field "deflate_on_oom"$/ },
  { name: 'valid balloon', text: () => doc({ balloon: { amount_mib: 10, deflate_on_oom: true } }), msg: /balloon device is not supported yet/, unsupported: true },
  { name: 'mmds with no interfaces', text: () => doc({ 'mmds-config': { network_interfaces: [] } }), msg: /mmds-config\.network_interfaces: the list of network interface IDs .* is empty/ },
  { name: 'mmds naming an unknown interface', text: () => doc({ 'mmds-config': { network_interfaces: ['eth0'] } }), msg: /mmds-config\.network_interfaces: "eth0" does not name a configured network interface/ },
  { name: 'mmds bad version', text: () => doc({ 'mmds-config': { version: 'V3', network_interfaces: ['eth0'] } }), msg: /mmds-config\.version: invalid value "V3" \(expected one of: V1, V2\)/ },
  { name: 'mmds address not link-local', text: () => doc({ 'mmds-config': { network_interfaces: ['eth0'], ipv4_address: '10.0.0.1' } }), msg: /ipv4_address: 10\.0\.0\.1 is not a valid link-local address/ },
  { name: 'cpu-config bad capability', text: () => doc({ 'cpu-config': { kvm_capabilities: ['abc'] } }), msg: /^cpu-config\.kvm_capabilities\[0\]: invalid KVM capability "abc"/ },
  { name: 'cpu-config bad cpuid register', text: () => doc({ 'cpu-config': { cpuid_modifiers: [{ leaf: '0x1', subleaf: '0x0', flags: 0, modifiers: [{ register: 'rax', bitmap: '0b1' }] }] } }), msg: /cpuid_modifiers\[0\]\.modifiers\[0\]\.register: invalid value "rax"/ },
  { name: 'cpu-config bad bitmap', text: () => doc({ 'cpu-config': { msr_modifiers: [{ addr: '0x10a', bitmap: '0b012' }] } }), msg: /msr_modifiers\[0\]\.bitmap: invalid bitmap "0b012": unknown character "2"/ },
  { name: 'cpu-config template file missing', text: () => doc({ 'cpu-config': path.join(dir, 'no-template.json') }), msg: /^cpu-config: cannot read CPU template file .*ENOENT/ },
  { name: 'valid cpu-config', text: () => doc({ 'cpu-config': { kvm_capabilities: ['!56'] } }), msg: /custom CPU templates are not supported yet/, unsupported: true },
  { name: 'valid pmem', text: () => doc({ pmem: [{ id: 'p0', path_on_host: '/x' }] }), msg: /^pmem\[0\]: pmem devices are not supported yet$/, unsupported: true },
  { name: 'memory-hotplug block size not a power of 2', text: () => doc({ 'memory-hotplug': { total_size_mib: 1024, block_size_mib: 6 } }), msg: /memory-hotplug\.block_size_mib: must be a power of 2/ },
  { name: 'memory-hotplug total below slot', text: () => doc({ 'memory-hotplug': { total_size_mib: 64 } }), msg: /total_size_mib: must not be lower than slot size \(128 MiB\)/ },
  { name: 'valid memory-hotplug', text: () => doc({ 'memory-hotplug': { total_size_mib: 1024 } }), msg: /memory hotplug is not supported yet/, unsupported: true },
  { name: 'logger bad level', text: () => doc({ logger: { level: 'loud' } }), msg: /^logger\.level: invalid value "loud" \(expected one of, case-insensitive: Error, Warning, Info, Debug, Trace, Off\)$/ },
  { name: 'logger unknown field', text: () => doc({ logger: { path: '/x' } }), msg: /^logger: unknown field "path" \(expected one of: level, log_path, show_level, show_log_origin, module\)$/ },
  { name: 'metrics without path', text: () => doc({ metrics: { emit_id: true } }), msg: /^metrics: missing required field "metrics_path"$/ },
  { name: 'metrics property not a string', text: () => doc({ metrics: { metrics_path: '/m', properties: { a: 1 } } }), msg: /^metrics\.properties\.a: expected a string, got integer 1$/ },
  { name: 'serial output path', text: () => doc({ serial: { serial_out_path: '/tmp/serial.log' } }), msg: /^serial\.serial_out_path: serial output to a file is not supported yet$/, unsupported: true },
];

describe('bad configs', () => {
  it('has a table of at least 25 cases', () => {
    assert.ok(BAD.length >= 25);
  });
  for (const row of BAD) {
    it(`rejects: ${row.name}`, () => {
      expectConfigError(row.text(), row.msg, row.unsupported ?? false);
    });
  }
});

describe('shared with the API', () => {
  it('a body is judged the same through a setter as through the config file', () => {
    const bodies: Array<[keyof VmResources & `set${string}`, string, unknown]> = [
      ['setMachineConfig', 'machine-config', { vcpu_count: 0, mem_size_mib: 128 }],
      ['setBootSource', 'boot-source', { kernel_image_path: path.join(dir, 'missing') }],
      ['setLogger', 'logger', { level: 3 }],
      ['setVsock', 'vsock', { guest_cid: 3, uds_path: '/v' }],
    ];
    for (const [setter, section, body] of bodies) {
      const viaFile = (() => {
        try {
          parseConfigFile(doc({ [section]: body }));
        } catch (err) {
          return (err as Error).message;
        }
        return 'accepted';
      })();
      const viaSetter = (() => {
        try {
          (new VmResources()[setter] as (b: unknown) => unknown)(body);
        } catch (err) {
          return (err as Error).message;
        }
        return 'accepted';
      })();
      assert.equal(viaSetter, viaFile);
    }
  });

  it('PATCH /machine-config changes only what it names and re-checks the whole', () => {
    const r = new VmResources();
    r.setMachineConfig({ vcpu_count: 3, mem_size_mib: 256 });
    assert.throws(() => r.patchMachineConfig({ smt: true }), /vcpu_count: must be 1 or an even number when smt is true \(got 3\)/);
    assert.equal(r.machineConfig.smt, false, 'a refused update changes nothing');
    r.patchMachineConfig({ vcpu_count: 4, smt: true });
    assert.deepEqual(
      { vcpu: r.machineConfig.vcpu_count, mem: r.machineConfig.mem_size_mib, smt: r.machineConfig.smt },
      { vcpu: 4, mem: 256, smt: true },
    );
    assert.throws(() => r.patchMachineConfig({}), /machine-config: empty update/);
  });

  it('a PUT resets omitted fields to their defaults', () => {
    const r = new VmResources();
    r.setMachineConfig({ vcpu_count: 2, mem_size_mib: 256, track_dirty_pages: true });
    r.setMachineConfig({ vcpu_count: 2, mem_size_mib: 256 });
    assert.equal(r.machineConfig.track_dirty_pages, false);
  });

  it('exposes one validator per API body type, and an empty prefix for body roots', () => {
    for (const name of ['BootSource', 'MachineConfiguration', 'Drive', 'NetworkInterface', 'Vsock', 'EntropyDevice', 'Balloon', 'MmdsConfig', 'Logger', 'Metrics', 'CpuConfig', 'Pmem', 'MemoryHotplugConfig', 'SerialDevice']) {
      assert.equal(typeof BODY_VALIDATORS[name as keyof typeof BODY_VALIDATORS], 'function', name);
    }
    assert.throws(() => BODY_VALIDATORS.MachineConfiguration({ vcpu_count: 1 }, ''), /^ConfigError: missing required field "mem_size_mib"$/);
    assert.deepEqual(BODY_VALIDATORS.Vsock({ guest_cid: 3, uds_path: '/v' }), { guest_cid: 3, uds_path: '/v', vsock_id: null });
  });

  it('reports GET /vm/config in the config-file shape', () => {
    const full = parseConfigFile(doc()).toFullVmConfiguration();
    assert.deepEqual(full['machine-config'], { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false, huge_pages: 'None' });
    assert.deepEqual(full.drives, []);
  });
});
