/**
 * Wire types of the Firecracker API (../shared/ref/firecracker-api.yaml,
 * Swagger 2.0), one interface per `definitions` entry, field names exactly as
 * in the yaml. A field is optional here exactly when the yaml does not list it
 * under `required` (tests/unit/client_spec.test.ts checks this through
 * `DEFINITION_FIELDS` in ./fields.ts).
 *
 * Enumerations are runtime arrays with the type derived from them, so that
 * the values too can be checked against the yaml.
 */

// ---------------------------------------------------------------- enumerations

/** definitions.CpuTemplate (deprecated in Firecracker, still accepted). */
export const CPU_TEMPLATES = ['C3', 'T2', 'T2S', 'T2CL', 'T2A', 'V1N1', 'None'] as const;
export type CpuTemplate = (typeof CPU_TEMPLATES)[number];

export const ACTION_TYPES = ['FlushMetrics', 'InstanceStart', 'SendCtrlAltDel'] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

export const INSTANCE_STATES = ['Not started', 'Running', 'Paused'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

export const VM_STATES = ['Paused', 'Resumed'] as const;
export type VmState = (typeof VM_STATES)[number];

export const LOG_LEVELS = ['Error', 'Warning', 'Info', 'Debug', 'Trace', 'Off'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const HUGE_PAGES = ['None', 'Transparent', '2M'] as const;
export type HugePages = (typeof HUGE_PAGES)[number];

/** SnapshotLoadParams.huge_pages: HUGE_PAGES plus `Snapshot` (keep what the snapshot says). */
export const SNAPSHOT_LOAD_HUGE_PAGES = ['Snapshot', 'None', 'Transparent', '2M'] as const;
export type SnapshotLoadHugePages = (typeof SNAPSHOT_LOAD_HUGE_PAGES)[number];

export const CACHE_TYPES = ['Unsafe', 'Writeback'] as const;
export type CacheType = (typeof CACHE_TYPES)[number];

export const IO_ENGINES = ['Sync', 'Async'] as const;
export type IoEngine = (typeof IO_ENGINES)[number];

export const MMDS_VERSIONS = ['V1', 'V2'] as const;
export type MmdsVersion = (typeof MMDS_VERSIONS)[number];

export const SNAPSHOT_TYPES = ['Full', 'Diff'] as const;
export type SnapshotType = (typeof SNAPSHOT_TYPES)[number];

export const MEMORY_BACKEND_TYPES = ['File', 'Uffd'] as const;
export type MemoryBackendType = (typeof MEMORY_BACKEND_TYPES)[number];

export const CPUID_REGISTERS = ['eax', 'ebx', 'ecx', 'edx'] as const;
export type CpuidRegister = (typeof CPUID_REGISTERS)[number];

// ---------------------------------------------------------------- instance

export interface InstanceInfo {
  app_name: string;
  id: string;
  state: InstanceState;
  vmm_version: string;
}

export interface InstanceActionInfo {
  action_type: ActionType;
}

export interface FirecrackerVersion {
  firecracker_version: string;
}

/**
 * definitions.Error, the body of every error response: `{"fault_message": "..."}`
 * (named ErrorBody so as not to shadow the global `Error`).
 */
export interface ErrorBody {
  fault_message?: string;
}

export interface Vm {
  state: VmState;
}

// ---------------------------------------------------------------- machine

export interface MachineConfiguration {
  cpu_template?: CpuTemplate;
  smt?: boolean;
  mem_size_mib: number;
  track_dirty_pages?: boolean;
  vcpu_count: number;
  huge_pages?: HugePages;
}

export interface BootSource {
  boot_args?: string;
  initrd_path?: string;
  kernel_image_path: string;
}

export interface CpuConfig {
  /** KVM capabilities as numeric strings; `!` prefix removes one (`"!121"`). */
  kvm_capabilities?: string[];
  cpuid_modifiers?: CpuidLeafModifier[];
  msr_modifiers?: MsrModifier[];
  reg_modifiers?: ArmRegisterModifier[];
  vcpu_features?: VcpuFeatures[];
}

export interface CpuidLeafModifier {
  leaf: string;
  subleaf: string;
  flags: number;
  modifiers: CpuidRegisterModifier[];
}

export interface CpuidRegisterModifier {
  register: CpuidRegister;
  /** `"0b"` + 32 of `0`/`1`/`x`. */
  bitmap: string;
}

export interface MsrModifier {
  addr: string;
  bitmap: string;
}

export interface ArmRegisterModifier {
  addr: string;
  bitmap: string;
}

export interface VcpuFeatures {
  index: number;
  bitmap: string;
}

// ---------------------------------------------------------------- logging

export interface Logger {
  level?: LogLevel;
  log_path?: string;
  show_level?: boolean;
  show_log_origin?: boolean;
  module?: string;
}

export interface Metrics {
  metrics_path: string;
  emit_id?: boolean;
  properties?: Record<string, string>;
}

// ---------------------------------------------------------------- devices

export interface TokenBucket {
  one_time_burst?: number;
  refill_time: number;
  size: number;
}

export interface RateLimiter {
  bandwidth?: TokenBucket;
  ops?: TokenBucket;
}

export interface Drive {
  drive_id: string;
  partuuid?: string;
  is_root_device: boolean;
  cache_type?: CacheType;
  is_read_only?: boolean;
  path_on_host?: string;
  rate_limiter?: RateLimiter;
  io_engine?: IoEngine;
  /** vhost-user-block backend socket. */
  socket?: string;
}

export interface PartialDrive {
  drive_id: string;
  path_on_host?: string;
  rate_limiter?: RateLimiter;
}

export interface Pmem {
  id: string;
  path_on_host: string;
  root_device?: boolean;
  read_only?: boolean;
  rate_limiter?: RateLimiter;
}

export interface PartialPmem {
  id: string;
  rate_limiter?: RateLimiter;
}

export interface NetworkInterface {
  guest_mac?: string;
  host_dev_name: string;
  iface_id: string;
  mtu?: number;
  rx_rate_limiter?: RateLimiter;
  tx_rate_limiter?: RateLimiter;
}

export interface PartialNetworkInterface {
  iface_id: string;
  rx_rate_limiter?: RateLimiter;
  tx_rate_limiter?: RateLimiter;
}

export interface Vsock {
  guest_cid: number;
  uds_path: string;
  /** Deprecated. */
  vsock_id?: string;
}

export interface EntropyDevice {
  rate_limiter?: RateLimiter;
}

export interface SerialDevice {
  serial_out_path?: string;
  rate_limiter?: TokenBucket;
}

// ---------------------------------------------------------------- balloon

export interface Balloon {
  amount_mib: number;
  deflate_on_oom: boolean;
  stats_polling_interval_s?: number;
  free_page_hinting?: boolean;
  free_page_reporting?: boolean;
}

export interface BalloonUpdate {
  amount_mib: number;
}

export interface BalloonStatsUpdate {
  stats_polling_interval_s: number;
}

export interface BalloonStats {
  target_pages: number;
  actual_pages: number;
  target_mib: number;
  actual_mib: number;
  swap_in?: number;
  swap_out?: number;
  major_faults?: number;
  minor_faults?: number;
  free_memory?: number;
  total_memory?: number;
  available_memory?: number;
  disk_caches?: number;
  hugetlb_allocations?: number;
  hugetlb_failures?: number;
  oom_kill?: number;
  alloc_stall?: number;
  async_scan?: number;
  direct_scan?: number;
  async_reclaim?: number;
  direct_reclaim?: number;
}

export interface BalloonStartCmd {
  acknowledge_on_stop?: boolean;
}

export interface BalloonHintingStatus {
  host_cmd: number;
  guest_cmd?: number;
}

// ---------------------------------------------------------------- memory hotplug

export interface MemoryHotplugConfig {
  total_size_mib?: number;
  slot_size_mib?: number;
  block_size_mib?: number;
}

export interface MemoryHotplugSizeUpdate {
  requested_size_mib?: number;
}

export interface MemoryHotplugStatus {
  total_size_mib?: number;
  slot_size_mib?: number;
  block_size_mib?: number;
  plugged_size_mib?: number;
  requested_size_mib?: number;
}

// ---------------------------------------------------------------- MMDS

export interface MmdsConfig {
  version?: MmdsVersion;
  network_interfaces: string[];
  ipv4_address?: string;
  imds_compat?: boolean;
}

/** definitions.MmdsContentsObject: any JSON object. */
export type MmdsContentsObject = { [key: string]: unknown };

// ---------------------------------------------------------------- snapshots

export interface SnapshotCreateParams {
  mem_file_path: string;
  snapshot_path: string;
  snapshot_type?: SnapshotType;
}

export interface MemoryBackend {
  backend_type: MemoryBackendType;
  backend_path: string;
}

export interface NetworkOverride {
  iface_id: string;
  host_dev_name: string;
}

export interface VsockOverride {
  uds_path: string;
}

export interface SnapshotLoadParams {
  /** Deprecated: use track_dirty_pages. */
  enable_diff_snapshots?: boolean;
  track_dirty_pages?: boolean;
  /** Deprecated: use mem_backend. Exactly one of the two must be given. */
  mem_file_path?: string;
  mem_backend?: MemoryBackend;
  snapshot_path: string;
  resume_vm?: boolean;
  network_overrides?: NetworkOverride[];
  vsock_override?: VsockOverride;
  clock_realtime?: boolean;
  huge_pages?: SnapshotLoadHugePages;
}

// ---------------------------------------------------------------- full config

/**
 * GET /vm/config. Like Firecracker, the server sends `null` (not nothing) for
 * a device that is not configured, and nested optional fields such as
 * `boot-source.initrd_path` may be null too, though the yaml does not say so.
 */
export interface FullVmConfiguration {
  balloon?: Balloon | null;
  drives?: Drive[];
  'boot-source'?: BootSource | null;
  'cpu-config'?: CpuConfig | null;
  logger?: Logger | null;
  'machine-config'?: MachineConfiguration | null;
  metrics?: Metrics | null;
  'memory-hotplug'?: MemoryHotplugConfig | null;
  'mmds-config'?: MmdsConfig | null;
  'network-interfaces'?: NetworkInterface[];
  pmem?: Pmem[];
  vsock?: Vsock | null;
  entropy?: EntropyDevice | null;
}
