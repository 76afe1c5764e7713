/**
 * Runtime mirror of ./types.ts, so that the types can be checked against the
 * yaml (tests/unit/client_spec.test.ts):
 *
 * - `DEFINITION_FIELDS[Name]` lists every field of the interface for yaml
 *   definition `Name`, as `'required'` or `'optional'`. The compiler holds it
 *   to the interface: a missing field, an extra field or a wrong
 *   required/optional mark does not type-check.
 * - `DEFINITION_ENUMS` gives the enum arrays, by yaml location.
 * - `FREE_FORM_DEFINITIONS` names the definitions that are any JSON object.
 */
import type * as T from './types.js';
import {
  ACTION_TYPES,
  CACHE_TYPES,
  CPUID_REGISTERS,
  CPU_TEMPLATES,
  HUGE_PAGES,
  INSTANCE_STATES,
  IO_ENGINES,
  LOG_LEVELS,
  MEMORY_BACKEND_TYPES,
  MMDS_VERSIONS,
  SNAPSHOT_LOAD_HUGE_PAGES,
  SNAPSHOT_TYPES,
  VM_STATES,
} from './types.js';

export type FieldPresence = 'required' | 'optional';

/** Every key of T, each marked as T has it: required or optional. */
export type FieldTable<T> = { readonly [K in keyof T]-?: {} extends Pick<T, K> ? 'optional' : 'required' };

/** yaml definition name → the interface that models it (object definitions with properties). */
export interface ObjectDefinitions {
  ArmRegisterModifier: T.ArmRegisterModifier;
  Balloon: T.Balloon;
  BalloonHintingStatus: T.BalloonHintingStatus;
  BalloonStartCmd: T.BalloonStartCmd;
  BalloonStats: T.BalloonStats;
  BalloonStatsUpdate: T.BalloonStatsUpdate;
  BalloonUpdate: T.BalloonUpdate;
  BootSource: T.BootSource;
  CpuConfig: T.CpuConfig;
  CpuidLeafModifier: T.CpuidLeafModifier;
  CpuidRegisterModifier: T.CpuidRegisterModifier;
  Drive: T.Drive;
  EntropyDevice: T.EntropyDevice;
  Error: T.ErrorBody;
  FirecrackerVersion: T.FirecrackerVersion;
  FullVmConfiguration: T.FullVmConfiguration;
  InstanceActionInfo: T.InstanceActionInfo;
  InstanceInfo: T.InstanceInfo;
  Logger: T.Logger;
  MachineConfiguration: T.MachineConfiguration;
  MemoryBackend: T.MemoryBackend;
  MemoryHotplugConfig: T.MemoryHotplugConfig;
  MemoryHotplugSizeUpdate: T.MemoryHotplugSizeUpdate;
  MemoryHotplugStatus: T.MemoryHotplugStatus;
  Metrics: T.Metrics;
  MmdsConfig: T.MmdsConfig;
  MsrModifier: T.MsrModifier;
  NetworkInterface: T.NetworkInterface;
  NetworkOverride: T.NetworkOverride;
  PartialDrive: T.PartialDrive;
  PartialNetworkInterface: T.PartialNetworkInterface;
  PartialPmem: T.PartialPmem;
  Pmem: T.Pmem;
  RateLimiter: T.RateLimiter;
  SerialDevice: T.SerialDevice;
  SnapshotCreateParams: T.SnapshotCreateParams;
  SnapshotLoadParams: T.SnapshotLoadParams;
  TokenBucket: T.TokenBucket;
  VcpuFeatures: T.VcpuFeatures;
  Vm: T.Vm;
  Vsock: T.Vsock;
  VsockOverride: T.VsockOverride;
}

const R = 'required' as const;
const O = 'optional' as const;

export const DEFINITION_FIELDS: { readonly [N in keyof ObjectDefinitions]: FieldTable<ObjectDefinitions[N]> } = {
  ArmRegisterModifier: { addr: R, bitmap: R },
  Balloon: {
    amount_mib: R,
    deflate_on_oom: R,
    stats_polling_interval_s: O,
    free_page_hinting: O,
    free_page_reporting: O,
  },
  BalloonHintingStatus: { host_cmd: R, guest_cmd: O },
  BalloonStartCmd: { acknowledge_on_stop: O },
  BalloonStats: {
    target_pages: R,
    actual_pages: R,
    target_mib: R,
    actual_mib: R,
    swap_in: O,
    swap_out: O,
    major_faults: O,
    minor_faults: O,
    free_memory: O,
    total_memory: O,
    available_memory: O,
    disk_caches: O,
    hugetlb_allocations: O,
    hugetlb_failures: O,
    oom_kill: O,
    alloc_stall: O,
    async_scan: O,
    direct_scan: O,
    async_reclaim: O,
    direct_reclaim: O,
  },
  BalloonStatsUpdate: { stats_polling_interval_s: R },
  BalloonUpdate: { amount_mib: R },
  BootSource: { boot_args: O, initrd_path: O, kernel_image_path: R },
  CpuConfig: { kvm_capabilities: O, cpuid_modifiers: O, msr_modifiers: O, reg_modifiers: O, vcpu_features: O },
  CpuidLeafModifier: { leaf: R, subleaf: R, flags: R, modifiers: R },
  CpuidRegisterModifier: { register: R, bitmap: R },
  Drive: {
    drive_id: R,
    partuuid: O,
    is_root_device: R,
    cache_type: O,
    is_read_only: O,
    path_on_host: O,
    rate_limiter: O,
    io_engine: O,
    socket: O,
  },
  EntropyDevice: { rate_limiter: O },
  Error: { fault_message: O },
  FirecrackerVersion: { firecracker_version: R },
  FullVmConfiguration: {
    balloon: O,
    drives: O,
    'boot-source': O,
    'cpu-config': O,
    logger: O,
    'machine-config': O,
    metrics: O,
    'memory-hotplug': O,
    'mmds-config': O,
    'network-interfaces': O,
    pmem: O,
    vsock: O,
    entropy: O,
  },
  InstanceActionInfo: { action_type: R },
  InstanceInfo: { app_name: R, id: R, state: R, vmm_version: R },
  Logger: { level: O, log_path: O, show_level: O, show_log_origin: O, module: O },
  MachineConfiguration: {
    cpu_template: O,
    smt: O,
    mem_size_mib: R,
    track_dirty_pages: O,
    vcpu_count: R,
    huge_pages: O,
  },
  MemoryBackend: { backend_type: R, backend_path: R },
  MemoryHotplugConfig: { total_size_mib: O, slot_size_mib: O, block_size_mib: O },
  MemoryHotplugSizeUpdate: { requested_size_mib: O },
  MemoryHotplugStatus: {
    total_size_mib: O,
    slot_size_mib: O,
    block_size_mib: O,
    plugged_size_mib: O,
    requested_size_mib: O,
  },
  Metrics: { metrics_path: R, emit_id: O, properties: O },
  MmdsConfig: { version: O, network_interfaces: R, ipv4_address: O, imds_compat: O },
  MsrModifier: { addr: R, bitmap: R },
  NetworkInterface: {
    guest_mac: O,
    host_dev_name: R,
    iface_id: R,
    mtu: O,
    rx_rate_limiter: O,
    tx_rate_limiter: O,
  },
  NetworkOverride: { iface_id: R, host_dev_name: R },
  PartialDrive: { drive_id: R, path_on_host: O, rate_limiter: O },
  PartialNetworkInterface: { iface_id: R, rx_rate_limiter: O, tx_rate_limiter: O },
  PartialPmem: { id: R, rate_limiter: O },
  Pmem: { id: R, path_on_host: R, root_device: O, read_only: O, rate_limiter: O },
  RateLimiter: { bandwidth: O, ops: O },
  SerialDevice: { serial_out_path: O, rate_limiter: O },
  SnapshotCreateParams: { mem_file_path: R, snapshot_path: R, snapshot_type: O },
  SnapshotLoadParams: {
    enable_diff_snapshots: O,
    track_dirty_pages: O,
    mem_file_path: O,
    mem_backend: O,
    snapshot_path: R,
    resume_vm: O,
    network_overrides: O,
    vsock_override: O,
    clock_realtime: O,
    huge_pages: O,
  },
  TokenBucket: { one_time_burst: O, refill_time: R, size: R },
  VcpuFeatures: { index: R, bitmap: R },
  Vm: { state: R },
  Vsock: { guest_cid: R, uds_path: R, vsock_id: O },
  VsockOverride: { uds_path: R },
};

/** Definitions that are any JSON object (no properties, additionalProperties: true). */
export const FREE_FORM_DEFINITIONS = ['MmdsContentsObject'] as const;

/**
 * The enum arrays, keyed by where the enum sits in the yaml: `Def` for a
 * string-enum definition, `Def.field` for a property. `_EnumTypesMatch`
 * below ties each array to the field type it stands for.
 */
export const DEFINITION_ENUMS: { readonly [where: string]: readonly string[] } = {
  CpuTemplate: CPU_TEMPLATES,
  'InstanceActionInfo.action_type': ACTION_TYPES,
  'InstanceInfo.state': INSTANCE_STATES,
  'Vm.state': VM_STATES,
  'Logger.level': LOG_LEVELS,
  'MachineConfiguration.huge_pages': HUGE_PAGES,
  'SnapshotLoadParams.huge_pages': SNAPSHOT_LOAD_HUGE_PAGES,
  'Drive.cache_type': CACHE_TYPES,
  'Drive.io_engine': IO_ENGINES,
  'MmdsConfig.version': MMDS_VERSIONS,
  'SnapshotCreateParams.snapshot_type': SNAPSHOT_TYPES,
  'MemoryBackend.backend_type': MEMORY_BACKEND_TYPES,
  'CpuidRegisterModifier.register': CPUID_REGISTERS,
};

// Compile-time: each `Def.field` enum above is exactly that field's type.
type FieldEnum<N extends keyof ObjectDefinitions, F extends keyof ObjectDefinitions[N]> = NonNullable<
  ObjectDefinitions[N][F]
>;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<X extends true> = X;
export type _EnumTypesMatch = [
  Assert<Same<FieldEnum<'MachineConfiguration', 'cpu_template'>, (typeof CPU_TEMPLATES)[number]>>,
  Assert<Same<FieldEnum<'InstanceActionInfo', 'action_type'>, (typeof ACTION_TYPES)[number]>>,
  Assert<Same<FieldEnum<'InstanceInfo', 'state'>, (typeof INSTANCE_STATES)[number]>>,
  Assert<Same<FieldEnum<'Vm', 'state'>, (typeof VM_STATES)[number]>>,
  Assert<Same<FieldEnum<'Logger', 'level'>, (typeof LOG_LEVELS)[number]>>,
  Assert<Same<FieldEnum<'MachineConfiguration', 'huge_pages'>, (typeof HUGE_PAGES)[number]>>,
  Assert<Same<FieldEnum<'SnapshotLoadParams', 'huge_pages'>, (typeof SNAPSHOT_LOAD_HUGE_PAGES)[number]>>,
  Assert<Same<FieldEnum<'Drive', 'cache_type'>, (typeof CACHE_TYPES)[number]>>,
  Assert<Same<FieldEnum<'Drive', 'io_engine'>, (typeof IO_ENGINES)[number]>>,
  Assert<Same<FieldEnum<'MmdsConfig', 'version'>, (typeof MMDS_VERSIONS)[number]>>,
  Assert<Same<FieldEnum<'SnapshotCreateParams', 'snapshot_type'>, (typeof SNAPSHOT_TYPES)[number]>>,
  Assert<Same<FieldEnum<'MemoryBackend', 'backend_type'>, (typeof MEMORY_BACKEND_TYPES)[number]>>,
  Assert<Same<FieldEnum<'CpuidRegisterModifier', 'register'>, (typeof CPUID_REGISTERS)[number]>>,
];
