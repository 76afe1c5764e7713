export {
  BLOCK_CONFIG_SIZE, BLOCK_QUEUE_SIZES, BLOCK_SEG_MAX, BlockBackend, blockDeviceId, type BlockBackendOptions, type CacheType,
} from './device.js';
export { transfer, type IoDirection, type IoResult } from './io.js';
export { createBlockMetrics, recordLatency, type BlockMetrics } from './metrics.js';
export {
  parseRequest, requestTypeName,
  type BlockRequest, type BlockRequestType, type DiskGeometry, type ParsedRequest, type RejectCounter,
} from './request.js';
