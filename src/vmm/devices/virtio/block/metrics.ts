/**
 * Per-device block metrics: Firecracker's BlockDeviceMetrics
 * (devices/virtio/block/virtio/metrics.rs), one cumulative number per field
 * of the `block` group in vmm/metrics/schema.ts (the metrics system reports
 * counters as deltas and the `*_agg.min_us/max_us` stores as they are).
 *
 * What increments what (Firecracker's accounting where it has one):
 *  - queue_event_count: every processQueue call (guest kick or timer);
 *  - rate_limiter_throttled_events: a request (or a whole call) refused by the rate limiter;
 *  - no_avail_buffer: a processQueue call that returned no chain to the driver;
 *  - remaining_reqs_count: chains still waiting in the ring each time one is taken;
 *  - execute_fails: a chain that could not be parsed (malformed chain, bad
 *    framing, header too short, bad data length, sector range beyond
 *    capacity): Firecracker's "Failed to parse available descriptor chain";
 *  - invalid_reqs_count: a parsed request that ended in IOERR or UNSUPP
 *    (unsupported type, write to a read-only drive, host I/O error, short
 *    transfer), as Firecracker's write_status_and_finish counts them;
 *  - read_count / write_count: successful IN / OUT requests; read_bytes /
 *    write_bytes: bytes transferred (including those of a failed, partial transfer);
 *  - flush_count: FLUSH requests that synced the file to the host's stable
 *    storage (Writeback); on an Unsafe drive a FLUSH succeeds without
 *    syncing and is not counted;
 *  - read_agg / write_agg: latency of the host read / write in µs;
 *  - update_count / update_fails: updateDisk (PATCH /drives).
 */
import { GROUP_FIELDS } from '../../../metrics/schema.js';

export type BlockMetrics = Record<string, number>;

/** A fresh record with every field of the `block` metrics group at 0. */
export function createBlockMetrics(): BlockMetrics {
  const m: BlockMetrics = {};
  for (const f of GROUP_FIELDS['block']!) m[f.name] = 0;
  return m;
}

/** The three stores of each latency aggregate, named once: recordLatency runs per request. */
const AGG_KEYS = {
  read_agg: { min: 'read_agg.min_us', max: 'read_agg.max_us', sum: 'read_agg.sum_us' },
  write_agg: { min: 'write_agg.min_us', max: 'write_agg.max_us', sum: 'write_agg.sum_us' },
} as const;

/** Records one duration (µs) in a LatencyAggregateMetrics (`<name>.min_us` / `.max_us` / `.sum_us`). */
export function recordLatency(m: BlockMetrics, name: 'read_agg' | 'write_agg', us: number): void {
  const v = Math.round(us);
  const k = AGG_KEYS[name];
  if (m[k.min] === 0 || v < m[k.min]!) m[k.min] = v;
  if (v > m[k.max]!) m[k.max] = v;
  m[k.sum] += v;
}
