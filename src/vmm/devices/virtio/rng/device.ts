/**
 * The virtio entropy device backend (virtio 1.2 §5.4), Firecracker's Entropy
 * device: one request queue; each chain's device-writable buffers are filled
 * with random bytes from the host (node:crypto, i.e. the OS CSPRNG), written
 * in place into guest memory views, and returned with used length = bytes
 * filled. No feature bits, no config space.
 *
 * As Firecracker: at most 64 KiB per request (a chain may describe up to
 * 4 GiB, overlapping buffers included, and the device thread must stay
 * responsive); a chain with device-readable buffers (§5.4.6.1: the driver
 * MUST NOT) is returned unserved with length 0; the optional rate limiter
 * takes one op and the bytes served per request, and a refused request
 * stays on the ring until retryInMs() has passed.
 */
import { randomFillSync } from 'node:crypto';
import { VIRTIO_ID_RNG } from '../../../../generated/virtio.js';
import { logger } from '../../../../logger/logger.js';
import type { GuestMemory } from '../../../../memory/guest_memory.js';
import type { Queue } from '../../../../virtio/queue/index.js';
import { RateLimiter, type BucketUpdate } from '../../../rate_limiter/index.js';
import { popChain, REJECTED, retryDelayMs, type ActivateContext, type VirtioBackend, takeQueues } from '../backend.js';
import { createEntropyMetrics, type EntropyMetrics } from './metrics.js';

/** One queue of FIRECRACKER_MAX_QUEUE_SIZE. */
export const ENTROPY_QUEUE_SIZES: readonly number[] = [256];
/** Firecracker's MAX_ENTROPY_BYTES: the most one request is given. */
export const MAX_ENTROPY_BYTES = 64 * 1024;

export interface EntropyBackendOptions {
  /** Default: no limit. */
  rateLimiter?: RateLimiter;
  /** Fills a view of guest memory with random bytes; default crypto.randomFillSync (tests inject failures). */
  randomFill?: (view: Uint8Array) => void;
}

interface ActiveState {
  mem: GuestMemory;
  queues: Queue[];
  interrupt: () => void;
}

const defaultFill = (view: Uint8Array): void => {
  randomFillSync(view);
};

export class EntropyBackend implements VirtioBackend {
  readonly deviceType = VIRTIO_ID_RNG;
  readonly queueMaxSizes = ENTROPY_QUEUE_SIZES;
  readonly availFeatures = 0n;
  readonly metrics: EntropyMetrics = createEntropyMetrics();
  readonly rateLimiter: RateLimiter;

  private readonly randomFill: (view: Uint8Array) => void;
  private active: ActiveState | undefined;
  private throttled = false;

  constructor(opts: EntropyBackendOptions = {}) {
    this.rateLimiter = opts.rateLimiter ?? new RateLimiter();
    this.randomFill = opts.randomFill ?? defaultFill;
  }

  get isActivated(): boolean {
    return this.active !== undefined;
  }

  /** The entropy device has no device-specific configuration. */
  configSpace(): Uint8Array {
    return new Uint8Array(0);
  }

  activate(ctx: ActivateContext): void {
    takeQueues('entropy', ctx, ENTROPY_QUEUE_SIZES, this.metrics);
    this.active = { mem: ctx.mem, queues: ctx.queues, interrupt: ctx.interrupt };
    this.throttled = false;
  }

  reset(): void {
    this.active = undefined;
    this.throttled = false;
  }

  retryInMs(): number | undefined {
    if (!this.throttled) return undefined;
    return retryDelayMs(this.rateLimiter.timerDueMs());
  }

  /** PATCH /entropy is not in Firecracker's API, but the limiter can be updated like a drive's. */
  updateRateLimiter(bandwidth?: BucketUpdate, ops?: BucketUpdate): void {
    this.rateLimiter.updateBuckets(bandwidth, ops);
  }

  processQueue(index: number): void {
    const a = this.active;
    if (!a) return;
    const q = a.queues[index];
    if (!q) throw new RangeError(`entropy: no queue ${index}`);
    const m = this.metrics;
    const mem = a.mem;
    this.throttled = false;
    if (this.rateLimiter.isBlocked) {
      m['rate_limiter_event_count']++;
      this.throttled = true;
      return;
    }

    let usedAny = false;
    for (;;) {
      const chain = popChain(q, mem, (e) => {
        logger.error(`entropy: ${(e as Error).message}`);
        m['entropy_event_fails']++;
      });
      if (chain === REJECTED) {
        usedAny = true;
        continue;
      }
      if (!chain) break;

      let served = 0;
      if (chain.readableLength > 0) {
        logger.error(`entropy: chain ${chain.head} has ${chain.readableLength} device-readable bytes`);
        m['entropy_event_fails']++;
      } else {
        const want = Math.min(chain.writableLength, MAX_ENTROPY_BYTES);
        if (!this.admit(want)) {
          q.undoPop();
          m['entropy_rate_limiter_throttled']++;
          this.throttled = true;
          break;
        }
        try {
          for (const view of chain.writer(mem).views(want)) this.randomFill(view);
          served = want;
          m['entropy_event_count']++;
          m['entropy_bytes'] += served;
        } catch (e) {
          logger.error(`entropy: host RNG failed: ${(e as Error).message}`);
          m['host_rng_fails']++;
          m['entropy_event_fails']++;
          this.rateLimiter.manualReplenish(1, 'ops');
          this.rateLimiter.manualReplenish(want, 'bytes');
        }
      }
      q.addUsed(mem, chain.head, served);
      usedAny = true;
    }

    if (usedAny && q.needsNotification(mem)) a.interrupt();
  }

  /** One op and `bytes` bytes, giving the op back when the bytes are refused (Firecracker's rate_limit_request). */
  private admit(bytes: number): boolean {
    const rl = this.rateLimiter;
    if (!rl.consume(1, 'ops')) return false;
    if (!rl.consume(bytes, 'bytes')) {
      rl.manualReplenish(1, 'ops');
      return false;
    }
    return true;
  }
}
