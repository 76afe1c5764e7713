export { ENTROPY_QUEUE_SIZES, EntropyBackend, MAX_ENTROPY_BYTES, type EntropyBackendOptions } from './device.js';
export { createEntropyMetrics, type EntropyMetrics } from './metrics.js';
