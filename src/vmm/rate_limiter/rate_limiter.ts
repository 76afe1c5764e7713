/**
 * A rate limiter over two token buckets, bytes (bandwidth) and operations,
 * as Firecracker's RateLimiter: either or both may be absent (no limit).
 *
 * When a consume fails, or a request overconsumes a bucket, the limiter is
 * blocked: every consume fails until the time timerDueMs() reports has
 * passed, when the request that was refused can be retried and will find
 * enough tokens (unless the other bucket refuses it). Firecracker arms a
 * timerfd for 100 ms on a failure; here the due time is exact and the caller
 * arms its own timer. The blocked state follows the clock, so there is no
 * event handler to call.
 */
import { clockNs, monotonicClock, TokenBucket, type Clock, type TokenBucketConfig } from './token_bucket.js';

export type TokenType = 'bytes' | 'ops';

export interface RateLimiterConfig {
  /** Bytes per refill_time. Absent, null, or a zero size/refill_time: no limit. */
  bandwidth?: TokenBucketConfig | null;
  /** Operations per refill_time. */
  ops?: TokenBucketConfig | null;
}

/**
 * One bucket of a PATCH (Firecracker's BucketUpdate): undefined or null
 * leaves the bucket as it is, a config with a zero size or refill_time
 * disables it, any other config replaces it with a new, full bucket.
 */
export type BucketUpdate = TokenBucketConfig | null | undefined;

const NS_PER_MS = 1_000_000;

export class RateLimiter {
  private bw: TokenBucket | null;
  private opsBucket: TokenBucket | null;
  /** Clock time (ns) until which consumes fail, or null. */
  private blockedUntil: bigint | null = null;

  constructor(cfg: RateLimiterConfig = {}, private readonly clock: Clock = monotonicClock) {
    this.bw = cfg.bandwidth ? TokenBucket.fromConfig(cfg.bandwidth, clock) : null;
    this.opsBucket = cfg.ops ? TokenBucket.fromConfig(cfg.ops, clock) : null;
  }

  get bandwidth(): TokenBucket | null {
    return this.bw;
  }

  get ops(): TokenBucket | null {
    return this.opsBucket;
  }

  /** The buckets' configurations, in the API's shape (null: no limit). */
  get config(): {
    bandwidth: { size: number; one_time_burst: number | null; refill_time: number } | null;
    ops: { size: number; one_time_burst: number | null; refill_time: number } | null;
  } {
    return { bandwidth: this.bw?.config ?? null, ops: this.opsBucket?.config ?? null };
  }

  /** Whether some bucket limits anything. */
  get enabled(): boolean {
    return this.bw !== null || this.opsBucket !== null;
  }

  /** Consumes fail until timerDueMs() has passed. */
  get isBlocked(): boolean {
    if (this.blockedUntil === null) return false;
    if (clockNs(this.clock) < this.blockedUntil) return true;
    this.blockedUntil = null;
    return false;
  }

  /**
   * Milliseconds (fractional, exact) until a blocked limiter can be retried;
   * 0 when it is not blocked. setTimeout may fire up to 1 ms early: arm it
   * with Math.ceil(timerDueMs()) (an early retry just blocks again briefly).
   */
  timerDueMs(): number {
    if (this.blockedUntil === null) return 0;
    const left = this.blockedUntil - clockNs(this.clock);
    if (left <= 0n) {
      this.blockedUntil = null;
      return 0;
    }
    return Number(left) / NS_PER_MS;
  }

  /**
   * Takes `tokens` of `type`; false when the limiter is blocked or the bucket
   * lacks them (the limiter then blocks until they are there). A request
   * larger than the bucket passes when the bucket is full, and blocks the
   * limiter until the debt is refilled. Without a bucket for `type`, true.
   */
  consume(tokens: number, type: TokenType): boolean {
    if (this.isBlocked) return false;
    const bucket = type === 'bytes' ? this.bw : this.opsBucket;
    if (!bucket) return true;
    switch (bucket.reduce(tokens)) {
      case 'ok':
        return true;
      case 'failure':
        this.block(bucket.availableAtNs(tokens));
        return false;
      case 'overconsumption':
        this.block(bucket.availableAtNs(0));
        return true;
    }
  }

  /** Gives back tokens of `type` (e.g. the ops token of a request whose bytes were refused). */
  manualReplenish(tokens: number, type: TokenType): void {
    (type === 'bytes' ? this.bw : this.opsBucket)?.forceReplenish(tokens);
  }

  /**
   * Firecracker's update_buckets (PATCH): see BucketUpdate. New buckets start
   * full; the limiter is unblocked so a waiting request can be retried at once
   * against the new limits.
   */
  updateBuckets(bandwidth?: BucketUpdate, ops?: BucketUpdate): void {
    if (bandwidth) this.bw = TokenBucket.fromConfig(bandwidth, this.clock);
    if (ops) this.opsBucket = TokenBucket.fromConfig(ops, this.clock);
    if (bandwidth || ops) this.blockedUntil = null;
  }

  private block(until: bigint): void {
    if (until > clockNs(this.clock)) this.blockedUntil = until;
  }
}
