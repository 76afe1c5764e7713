/**
 * The API-only request bodies (PATCH updates, actions, snapshots, MMDS
 * data): each valid body passes, and bad ones fail with a one-line
 * ConfigError naming the field, through validateBody's empty prefix.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { validateBalloonHintingStart } from '../../src/vmm/vmm_config/balloon.js';
import { validatePartialDrive } from '../../src/vmm/vmm_config/drive.js';
import { ConfigError } from '../../src/vmm/vmm_config/errors.js';
import { BODY_VALIDATORS, validateBody, type BodyDefinition } from '../../src/vmm/vmm_config/index.js';
import { SNAPSHOT_LOAD_DEPRECATION_MESSAGE } from '../../src/vmm/vmm_config/snapshot.js';

/** Asserts validateBody(def, body) throws a ConfigError whose one-line message matches. */
function rejects(def: BodyDefinition, body: unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    validateBody(def, body);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `${def}: expected a ConfigError for ${JSON.stringify(body)}, got ${String(caught)}`);
  assert.doesNotMatch(caught.message, /\n/, 'one line');
  assert.match(caught.message, pattern);
}

const LIMITER = { bandwidth: { size: 1000, refill_time: 100 }, ops: { size: 10, one_time_burst: 5, refill_time: 100 } };

describe('validateBody', () => {
  it('has a validator for every request body definition of the yaml', () => {
    for (const name of [
      'Balloon', 'BalloonStartCmd', 'BalloonStatsUpdate', 'BalloonUpdate', 'BootSource', 'CpuConfig', 'Drive',
      'EntropyDevice', 'InstanceActionInfo', 'Logger', 'MachineConfiguration', 'MemoryHotplugConfig',
      'MemoryHotplugSizeUpdate', 'Metrics', 'MmdsConfig', 'MmdsContentsObject', 'NetworkInterface', 'PartialDrive',
      'PartialNetworkInterface', 'PartialPmem', 'Pmem', 'SerialDevice', 'SnapshotCreateParams', 'SnapshotLoadParams',
      'Vm', 'Vsock',
    ]) {
      assert.equal(typeof BODY_VALIDATORS[name as BodyDefinition], 'function', name);
    }
  });

  it('uses no location prefix, so root messages start with the field', () => {
    assert.throws(() => validateBody('Vm', {}), /^ConfigError: missing required field "state"$/);
    assert.throws(() => validateBody('PartialDrive', { drive_id: 'd', rate_limiter: { ops: { size: 'x', refill_time: 1 } } }),
      /^ConfigError: rate_limiter\.ops\.size: expected an integer, got string "x"$/);
    // The section prefix is still there when a validator is called directly.
    assert.throws(() => validatePartialDrive({}), /^ConfigError: drive: missing required field "drive_id"$/);
  });

  it('refuses a definition it does not know', () => {
    assert.throws(() => validateBody('Nope' as BodyDefinition, {}), TypeError);
  });
});

describe('PartialDrive', () => {
  it('accepts an id alone, a new path and a rate limiter', () => {
    assert.deepEqual(validateBody('PartialDrive', { drive_id: 'rootfs' }), { drive_id: 'rootfs', path_on_host: null, rate_limiter: null });
    assert.deepEqual(validateBody('PartialDrive', { drive_id: 'rootfs', path_on_host: '/new.ext4', rate_limiter: LIMITER }), {
      drive_id: 'rootfs',
      path_on_host: '/new.ext4',
      rate_limiter: { bandwidth: { size: 1000, one_time_burst: null, refill_time: 100 }, ops: { size: 10, one_time_burst: 5, refill_time: 100 } },
    });
    assert.equal(validateBody('PartialDrive', { drive_id: 'd', path_on_host: null }).path_on_host, null);
  });

  it('rejects bad bodies', () => {
    rejects('PartialDrive', { path_on_host: '/x' }, /missing required field "drive_id"/);
    rejects('PartialDrive', { drive_id: 'd', is_read_only: true }, /unknown field "is_read_only"/);
    rejects('PartialDrive', { drive_id: 'd', path_on_host: 7 }, /^path_on_host: expected a string, got integer 7$/);
    rejects('PartialDrive', { drive_id: 'd', path_on_host: '' }, /^path_on_host: must not be empty$/);
    rejects('PartialDrive', { drive_id: 'd', rate_limiter: { bw: {} } }, /^rate_limiter: unknown field "bw"/);
  });
});

describe('PartialNetworkInterface', () => {
  it('accepts rate limiter updates', () => {
    assert.deepEqual(validateBody('PartialNetworkInterface', { iface_id: 'eth0', rx_rate_limiter: {}, tx_rate_limiter: null }), {
      iface_id: 'eth0',
      rx_rate_limiter: { bandwidth: null, ops: null },
      tx_rate_limiter: null,
    });
  });

  it('rejects bad bodies', () => {
    rejects('PartialNetworkInterface', { rx_rate_limiter: {} }, /missing required field "iface_id"/);
    rejects('PartialNetworkInterface', { iface_id: 'eth0', guest_mac: '06:00:00:00:00:01' }, /unknown field "guest_mac"/);
    rejects('PartialNetworkInterface', { iface_id: 'eth0', tx_rate_limiter: [] }, /^tx_rate_limiter: expected an object, got an array$/);
    rejects('PartialNetworkInterface', { iface_id: 42 }, /^iface_id: expected a string/);
  });
});

describe('PartialPmem', () => {
  it('accepts a rate limiter update', () => {
    assert.deepEqual(validateBody('PartialPmem', { id: 'pmem0', rate_limiter: LIMITER }).rate_limiter?.ops?.one_time_burst, 5);
    assert.deepEqual(validateBody('PartialPmem', { id: 'pmem0' }), { id: 'pmem0', rate_limiter: null });
  });

  it('rejects bad bodies', () => {
    rejects('PartialPmem', {}, /missing required field "id"/);
    rejects('PartialPmem', { id: 'pmem0', read_only: true }, /unknown field "read_only"/);
    rejects('PartialPmem', { id: 'pmem0', rate_limiter: { ops: { size: -1, refill_time: 1 } } }, /^rate_limiter\.ops\.size: -1 is out of range/);
  });
});

describe('balloon updates', () => {
  it('BalloonUpdate', () => {
    assert.deepEqual(validateBody('BalloonUpdate', { amount_mib: 64 }), { amount_mib: 64 });
    rejects('BalloonUpdate', {}, /missing required field "amount_mib"/);
    rejects('BalloonUpdate', { amount_mib: 64, deflate_on_oom: true }, /unknown field "deflate_on_oom"/);
    rejects('BalloonUpdate', { amount_mib: 2 ** 32 }, /^amount_mib: 4294967296 is out of range \(0\.\.4294967295\)$/);
    rejects('BalloonUpdate', { amount_mib: '64' }, /^amount_mib: expected an integer, got string "64"$/);
  });

  it('BalloonStatsUpdate', () => {
    assert.deepEqual(validateBody('BalloonStatsUpdate', { stats_polling_interval_s: 5 }), { stats_polling_interval_s: 5 });
    rejects('BalloonStatsUpdate', {}, /missing required field "stats_polling_interval_s"/);
    rejects('BalloonStatsUpdate', { stats_polling_interval_s: 65536 }, /^stats_polling_interval_s: 65536 is out of range \(0\.\.65535\)$/);
    rejects('BalloonStatsUpdate', { stats_polling_interval_s: 1, amount_mib: 1 }, /unknown field "amount_mib"/);
  });

  it('BalloonStartCmd: the body is optional and acknowledges by default', () => {
    assert.deepEqual(validateBody('BalloonStartCmd', undefined), { acknowledge_on_stop: true });
    assert.deepEqual(validateBody('BalloonStartCmd', {}), { acknowledge_on_stop: true });
    assert.deepEqual(validateBody('BalloonStartCmd', { acknowledge_on_stop: false }), { acknowledge_on_stop: false });
    rejects('BalloonStartCmd', { acknowledge_on_stop: 'yes' }, /^acknowledge_on_stop: expected a boolean, got string "yes"$/);
    rejects('BalloonStartCmd', { acknowledge_on_stop: null }, /^acknowledge_on_stop: expected a boolean, got null$/);
    rejects('BalloonStartCmd', { acknowledge_on_finish: true }, /unknown field "acknowledge_on_finish"/);
    assert.throws(() => validateBalloonHintingStart(null), /^ConfigError: balloon: expected an object, got null$/);
  });
});

describe('MemoryHotplugSizeUpdate', () => {
  it('accepts a size', () => {
    assert.deepEqual(validateBody('MemoryHotplugSizeUpdate', { requested_size_mib: 0 }), { requested_size_mib: 0 });
    assert.deepEqual(validateBody('MemoryHotplugSizeUpdate', { requested_size_mib: 1024 }), { requested_size_mib: 1024 });
  });

  it('rejects bad bodies', () => {
    rejects('MemoryHotplugSizeUpdate', {}, /missing required field "requested_size_mib"/);
    rejects('MemoryHotplugSizeUpdate', { requested_size_mib: 1.5 }, /^requested_size_mib: expected an integer, got number 1\.5$/);
    rejects('MemoryHotplugSizeUpdate', { requested_size_mib: -2 }, /^requested_size_mib: -2 is out of range/);
    rejects('MemoryHotplugSizeUpdate', { requested_size_mib: 1, total_size_mib: 1 }, /unknown field "total_size_mib"/);
  });
});

describe('SnapshotCreateParams', () => {
  it('defaults to a full snapshot', () => {
    assert.deepEqual(validateBody('SnapshotCreateParams', { snapshot_path: '/s', mem_file_path: '/m' }), {
      snapshot_type: 'Full',
      snapshot_path: '/s',
      mem_file_path: '/m',
    });
    assert.equal(validateBody('SnapshotCreateParams', { snapshot_type: 'Diff', snapshot_path: '/s', mem_file_path: '/m' }).snapshot_type, 'Diff');
  });

  it('rejects bad bodies', () => {
    rejects('SnapshotCreateParams', { snapshot_path: '/s' }, /missing required field "mem_file_path"/);
    rejects('SnapshotCreateParams', { snapshot_path: '/s', mem_file_path: '/m', snapshot_type: 'Incremental' },
      /^snapshot_type: invalid value "Incremental" \(expected one of: Full, Diff\)$/);
    rejects('SnapshotCreateParams', { snapshot_path: '/s', mem_file_path: '/m', snapshot_type: null }, /^snapshot_type: expected one of Full, Diff, got null$/);
    rejects('SnapshotCreateParams', { snapshot_path: '/s', mem_file_path: '/m', version: '1.0' }, /unknown field "version"/);
    rejects('SnapshotCreateParams', { snapshot_path: '', mem_file_path: '/m' }, /^snapshot_path: must not be empty$/);
  });
});

describe('SnapshotLoadParams', () => {
  it('accepts a full body, with the defaults filled in', () => {
    assert.deepEqual(
      validateBody('SnapshotLoadParams', { snapshot_path: '/s', mem_backend: { backend_type: 'File', backend_path: '/m' } }),
      {
        snapshot_path: '/s',
        mem_backend: { backend_type: 'File', backend_path: '/m' },
        track_dirty_pages: false,
        resume_vm: false,
        network_overrides: [],
        vsock_override: null,
        clock_realtime: false,
        huge_pages: 'Snapshot',
        deprecation: null,
      },
    );
    const p = validateBody('SnapshotLoadParams', {
      snapshot_path: '/s',
      mem_backend: { backend_type: 'Uffd', backend_path: '/uffd.sock' },
      track_dirty_pages: true,
      resume_vm: true,
      network_overrides: [{ iface_id: 'eth0', host_dev_name: 'tap1' }],
      vsock_override: { uds_path: '/v.sock' },
      clock_realtime: true,
      huge_pages: '2M',
    });
    assert.deepEqual(p.network_overrides, [{ iface_id: 'eth0', host_dev_name: 'tap1' }]);
    assert.deepEqual(p.vsock_override, { uds_path: '/v.sock' });
    assert.equal(p.huge_pages, '2M');
    assert.equal(p.resume_vm, true);
    assert.equal(p.deprecation, null);
  });

  it('folds the deprecated fields in and flags them', () => {
    const p = validateBody('SnapshotLoadParams', { snapshot_path: '/s', mem_file_path: '/m', enable_diff_snapshots: true, mem_backend: null });
    assert.deepEqual(p.mem_backend, { backend_type: 'File', backend_path: '/m' });
    assert.equal(p.track_dirty_pages, true);
    assert.equal(p.deprecation, SNAPSHOT_LOAD_DEPRECATION_MESSAGE);
    const q = validateBody('SnapshotLoadParams', { snapshot_path: '/s', mem_backend: { backend_type: 'File', backend_path: '/m' }, enable_diff_snapshots: true });
    assert.equal(q.track_dirty_pages, true);
    assert.equal(q.deprecation, SNAPSHOT_LOAD_DEPRECATION_MESSAGE);
  });

  it('needs exactly one of mem_backend and mem_file_path', () => {
    rejects('SnapshotLoadParams', { snapshot_path: '/s' }, /^missing "mem_backend" \(or the deprecated "mem_file_path"\)$/);
    rejects('SnapshotLoadParams', { snapshot_path: '/s', mem_file_path: null, mem_backend: null }, /missing "mem_backend"/);
    rejects('SnapshotLoadParams', { snapshot_path: '/s', mem_file_path: '/m', mem_backend: { backend_type: 'File', backend_path: '/m' } },
      /"mem_backend" and the deprecated "mem_file_path" cannot both be given/);
  });

  it('rejects bad bodies', () => {
    const base = { snapshot_path: '/s', mem_backend: { backend_type: 'File', backend_path: '/m' } };
    rejects('SnapshotLoadParams', { mem_file_path: '/m' }, /missing required field "snapshot_path"/);
    rejects('SnapshotLoadParams', { ...base, resume: true }, /unknown field "resume"/);
    rejects('SnapshotLoadParams', { ...base, resume_vm: 'true' }, /^resume_vm: expected a boolean, got string "true"$/);
    rejects('SnapshotLoadParams', { ...base, resume_vm: null }, /^resume_vm: expected a boolean, got null$/);
    rejects('SnapshotLoadParams', { ...base, track_dirty_pages: 1 }, /^track_dirty_pages: expected a boolean, got integer 1$/);
    rejects('SnapshotLoadParams', { snapshot_path: '/s', mem_backend: { backend_type: 'Shm', backend_path: '/m' } },
      /^mem_backend\.backend_type: invalid value "Shm" \(expected one of: File, Uffd\)$/);
    rejects('SnapshotLoadParams', { snapshot_path: '/s', mem_backend: { backend_type: 'File' } }, /^mem_backend: missing required field "backend_path"$/);
    rejects('SnapshotLoadParams', { snapshot_path: '/s', mem_backend: { backend_type: 'File', backend_path: '/m', x: 1 } }, /^mem_backend: unknown field "x"/);
    rejects('SnapshotLoadParams', { ...base, huge_pages: '1G' }, /^huge_pages: invalid value "1G"/);
    rejects('SnapshotLoadParams', { ...base, huge_pages: '2M' }, /^huge_pages: "2M" \(hugetlbfs\) requires a "Uffd" mem_backend/);
    rejects('SnapshotLoadParams', { snapshot_path: '/s', mem_file_path: '/m', huge_pages: '2M' }, /^huge_pages: .*"Uffd"/);
    rejects('SnapshotLoadParams', { ...base, vsock_override: { path: '/v' } }, /^vsock_override: unknown field "path"/);
    rejects('SnapshotLoadParams', { ...base, vsock_override: {} }, /^vsock_override: missing required field "uds_path"$/);
  });

  it('checks network_overrides', () => {
    const base = { snapshot_path: '/s', mem_file_path: '/m' };
    rejects('SnapshotLoadParams', { ...base, network_overrides: {} }, /^network_overrides: expected an array, got an object$/);
    rejects('SnapshotLoadParams', { ...base, network_overrides: null }, /^network_overrides: expected an array, got null$/);
    rejects('SnapshotLoadParams', { ...base, network_overrides: [{ iface_id: 'eth0' }] }, /^network_overrides\[0\]: missing required field "host_dev_name"$/);
    rejects('SnapshotLoadParams', { ...base, network_overrides: [{ iface_id: 'eth0', host_dev_name: 'tap0', mac: 'x' }] }, /^network_overrides\[0\]: unknown field "mac"/);
    rejects('SnapshotLoadParams', { ...base, network_overrides: [{ iface_id: 'eth0', host_dev_name: 'a-very-long-tap-name' }] },
      /^network_overrides\[0\]\.host_dev_name: "a-very-long-tap-name" is longer than 15 bytes \(IFNAMSIZ\)$/);
    rejects('SnapshotLoadParams', { ...base, network_overrides: [{ iface_id: 'eth0', host_dev_name: 'tap0' }, { iface_id: 'eth0', host_dev_name: 'tap1' }] },
      /^network_overrides\[1\]\.iface_id: duplicate override for "eth0"$/);
  });
});

describe('Vm', () => {
  it('accepts Paused and Resumed', () => {
    assert.deepEqual(validateBody('Vm', { state: 'Paused' }), { state: 'Paused' });
    assert.deepEqual(validateBody('Vm', { state: 'Resumed' }), { state: 'Resumed' });
  });

  it('rejects bad bodies', () => {
    rejects('Vm', {}, /missing required field "state"/);
    rejects('Vm', { state: 'Running' }, /^state: invalid value "Running" \(expected one of: Paused, Resumed\)$/);
    rejects('Vm', { state: 'paused' }, /^state: invalid value "paused"/);
    rejects('Vm', { state: 'Paused', force: true }, /unknown field "force"/);
    rejects('Vm', { state: 1 }, /^state: expected one of Paused, Resumed, got integer 1$/);
  });
});

describe('InstanceActionInfo', () => {
  it('accepts the three actions', () => {
    for (const action_type of ['FlushMetrics', 'InstanceStart', 'SendCtrlAltDel']) {
      assert.deepEqual(validateBody('InstanceActionInfo', { action_type }), { action_type });
    }
  });

  it('rejects bad bodies', () => {
    rejects('InstanceActionInfo', {}, /missing required field "action_type"/);
    rejects('InstanceActionInfo', { action_type: 'InstanceHalt' }, /^action_type: invalid value "InstanceHalt"/);
    rejects('InstanceActionInfo', { action_type: 'InstanceStart', payload: {} }, /unknown field "payload"/);
    rejects('InstanceActionInfo', { action_type: null }, /^action_type: expected one of FlushMetrics, InstanceStart, SendCtrlAltDel, got null$/);
  });
});

describe('MmdsContentsObject', () => {
  it('accepts any JSON object', () => {
    const data = { latest: { 'meta-data': { 'ami-id': 'ami-12345678', tags: [1, 'two', null, { x: true }] } } };
    assert.deepEqual(validateBody('MmdsContentsObject', data), data);
    assert.deepEqual(validateBody('MmdsContentsObject', {}), {});
  });

  it('rejects anything else', () => {
    rejects('MmdsContentsObject', [], /^expected a JSON object, got an array$/);
    rejects('MmdsContentsObject', null, /^expected a JSON object, got null$/);
    rejects('MmdsContentsObject', 'meta', /^expected a JSON object, got string "meta"$/);
    rejects('MmdsContentsObject', 3, /^expected a JSON object, got integer 3$/);
    assert.throws(() => BODY_VALIDATORS.MmdsContentsObject(true), /^ConfigError: mmds: expected a JSON object, got boolean true$/);
  });
});
