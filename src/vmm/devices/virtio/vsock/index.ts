export {
  VSOCK_EVQ, VSOCK_QUEUE_SIZES, VSOCK_RXQ, VSOCK_TXQ, VsockBackend, type VsockBackendOptions,
} from './device.js';
export {
  listenUnix, VSOCK_CONNECT_LINE_MAX, VSOCK_MAX_CONNECTIONS, VSOCK_MAX_PENDING_RSTS,
} from './muxer.js';
export {
  VSOCK_CONN_CREDIT_UPDATE_THRESHOLD, VSOCK_CONN_REQUEST_TIMEOUT_MS, VSOCK_CONN_SHUTDOWN_TIMEOUT_MS, VSOCK_CONN_TX_BUF_SIZE,
  type ConnState,
} from './connection.js';
export { createVsockMetrics, createVsockStats, type VsockMetrics, type VsockStats } from './metrics.js';
export { decodeHeader, describeHeader, encodeHeader, VSOCK_MAX_PKT_BUF_SIZE, type VsockHeader } from './packet.js';
