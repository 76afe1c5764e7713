/**
 * The device side of a virtio device, independent of the transport: what
 * runs on the device thread once the driver has set DRIVER_OK.
 *
 * The transport (virtio-mmio) owns the registers, feature negotiation and
 * queue configuration; it asks the backend for its identity (device type,
 * queue sizes, offered features, config bytes), builds and validates the
 * `Queue`s from what the driver wrote, and hands them over in `activate`.
 * From then on each guest notification (or rate-limiter timer) becomes a
 * `processQueue(index)` call.
 */
import type { GuestMemory } from '../../../memory/guest_memory.js';
import type { BucketUpdate } from '../../rate_limiter/index.js';
import { QueueError, type DescriptorChain, type Queue, type QueueErrorKind } from '../../../virtio/queue/index.js';

export interface ActivateContext {
  mem: GuestMemory;
  /** Built from the transport's queue config, validated. */
  queues: Queue[];
  ackedFeatures: bigint;
  /** Raise the used-buffer interrupt (the backend calls it after adding used buffers when the queue's notification suppression says so). */
  interrupt: () => void;
  /** Host fds the backend waits on (a TAP device, sockets): the device thread's epoll loop runs `handler` when one is ready. */
  events?: BackendEvents;
}

export interface BackendEvents {
  add(fd: number, handler: (events: number) => void, events?: number): void;
  remove(fd: number): void;
}

export interface VirtioBackend {
  /** VIRTIO_ID_*. */
  readonly deviceType: number;
  readonly queueMaxSizes: readonly number[];
  /** Offered features, without VIRTIO_F_VERSION_1 (the transport adds it). */
  readonly availFeatures: bigint;
  /** Device-specific config bytes. */
  configSpace(): Uint8Array;
  activate(ctx: ActivateContext): void;
  /**
   * The guest notified queue `index` (or a timer fired): process what is
   * available. Throws QueueError on a malformed ring (the caller sets
   * DEVICE_NEEDS_RESET).
   */
  processQueue(index: number): void;
  /** When a rate limiter blocked processing: ms until processQueue should be retried, else undefined. */
  retryInMs(): number | undefined;
  /** Back to the state before activate (the driver reset the device); unregister any fds added through ctx.events. */
  reset(): void;
  /** Firecracker's per-device counters (cumulative). */
  readonly metrics: Record<string, number>;

  // Live updates (PATCH after InstanceStart), for the devices that have them.
  /** Block: a new backing file; the caller publishes the new config space. */
  updateDisk?(fd: number, sizeBytes: number): void;
  /** Block and entropy: Firecracker's PATCH of `rate_limiter` (null leaves a bucket as it is, size 0 disables it). */
  updateRateLimiter?(bandwidth?: BucketUpdate, ops?: BucketUpdate): void;
  /** Net: the same for `rx_rate_limiter` and `tx_rate_limiter`. */
  updateRateLimiters?(rxBandwidth?: BucketUpdate, rxOps?: BucketUpdate, txBandwidth?: BucketUpdate, txOps?: BucketUpdate): void;
  /** Device-specific state for the stop-time diagnostics line (net: whether the TAP is polled). */
  describeState?(): string;
}

/**
 * QueueError kinds that concern one descriptor chain only: popAvail consumed
 * its avail entry and the queue itself is still sound, so the device returns
 * the chain with `addUsed(head, 0)` and carries on (as Firecracker does with a
 * chain it cannot parse). Every other kind (avail-idx, head-out-of-range,
 * config, not-ready, device) means the ring is unusable.
 */
const CHAIN_ERROR_KINDS: ReadonlySet<QueueErrorKind> = new Set<QueueErrorKind>([
  'next-out-of-range', 'loop', 'buffer-out-of-range', 'indirect', 'order', 'zero-length', 'too-long',
]);

/**
 * When `e` is a QueueError about a single chain whose head can be returned
 * to the driver, that head; otherwise undefined (the caller rethrows).
 */
export function rejectableChainHead(e: unknown, queue: Queue): number | undefined {
  if (!(e instanceof QueueError) || !CHAIN_ERROR_KINDS.has(e.kind)) return undefined;
  const head = e.head;
  if (head === undefined || !Number.isInteger(head) || head < 0 || head >= queue.size) return undefined;
  return head;
}

/**
 * What every backend's activate checks first: one queue per entry of its
 * queueMaxSizes (a mismatch counts activate_fails and throws), and the ring
 * features the driver negotiated applied to each queue.
 */
export function takeQueues(name: string, ctx: ActivateContext, queueMaxSizes: readonly number[], metrics: Record<string, number>): void {
  if (ctx.queues.length !== queueMaxSizes.length) {
    metrics['activate_fails'] = (metrics['activate_fails'] ?? 0) + 1;
    throw new Error(`${name}: activate with ${ctx.queues.length} queues, expected ${queueMaxSizes.length}`);
  }
  for (const q of ctx.queues) q.applyFeatures(ctx.ackedFeatures);
}

/** popChain's answer for a bad chain it gave back to the driver. */
export const REJECTED = Symbol('rejected chain');

/**
 * Pops the next descriptor chain (re-enabling notifications when the ring is
 * empty, unless `enableNotification` is false). A chain the queue refuses on
 * its own (a bad descriptor: see CHAIN_ERROR_KINDS) goes back to the driver
 * with length 0 and is reported through `onReject`; a broken ring throws.
 * With `into`, the chain is parsed into that reused object (Queue.popAvail).
 */
export function popChain(
  q: Queue, mem: GuestMemory, onReject: (e: Error) => void, enableNotification = true, into?: DescriptorChain,
): DescriptorChain | undefined | typeof REJECTED {
  try {
    return enableNotification ? q.popAvailOrEnableNotification(mem, into) : q.popAvail(mem, into);
  } catch (e) {
    const head = rejectableChainHead(e, q);
    if (head === undefined) throw e;
    onReject(e as Error);
    q.addUsed(mem, head, 0);
    return REJECTED;
  }
}

/**
 * A rate limiter's exact, fractional due time as a timer delay: rounded up,
 * since setTimeout may fire up to 1 ms early (0 = retry at once).
 */
export function retryDelayMs(dueMs: number): number {
  return dueMs > 0 ? Math.ceil(dueMs) : 0;
}
