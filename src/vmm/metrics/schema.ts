/**
 * Firecracker's metric groups and fields, in the order its metrics line has
 * them (src/vmm/src/logger/metrics.rs, FirecrackerMetrics, and the device
 * metrics modules its serialize proxies flatten in).
 *
 * Every field is one of Firecracker's two kinds:
 *  - 'inc' (SharedIncMetric): a counter, written as the delta since the
 *    previous line;
 *  - 'store' (SharedStoreMetric): a value, written as it is.
 * A LatencyAggregateMetrics field `x_agg` is the nested object
 * {min_us: store, max_us: store, sum_us: inc}; here its parts are the fields
 * `x_agg.min_us`, `x_agg.max_us`, `x_agg.sum_us`.
 */

export type MetricKind = 'inc' | 'store';

export interface FieldDef {
  /** The field's name in its group; a dot nests it (`exit_io_in_agg.min_us`). */
  readonly name: string;
  readonly kind: MetricKind;
}

const inc = (...names: string[]): FieldDef[] => names.map((name) => ({ name, kind: 'inc' }));
const store = (...names: string[]): FieldDef[] => names.map((name) => ({ name, kind: 'store' }));
/** A LatencyAggregateMetrics: min and max are stored, the sum is counted. */
const agg = (name: string): FieldDef[] => [
  { name: `${name}.min_us`, kind: 'store' },
  { name: `${name}.max_us`, kind: 'store' },
  { name: `${name}.sum_us`, kind: 'inc' },
];

/** Fields of every static group. */
export const GROUP_FIELDS: Readonly<Record<string, readonly FieldDef[]>> = {
  // ApiServerMetrics
  api_server: store('process_startup_time_us', 'process_startup_time_cpu_us'),
  // devices/virtio/balloon/metrics.rs
  balloon: inc(
    'activate_fails', 'inflate_count', 'stats_updates_count', 'stats_update_fails', 'deflate_count',
    'event_fails', 'free_page_report_count', 'free_page_report_freed', 'free_page_report_fails',
    'free_page_hint_count', 'free_page_hint_freed', 'free_page_hint_fails',
  ),
  // devices/virtio/block/virtio/metrics.rs (aggregate of all block_<id>)
  block: [
    ...inc(
      'activate_fails', 'cfg_fails', 'no_avail_buffer', 'event_fails', 'execute_fails', 'invalid_reqs_count',
      'flush_count', 'queue_event_count', 'rate_limiter_event_count', 'update_count', 'update_fails',
      'read_bytes', 'write_bytes', 'read_count', 'write_count',
    ),
    ...agg('read_agg'),
    ...agg('write_agg'),
    ...inc('rate_limiter_throttled_events', 'io_engine_throttled_events', 'remaining_reqs_count'),
  ],
  // DeprecatedApiMetrics
  deprecated_api: inc('deprecated_http_api_calls'),
  // GetRequestsMetrics
  get_api_requests: inc('instance_info_count', 'machine_cfg_count', 'mmds_count', 'vmm_version_count', 'hotplug_memory_count'),
  // devices/legacy/i8042.rs
  i8042: inc('error_count', 'missed_read_count', 'missed_write_count', 'read_count', 'reset_count', 'write_count'),
  // devices/legacy/serial.rs
  uart: inc(
    'error_count', 'flush_count', 'missed_read_count', 'missed_write_count', 'read_count', 'write_count',
    'rate_limiter_dropped_bytes',
  ),
  // PerformanceMetrics
  latencies_us: store(
    'full_create_snapshot', 'diff_create_snapshot', 'load_snapshot', 'pause_vm', 'resume_vm',
    'vmm_full_create_snapshot', 'vmm_diff_create_snapshot', 'vmm_load_snapshot', 'vmm_pause_vm', 'vmm_resume_vm',
  ),
  // LoggerSystemMetrics
  logger: inc('missed_metrics_count', 'metrics_fails', 'missed_log_count', 'rate_limited_log_count'),
  // MmdsMetrics
  mmds: inc(
    'rx_accepted', 'rx_accepted_err', 'rx_accepted_unusual', 'rx_bad_eth', 'rx_invalid_token', 'rx_no_token',
    'rx_count', 'tx_bytes', 'tx_count', 'tx_errors', 'tx_frames', 'connections_created', 'connections_destroyed',
  ),
  // devices/virtio/net/metrics.rs (aggregate of all net_<id>)
  net: [
    ...inc(
      'activate_fails', 'cfg_fails', 'no_rx_avail_buffer', 'no_tx_avail_buffer', 'event_fails',
      'rx_queue_event_count', 'rx_event_rate_limiter_count', 'rx_rate_limiter_throttled', 'rx_tap_event_count',
      'rx_bytes_count', 'rx_packets_count', 'rx_fails', 'rx_count', 'tap_read_fails', 'tap_write_fails',
    ),
    ...agg('tap_write_agg'),
    ...inc(
      'tx_bytes_count', 'tx_malformed_frames', 'tx_fails', 'tx_count', 'tx_packets_count', 'tx_queue_event_count',
      'tx_rate_limiter_event_count', 'tx_rate_limiter_throttled', 'tx_spoofed_mac_count', 'tx_remaining_reqs_count',
    ),
  ],
  // PatchRequestsMetrics
  patch_api_requests: inc(
    'drive_count', 'drive_fails', 'network_count', 'network_fails', 'machine_cfg_count', 'machine_cfg_fails',
    'mmds_count', 'mmds_fails', 'hotplug_memory_count', 'hotplug_memory_fails', 'pmem_count', 'pmem_fails',
  ),
  // PutRequestsMetrics
  put_api_requests: inc(
    'actions_count', 'actions_fails', 'boot_source_count', 'boot_source_fails', 'drive_count', 'drive_fails',
    'logger_count', 'logger_fails', 'machine_cfg_count', 'machine_cfg_fails', 'cpu_cfg_count', 'cpu_cfg_fails',
    'metrics_count', 'metrics_fails', 'network_count', 'network_fails', 'mmds_count', 'mmds_fails',
    'vsock_count', 'vsock_fails', 'pmem_count', 'pmem_fails', 'serial_count', 'serial_fails',
    'hotplug_memory_count', 'hotplug_memory_fails',
  ),
  // SeccompMetrics
  seccomp: store('num_faults'),
  // VcpuMetrics
  vcpu: [
    ...inc('exit_io_in', 'exit_io_out', 'exit_mmio_read', 'exit_mmio_write', 'failures', 'kvmclock_ctrl_fails'),
    ...agg('exit_io_in_agg'),
    ...agg('exit_io_out_agg'),
    ...agg('exit_mmio_read_agg'),
    ...agg('exit_mmio_write_agg'),
  ],
  // VmmMetrics
  vmm: store('panic_count'),
  // SignalMetrics: the deadly signals are stores (0 or 1), sigpipe counts.
  signals: [...store('sigbus', 'sigsegv', 'sigxfsz', 'sigxcpu'), ...inc('sigpipe'), ...store('sighup', 'sigill')],
  // devices/virtio/vsock/metrics.rs
  vsock: inc(
    'activate_fails', 'cfg_fails', 'rx_queue_event_fails', 'tx_queue_event_fails', 'ev_queue_event_fails',
    'muxer_event_fails', 'conn_event_fails', 'rx_queue_event_count', 'tx_queue_event_count', 'rx_bytes_count',
    'tx_bytes_count', 'rx_packets_count', 'tx_packets_count', 'conns_added', 'conns_killed', 'conns_removed',
    'killq_resync', 'tx_flush_fails', 'tx_write_fails', 'rx_read_fails',
  ),
  // devices/virtio/rng/metrics.rs
  entropy: inc(
    'activate_fails', 'entropy_event_fails', 'entropy_event_count', 'entropy_bytes', 'host_rng_fails',
    'entropy_rate_limiter_throttled', 'rate_limiter_event_count',
  ),
  // devices/virtio/pmem/metrics.rs (aggregate of all pmem_<id>)
  pmem: inc(
    'activate_fails', 'cfg_fails', 'event_fails', 'queue_event_count', 'rate_limiter_throttled_events',
    'rate_limiter_event_count',
  ),
  // InterruptMetrics
  interrupts: inc('triggers', 'config_updates'),
  // devices/virtio/mem/metrics.rs
  memory_hotplug: [
    ...inc('activate_fails', 'queue_event_fails', 'queue_event_count'),
    ...agg('plug_agg'),
    ...inc('plug_count', 'plug_bytes', 'plug_fails'),
    ...agg('unplug_agg'),
    ...inc('unplug_count', 'unplug_bytes', 'unplug_fails', 'unplug_discard_fails'),
    ...agg('unplug_all_agg'),
    ...inc('unplug_all_count', 'unplug_all_fails'),
    ...agg('state_agg'),
    ...inc('state_count', 'state_fails'),
  ],
};

/**
 * Devices with one group per device, `<kind>_<id>` (e.g. `block_rootfs`),
 * written in id order just before the kind's aggregate group, whose counters
 * are the sums of the devices' (vhost_user has no aggregate).
 */
export const DEVICE_KIND_FIELDS = {
  block: GROUP_FIELDS['block']!,
  net: GROUP_FIELDS['net']!,
  pmem: GROUP_FIELDS['pmem']!,
  vhost_user: [...inc('activate_fails', 'cfg_fails'), ...store('init_time_us', 'activate_time_us', 'config_change_time_us')],
} as const satisfies Record<string, readonly FieldDef[]>;

export type DeviceKind = keyof typeof DEVICE_KIND_FIELDS;

/** Device kinds whose static group of the same name aggregates the per-device groups. */
export const AGGREGATED_KINDS: ReadonlySet<DeviceKind> = new Set(['block', 'net', 'pmem']);

export type LayoutEntry = { readonly group: string } | { readonly devices: DeviceKind };

/**
 * The line's order after `utc_timestamp_ms` (and the optional `id` and
 * `properties`): FirecrackerMetrics' fields with the flattened device
 * metrics in their places. (rtc is aarch64-only.)
 */
export const LAYOUT: readonly LayoutEntry[] = [
  { group: 'api_server' },
  { group: 'balloon' },
  { devices: 'block' },
  { group: 'block' },
  { group: 'deprecated_api' },
  { group: 'get_api_requests' },
  { group: 'i8042' },
  { group: 'uart' },
  { group: 'latencies_us' },
  { group: 'logger' },
  { group: 'mmds' },
  { devices: 'net' },
  { group: 'net' },
  { group: 'patch_api_requests' },
  { group: 'put_api_requests' },
  { group: 'seccomp' },
  { group: 'vcpu' },
  { group: 'vmm' },
  { group: 'signals' },
  { group: 'vsock' },
  { group: 'entropy' },
  { devices: 'pmem' },
  { group: 'pmem' },
  { devices: 'vhost_user' },
  { group: 'interrupts' },
  { group: 'memory_hotplug' },
];

/** The static groups, in line order. */
export const GROUP_NAMES: readonly string[] = LAYOUT.flatMap((e) => ('group' in e ? [e.group] : []));
