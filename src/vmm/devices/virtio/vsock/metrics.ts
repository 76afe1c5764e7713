/**
 * Vsock device metrics: Firecracker's VsockDeviceMetrics
 * (devices/virtio/vsock/metrics.rs), one cumulative counter per field of the
 * `vsock` group in vmm/metrics/schema.ts, plus `VsockStats`: finer counters
 * Firecracker does not report (dropped and refused packets by reason), kept
 * for tests and debugging and not part of the metrics line.
 *
 * What increments what:
 *  - rx_queue_event_count / tx_queue_event_count: processQueue(0) / (1) calls;
 *  - rx_queue_event_fails / tx_queue_event_fails / ev_queue_event_fails:
 *    descriptor chains of that queue the device could not use (malformed
 *    chain, a buffer too small for the 44-byte header, buffers of the wrong
 *    direction), returned to the driver with length 0;
 *  - rx_packets_count / tx_packets_count: packets given to the guest (rx
 *    queue) / taken from the guest with a well-formed header (tx queue);
 *  - rx_bytes_count / tx_bytes_count: payload bytes read from host sockets
 *    into the guest / written from the guest to host sockets;
 *  - conns_added / conns_removed: connections entering / leaving the
 *    connection table (host- or guest-initiated);
 *  - conns_killed: connections reset by the device (timeouts, host socket
 *    errors, credit violations);
 *  - rx_read_fails: a host socket read failed (other than EAGAIN);
 *  - tx_write_fails: a direct write of guest data to a host socket failed;
 *  - tx_flush_fails: writing buffered guest data to a host socket failed;
 *  - muxer_event_fails: the listening socket failed (accept errors) or a
 *    host fd could not be (re)registered in the event loop;
 *  - conn_event_fails: an unexpected event on a connection's socket (EPOLLOUT
 *    with nothing to write, a hang-up nobody was waiting for);
 *  - activate_fails: activate() refused (wrong queue count, no event loop);
 *  - cfg_fails, killq_resync: Firecracker fields with no cause here (the
 *    config space is read-only and handled by the transport; there is no
 *    kill queue to resynchronize), always 0.
 */
import { GROUP_FIELDS } from '../../../metrics/schema.js';

export type VsockMetrics = Record<string, number>;

/** A fresh record with every field of the `vsock` metrics group at 0. */
export function createVsockMetrics(): VsockMetrics {
  const m: VsockMetrics = {};
  for (const f of GROUP_FIELDS['vsock']!) m[f.name] = 0;
  return m;
}

/** Counters beyond Firecracker's fields (cumulative). */
export interface VsockStats {
  /** tx chains whose readable part is shorter than the 44-byte header. */
  txShortHeader: number;
  /** tx packets whose `len` exceeds the buffer that carries them or 64 KiB. */
  txBadLen: number;
  /** tx packets of a type other than STREAM (answered with RST). */
  txBadType: number;
  /** tx packets whose src_cid is not the guest's CID (dropped). */
  txBadSrcCid: number;
  /** tx packets for a CID other than the host's (dropped). */
  txBadDstCid: number;
  /** tx packets for no known connection, other than REQUEST (answered with RST unless RST). */
  txUnroutable: number;
  /** tx packets not valid in their connection's state (dropped, as Firecracker). */
  txInvalidForState: number;
  /** RW packets carrying more than the credit the device advertised (connection reset). */
  txCreditViolations: number;
  /** Guest REQUESTs refused: nobody listening at `<uds>_<port>`, or too many connections. */
  guestConnectsRefused: number;
  /** Host connections refused (too many) or dropped before a valid `CONNECT <port>\n`. */
  hostConnectsRefused: number;
  /** RSTs not queued because the queue of pending RSTs was full. */
  rstDropped: number;
}

export function createVsockStats(): VsockStats {
  return {
    txShortHeader: 0, txBadLen: 0, txBadType: 0, txBadSrcCid: 0, txBadDstCid: 0, txUnroutable: 0,
    txInvalidForState: 0, txCreditViolations: 0, guestConnectsRefused: 0, hostConnectsRefused: 0, rstDropped: 0,
  };
}
