/** Split virtqueue, device side (Virtio 1.2 §2.7). */
export { Queue, fullFence, vringNeedEvent, type QueueState } from './queue.js';
export {
  ChainReader,
  ChainWriter,
  DescriptorChain,
  MAX_CHAIN_BYTES,
  MAX_INDIRECT_ENTRIES,
  parseDescriptorChain,
  spanBuffers,
  SpanWalker,
  type ChainSpan,
  type Descriptor,
  type GuestBuffer,
  type IndirectTableInfo,
} from './descriptor_chain.js';
export { asQueueError, QueueError, type QueueErrorKind } from './errors.js';
export { GuestView, guestSegments, rangeInRam } from './guest_view.js';
