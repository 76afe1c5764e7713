/**
 * The `memory-hotplug` section / `PUT /hotplug/memory` body (yaml:
 * MemoryHotplugConfig) and the `PATCH /hotplug/memory` body (yaml:
 * MemoryHotplugSizeUpdate). Validated exactly; virtio-mem comes later.
 */
import { Fields, U32_MAX, fail } from './validate.js';

/** virtio-mem defaults, which are also the minimums. */
export const DEFAULT_BLOCK_SIZE_MIB = 2;
export const DEFAULT_SLOT_SIZE_MIB = 128;

export interface MemoryHotplugConfig {
  total_size_mib: number;
  block_size_mib: number;
  slot_size_mib: number;
}

const FIELDS = ['total_size_mib', 'slot_size_mib', 'block_size_mib'] as const;
const U32 = { min: 0, max: U32_MAX };

/** Firecracker's MemoryHotplugConfig::validate() rules, in its order. */
export function validateMemoryHotplugConfig(input: unknown, at = 'memory-hotplug'): MemoryHotplugConfig {
  const f = Fields.of(input, at, FIELDS);
  const total_size_mib = f.int('total_size_mib', U32);
  const block_size_mib = f.defInt('block_size_mib', DEFAULT_BLOCK_SIZE_MIB, U32);
  const slot_size_mib = f.defInt('slot_size_mib', DEFAULT_SLOT_SIZE_MIB, U32);
  if (block_size_mib < DEFAULT_BLOCK_SIZE_MIB) {
    fail(f.path('block_size_mib'), `must not be lower than ${DEFAULT_BLOCK_SIZE_MIB} MiB`);
  }
  if ((block_size_mib & (block_size_mib - 1)) !== 0) fail(f.path('block_size_mib'), 'must be a power of 2');
  if (slot_size_mib < DEFAULT_SLOT_SIZE_MIB) {
    fail(f.path('slot_size_mib'), `must not be lower than ${DEFAULT_SLOT_SIZE_MIB} MiB`);
  }
  if (slot_size_mib % block_size_mib !== 0) {
    fail(f.path('slot_size_mib'), `must be a multiple of block size (${block_size_mib} MiB)`);
  }
  if (total_size_mib < slot_size_mib) {
    fail(f.path('total_size_mib'), `must not be lower than slot size (${slot_size_mib} MiB)`);
  }
  if (total_size_mib % slot_size_mib !== 0) {
    fail(f.path('total_size_mib'), `must be a multiple of slot size (${slot_size_mib} MiB)`);
  }
  return { total_size_mib, block_size_mib, slot_size_mib };
}

/** PATCH /hotplug/memory (yaml: MemoryHotplugSizeUpdate). */
export interface MemoryHotplugSizeUpdate {
  /** New target size of the hotpluggable region. */
  requested_size_mib: number;
}

/**
 * Validates a MemoryHotplugSizeUpdate body. The yaml lists no required
 * field, but Firecracker's struct has no default for requested_size_mib, so
 * serde refuses a body without it; so do we. Block/slot alignment and the
 * upper bound depend on the configured device and are checked there.
 */
export function validateMemoryHotplugSizeUpdate(input: unknown, at = 'memory-hotplug'): MemoryHotplugSizeUpdate {
  const f = Fields.of(input, at, ['requested_size_mib']);
  return { requested_size_mib: f.int('requested_size_mib', U32) };
}
