/**
 * The `PUT /snapshot/create` (yaml: SnapshotCreateParams) and
 * `PUT /snapshot/load` (yaml: SnapshotLoadParams) bodies. Validated exactly;
 * snapshots themselves come later. Whether the paths can be created or
 * opened is checked when the snapshot is taken or loaded, not here.
 */
import { checkHostDevName } from './net.js';
import { Fields, fail, joinPath } from './validate.js';

export const SNAPSHOT_TYPES = ['Full', 'Diff'] as const;
export type SnapshotType = (typeof SNAPSHOT_TYPES)[number];

export const MEM_BACKEND_TYPES = ['File', 'Uffd'] as const;
export type MemBackendType = (typeof MEM_BACKEND_TYPES)[number];

/** `Snapshot` reuses the snapshot's own setting; the others override it. */
export const SNAPSHOT_LOAD_HUGE_PAGES = ['Snapshot', 'None', 'Transparent', '2M'] as const;
export type SnapshotLoadHugePages = (typeof SNAPSHOT_LOAD_HUGE_PAGES)[number];

/**
 * Firecracker's deprecation warning for a load body that uses
 * `mem_file_path` or `enable_diff_snapshots` (sent as its Deprecation header).
 */
export const SNAPSHOT_LOAD_DEPRECATION_MESSAGE =
  'PUT /snapshot/load: mem_file_path and enable_diff_snapshots fields are deprecated.';

export interface SnapshotCreateParams {
  snapshot_type: SnapshotType;
  /** File that will hold the microVM state. */
  snapshot_path: string;
  /** File that will hold the guest memory. */
  mem_file_path: string;
}

/** yaml: MemoryBackend. */
export interface MemoryBackend {
  backend_type: MemBackendType;
  /** The memory file (File) or the UDS of the page-fault handler (Uffd). */
  backend_path: string;
}

/** yaml: NetworkOverride: a new TAP for a snapshotted interface. */
export interface NetworkOverride {
  iface_id: string;
  host_dev_name: string;
}

/** yaml: VsockOverride: a new backing UDS for the snapshotted vsock device. */
export interface VsockOverride {
  uds_path: string;
}

/**
 * A load request in the form the VMM acts on (Firecracker's
 * LoadSnapshotParams): the deprecated fields are folded in, so
 * `mem_file_path` becomes a File `mem_backend` and `enable_diff_snapshots`
 * is OR-ed into `track_dirty_pages`.
 */
export interface SnapshotLoadParams {
  snapshot_path: string;
  mem_backend: MemoryBackend;
  track_dirty_pages: boolean;
  resume_vm: boolean;
  network_overrides: NetworkOverride[];
  vsock_override: VsockOverride | null;
  /** x86_64: advance kvmclock by the wall-clock time since the snapshot. */
  clock_realtime: boolean;
  huge_pages: SnapshotLoadHugePages;
  /** SNAPSHOT_LOAD_DEPRECATION_MESSAGE when a deprecated field was used, else null. */
  deprecation: string | null;
}

const CREATE_FIELDS = ['snapshot_type', 'snapshot_path', 'mem_file_path'] as const;
const LOAD_FIELDS = [
  'snapshot_path',
  'mem_file_path',
  'mem_backend',
  'enable_diff_snapshots',
  'track_dirty_pages',
  'resume_vm',
  'network_overrides',
  'vsock_override',
  'clock_realtime',
  'huge_pages',
] as const;

export function validateSnapshotCreateParams(input: unknown, at = 'snapshot-create'): SnapshotCreateParams {
  const f = Fields.of(input, at, CREATE_FIELDS);
  return {
    snapshot_type: f.defEnum('snapshot_type', SNAPSHOT_TYPES, 'Full'),
    snapshot_path: f.nonEmptyStr('snapshot_path'),
    mem_file_path: f.nonEmptyStr('mem_file_path'),
  };
}

function validateMemoryBackend(input: unknown, at: string): MemoryBackend {
  const f = Fields.of(input, at, ['backend_type', 'backend_path']);
  return {
    backend_type: f.enumOf('backend_type', MEM_BACKEND_TYPES),
    backend_path: f.nonEmptyStr('backend_path'),
  };
}

function validateNetworkOverride(input: unknown, at: string): NetworkOverride {
  const f = Fields.of(input, at, ['iface_id', 'host_dev_name']);
  return {
    iface_id: f.nonEmptyStr('iface_id'),
    host_dev_name: checkHostDevName(f.nonEmptyStr('host_dev_name'), f.path('host_dev_name')),
  };
}

function validateVsockOverride(input: unknown, at: string): VsockOverride {
  const f = Fields.of(input, at, ['uds_path']);
  return { uds_path: f.nonEmptyStr('uds_path') };
}

/**
 * Validates a SnapshotLoadParams body. Exactly one of `mem_backend` and the
 * deprecated `mem_file_path` must be set (null counts as not set, both being
 * Options in Firecracker). Explicit `2M` huge pages need a Uffd backend, as
 * the yaml says; Firecracker refuses that combination only when loading,
 * here it is refused up front. (`Snapshot` resolving to 2M is still the
 * loader's to refuse.)
 */
export function validateSnapshotLoadParams(input: unknown, at = 'snapshot-load'): SnapshotLoadParams {
  const f = Fields.of(input, at, LOAD_FIELDS);
  const snapshot_path = f.nonEmptyStr('snapshot_path');
  const mem_file_path = f.optStr('mem_file_path');
  if (mem_file_path === '') fail(f.path('mem_file_path'), 'must not be empty');
  const backend = f.optObject('mem_backend', validateMemoryBackend);
  if (backend !== null && mem_file_path !== null) {
    fail(at, '"mem_backend" and the deprecated "mem_file_path" cannot both be given (use "mem_backend")');
  }
  if (backend === null && mem_file_path === null) {
    fail(at, 'missing "mem_backend" (or the deprecated "mem_file_path")');
  }
  const mem_backend: MemoryBackend = backend ?? { backend_type: 'File', backend_path: mem_file_path as string };

  const enable_diff_snapshots = f.defBool('enable_diff_snapshots', false);
  const track_dirty_pages = f.defBool('track_dirty_pages', false);
  const resume_vm = f.defBool('resume_vm', false);

  const network_overrides = f.defArray('network_overrides', validateNetworkOverride);
  const seen = new Set<string>();
  network_overrides.forEach((o, i) => {
    if (seen.has(o.iface_id)) {
      fail(joinPath(joinPath(f.path('network_overrides'), i), 'iface_id'), `duplicate override for ${JSON.stringify(o.iface_id)}`);
    }
    seen.add(o.iface_id);
  });

  const vsock_override = f.optObject('vsock_override', validateVsockOverride);
  const clock_realtime = f.defBool('clock_realtime', false);
  const huge_pages = f.defEnum('huge_pages', SNAPSHOT_LOAD_HUGE_PAGES, 'Snapshot');
  if (huge_pages === '2M' && mem_backend.backend_type !== 'Uffd') {
    fail(f.path('huge_pages'), '"2M" (hugetlbfs) requires a "Uffd" mem_backend; a memory file cannot back hugetlbfs pages');
  }

  return {
    snapshot_path,
    mem_backend,
    track_dirty_pages: track_dirty_pages || enable_diff_snapshots,
    resume_vm,
    network_overrides,
    vsock_override,
    clock_realtime,
    huge_pages,
    deprecation: mem_file_path !== null || enable_diff_snapshots ? SNAPSHOT_LOAD_DEPRECATION_MESSAGE : null,
  };
}
