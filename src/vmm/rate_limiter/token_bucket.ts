/**
 * A token bucket as Firecracker's rate limiter uses it: `size` tokens that
 * refill continuously and linearly over `refill_time` milliseconds, plus a
 * `one_time_burst` of extra tokens that is spent first and never refilled.
 *
 * Refill arithmetic is exact: time is kept in integer nanoseconds (bigint)
 * and the fraction of a token earned so far is carried over to the next
 * refill, so no token is lost or gained to rounding however often the bucket
 * is polled. Time that passes while the bucket is full earns nothing.
 *
 * A request larger than the whole bucket can never be met from it, so, as in
 * Firecracker, it passes once ("overconsumption") — here only when the bucket
 * is full — and drives the budget negative: the bucket then has to refill the
 * debt before anything else passes, which keeps the long-run rate at
 * `size / refill_time` however large the requests are.
 */

/** Monotonic milliseconds (fractions allowed), e.g. performance.now(). */
export type Clock = () => number;

export const monotonicClock: Clock = () => performance.now();

/** Firecracker's TokenBucket config (vmm_config/rate_limiter.ts has the validated API shape). */
export interface TokenBucketConfig {
  /** Tokens the bucket holds. */
  size: number;
  /** Initial extra tokens, spent first and never refilled; null/absent for none. */
  one_time_burst?: number | null;
  /** Milliseconds to refill the bucket from empty. */
  refill_time: number;
}

/** Outcome of TokenBucket.reduce (Firecracker's BucketReduction). */
export type BucketReduction = 'ok' | 'overconsumption' | 'failure';

const NS_PER_MS = 1_000_000;

/** The clock reading in integer nanoseconds. */
export function clockNs(clock: Clock): bigint {
  return BigInt(Math.round(clock() * NS_PER_MS));
}

function checkCount(what: string, v: number, allowZero: boolean): void {
  if (!Number.isSafeInteger(v) || v < 0 || (!allowZero && v === 0)) {
    throw new RangeError(`token bucket: ${what} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${v}`);
  }
}

export class TokenBucket {
  readonly size: number;
  /** Milliseconds to refill from empty. */
  readonly refillTime: number;
  readonly initialOneTimeBurst: number;

  private burst: number;
  /** Current tokens; negative after an overconsumption. */
  private tokens: number;
  private lastUpdate: bigint;
  /** Fraction of a token earned but not yet credited, in units of 1/refillNs token (0 ≤ carry < refillNs). */
  private carry = 0n;
  private readonly sizeN: bigint;
  private readonly refillNs: bigint;

  /** Throws for a zero size or refill time: use TokenBucket.fromConfig, which maps those to "no limit". */
  constructor(cfg: TokenBucketConfig, private readonly clock: Clock = monotonicClock) {
    checkCount('size', cfg.size, false);
    checkCount('refill_time', cfg.refill_time, false);
    const burst = cfg.one_time_burst ?? 0;
    checkCount('one_time_burst', burst, true);
    this.size = cfg.size;
    this.refillTime = cfg.refill_time;
    this.initialOneTimeBurst = burst;
    this.burst = burst;
    this.tokens = cfg.size; // starts full
    this.sizeN = BigInt(cfg.size);
    this.refillNs = BigInt(cfg.refill_time) * BigInt(NS_PER_MS);
    this.lastUpdate = clockNs(clock);
  }

  /** A bucket, or null when `size` or `refill_time` is 0 (Firecracker: limiting disabled). */
  static fromConfig(cfg: TokenBucketConfig, clock: Clock = monotonicClock): TokenBucket | null {
    if (cfg.size === 0 || cfg.refill_time === 0) return null;
    return new TokenBucket(cfg, clock);
  }

  /** The configuration this bucket was built from (one_time_burst: the initial one). */
  get config(): { size: number; one_time_burst: number | null; refill_time: number } {
    return { size: this.size, one_time_burst: this.initialOneTimeBurst || null, refill_time: this.refillTime };
  }

  /** Remaining one-time burst. */
  get oneTimeBurst(): number {
    return this.burst;
  }

  /** Current budget after refilling up to now (negative while an overconsumption is being paid back). */
  get budget(): number {
    this.refill(clockNs(this.clock));
    return this.tokens;
  }

  /** Takes `tokens` if available (see the file comment for overconsumption). */
  reduce(tokens: number): BucketReduction {
    checkCount('tokens', tokens, true);
    if (this.burst > 0) {
      if (this.burst >= tokens) {
        this.burst -= tokens;
        return 'ok';
      }
      tokens -= this.burst;
      this.burst = 0;
    }
    this.refill(clockNs(this.clock));
    if (tokens <= this.tokens) {
      this.tokens -= tokens;
      return 'ok';
    }
    if (tokens > this.size && this.tokens >= this.size) {
      this.tokens -= tokens;
      return 'overconsumption';
    }
    return 'failure';
  }

  /** Gives tokens back (e.g. to undo a consume): to the burst while it lasts (up to its initial size), else the budget (up to size). */
  forceReplenish(tokens: number): void {
    checkCount('tokens', tokens, true);
    if (this.burst > 0) {
      this.burst = Math.min(this.burst + tokens, this.initialOneTimeBurst);
      return;
    }
    this.refill(clockNs(this.clock));
    this.tokens = Math.min(this.tokens + tokens, this.size);
  }

  /**
   * Clock time (ns) at which the budget reaches `level` (at most `size`), or
   * now if it already has. `reduce(n)` then succeeds for n ≤ level (n ≤ size),
   * and a larger n overconsumes once the level is `size`.
   */
  availableAtNs(level: number): bigint {
    const now = clockNs(this.clock);
    this.refill(now);
    const target = Math.min(level, this.size);
    if (this.tokens >= target) return now;
    // Tokens earned d ns after lastUpdate: floor((d * size + carry) / refillNs); solve for ≥ deficit.
    const need = BigInt(target - this.tokens) * this.refillNs - this.carry;
    const at = this.lastUpdate + (need + this.sizeN - 1n) / this.sizeN;
    return at > now ? at : now;
  }

  private refill(now: bigint): void {
    if (this.tokens >= this.size) {
      this.lastUpdate = now;
      this.carry = 0n;
      return;
    }
    const delta = now - this.lastUpdate;
    if (delta <= 0n) return;
    const units = delta * this.sizeN + this.carry;
    const earned = units / this.refillNs;
    this.lastUpdate = now;
    if (earned >= BigInt(this.size - this.tokens)) {
      this.tokens = this.size;
      this.carry = 0n;
      return;
    }
    this.tokens += Number(earned);
    this.carry = units % this.refillNs;
  }
}
