/**
 * Entropy device metrics: Firecracker's EntropyDeviceMetrics
 * (devices/virtio/rng/metrics.rs), one cumulative counter per field of the
 * `entropy` group in vmm/metrics/schema.ts.
 *
 *  - entropy_event_count: requests served (chains returned with random bytes);
 *  - entropy_bytes: random bytes given to the guest;
 *  - entropy_event_fails: chains that could not be served (device-readable
 *    buffers, a malformed chain, a host RNG failure): returned with length 0;
 *  - host_rng_fails: the host RNG failed;
 *  - entropy_rate_limiter_throttled: a request the rate limiter refused (left on the ring);
 *  - rate_limiter_event_count: a processQueue call while the limiter was
 *    blocked (Firecracker counts its queue events that find the limiter
 *    blocked, and its timer events, here).
 */
import { GROUP_FIELDS } from '../../../metrics/schema.js';

export type EntropyMetrics = Record<string, number>;

/** A fresh record with every field of the `entropy` metrics group at 0. */
export function createEntropyMetrics(): EntropyMetrics {
  const m: EntropyMetrics = {};
  for (const f of GROUP_FIELDS['entropy']!) m[f.name] = 0;
  return m;
}
