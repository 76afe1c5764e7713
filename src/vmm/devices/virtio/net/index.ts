export {
  MAX_BUFFER_SIZE, MIN_RX_BUFFER_SMALL, NET_CONFIG_SIZE, NET_QUEUE_SIZES, NetBackend, RX_BATCH, RX_INDEX, TX_INDEX, VNET_HDR_LEN,
  parseMac, type NetBackendOptions,
} from './device.js';
export { HostMap, IoVecArray } from '../iovec.js';
export { createNetMetrics, recordTapWriteLatency, type NetMetrics } from './metrics.js';
export { RxBuffers, VNET_HDR_OFF_NUM_BUFFERS, type RxFrame } from './rx_buffers.js';
export { checkTapName, Tap, TapError, tapOffloadFlags, TUN_DEVICE_PATH, type TapErrorKind } from './tap.js';
