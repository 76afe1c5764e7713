/**
 * Per-call-site log rate limiting, so a guest that can trigger a log line
 * (a bad MMIO access, a malformed virtqueue) cannot flood the host's log.
 *
 * Same policy as Firecracker's LogRateLimiter: each call site is a token
 * bucket of BURST tokens refilled over REFILL_MS (10 lines, then one per
 * 500 ms), computed as a GCRA "theoretical arrival time" so the state is two
 * numbers per site. Dropped lines are counted per site and reported by the
 * next line that gets through.
 */

export const DEFAULT_BURST = 10;
export const DEFAULT_REFILL_MS = 5000;

/**
 * Bound on remembered call sites. Sites are code locations so the set is
 * naturally small; the bound only guards against pathological callers, and
 * pruning drops only sites indistinguishable from fresh ones.
 */
const MAX_SITES = 4096;

interface SiteState {
  /** Theoretical arrival time (ms): when the bucket will be full again. */
  tat: number;
  /** Lines dropped since the last one let through. */
  suppressed: number;
}

export interface RateDecision {
  allowed: boolean;
  /** When allowed: lines dropped at this site just before, to report. */
  suppressedBefore: number;
}

export class CallSiteRateLimiter {
  private readonly sites = new Map<string, SiteState>();
  private readonly periodMs: number;

  constructor(
    readonly burst = DEFAULT_BURST,
    readonly refillMs = DEFAULT_REFILL_MS,
  ) {
    if (!(burst > 0) || !(refillMs > 0)) throw new RangeError('burst and refillMs must be > 0');
    this.periodMs = refillMs / burst;
  }

  /** Takes a token for `key` at time `nowMs` (any monotonic ms clock). */
  check(key: string, nowMs: number): RateDecision {
    let s = this.sites.get(key);
    if (s === undefined) {
      if (this.sites.size >= MAX_SITES) this.prune(nowMs);
      s = { tat: nowMs, suppressed: 0 };
      this.sites.set(key, s);
    }
    const newTat = Math.max(s.tat, nowMs) + this.periodMs;
    if (newTat - nowMs > this.refillMs) {
      s.suppressed++;
      return { allowed: false, suppressedBefore: 0 };
    }
    const suppressedBefore = s.suppressed;
    s.tat = newTat;
    s.suppressed = 0;
    return { allowed: true, suppressedBefore };
  }

  /** Number of call sites currently tracked (for tests). */
  get size(): number {
    return this.sites.size;
  }

  private prune(nowMs: number): void {
    for (const [k, s] of this.sites) {
      // A full bucket with nothing to report behaves exactly like a new site.
      if (s.tat <= nowMs && s.suppressed === 0) this.sites.delete(k);
    }
    if (this.sites.size >= MAX_SITES) this.sites.clear();
  }
}
