/**
 * Per-device net metrics: Firecracker's NetDeviceMetrics
 * (devices/virtio/net/metrics.rs), one cumulative number per field of the
 * `net` group in vmm/metrics/schema.ts.
 *
 * What increments what (Firecracker's accounting unless said otherwise):
 *  - activate_fails: activate() failed (wrong queue count, TUNSETOFFLOAD refused);
 *  - rx_queue_event_count / tx_queue_event_count: processQueue(0) / (1)
 *    calls, i.e. guest kicks (a call that retries after the rate limiter
 *    blocked counts in rx_event_rate_limiter_count / tx_rate_limiter_event_count);
 *  - rx_tap_event_count: the TAP fd became readable (epoll);
 *  - rx_count, rx_packets_count: frames delivered from the TAP into guest
 *    buffers; rx_bytes_count: their bytes, vnet header included (as Firecracker);
 *  - rx_fails: receive buffers or frames that could not be used: a chain
 *    with device-readable descriptors, shorter than the minimum receive
 *    buffer, or malformed (returned with used length 0), and frames too
 *    large for the buffers (dropped);
 *  - no_rx_avail_buffer: an attempt to receive that found too little buffer
 *    space (the frames stay in the TAP until the guest adds buffers);
 *  - rx_rate_limiter_throttled / tx_rate_limiter_throttled: a frame (or a
 *    whole attempt) the rate limiter refused;
 *  - tap_read_fails / tap_write_fails: read / write on the TAP failed (other
 *    than EAGAIN on read); a failed write drops that frame;
 *  - tap_write_agg: latency of each TAP write, µs;
 *  - tx_count, tx_packets_count: frames written to the TAP; tx_bytes_count:
 *    their bytes, vnet header included;
 *  - tx_fails: a transmit chain that is malformed or has device-writable
 *    descriptors (returned with used length 0);
 *  - tx_malformed_frames: a transmit chain shorter than the vnet header or
 *    longer than MAX_BUFFER_SIZE (returned with used length 0);
 *  - tx_spoofed_mac_count: a frame whose source MAC is not the configured
 *    guest MAC (still sent, as Firecracker);
 *  - no_tx_avail_buffer: a processQueue(1) that found nothing to send;
 *  - tx_remaining_reqs_count: chains still in the ring each time one is taken;
 *  - event_fails: a TAP read error (Firecracker's report_net_event_fail);
 *  - cfg_fails: not counted here (config writes are the transport's).
 */
import { GROUP_FIELDS } from '../../../metrics/schema.js';

export type NetMetrics = Record<string, number>;

/** A fresh record with every field of the `net` metrics group at 0. */
export function createNetMetrics(): NetMetrics {
  const m: NetMetrics = {};
  for (const f of GROUP_FIELDS['net']!) m[f.name] = 0;
  return m;
}

/** Records one TAP write's duration (µs) in tap_write_agg (`.min_us` / `.max_us` / `.sum_us`). */
export function recordTapWriteLatency(m: NetMetrics, us: number): void {
  const v = Math.round(us);
  if (m['tap_write_agg.min_us'] === 0 || v < m['tap_write_agg.min_us']!) m['tap_write_agg.min_us'] = v;
  if (v > m['tap_write_agg.max_us']!) m['tap_write_agg.max_us'] = v;
  m['tap_write_agg.sum_us'] = m['tap_write_agg.sum_us']! + v;
}
