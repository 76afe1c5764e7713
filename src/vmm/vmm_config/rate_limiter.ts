/**
 * Rate limiter shapes shared by drives, network interfaces, entropy, pmem
 * and serial (yaml: RateLimiter, TokenBucket).
 */
import { Fields, U64_SAFE_MAX } from './validate.js';

export interface TokenBucket {
  /** Tokens the bucket holds. */
  size: number;
  /** Initial extra burst, or null for none. */
  one_time_burst: number | null;
  /** Milliseconds to refill the bucket from empty. */
  refill_time: number;
}

export interface RateLimiter {
  /** Bytes per refill_time. */
  bandwidth: TokenBucket | null;
  /** Operations per refill_time. */
  ops: TokenBucket | null;
}

const BUCKET_FIELDS = ['size', 'one_time_burst', 'refill_time'] as const;
const LIMITER_FIELDS = ['bandwidth', 'ops'] as const;
/** u64 in Firecracker; yaml minimum 0. */
const U64 = { min: 0, max: U64_SAFE_MAX };

export function validateTokenBucket(input: unknown, at = ''): TokenBucket {
  const f = Fields.of(input, at, BUCKET_FIELDS);
  return {
    size: f.int('size', U64),
    one_time_burst: f.optInt('one_time_burst', U64),
    refill_time: f.int('refill_time', U64),
  };
}

export function validateRateLimiter(input: unknown, at = ''): RateLimiter {
  const f = Fields.of(input, at, LIMITER_FIELDS);
  return {
    bandwidth: f.optObject('bandwidth', validateTokenBucket),
    ops: f.optObject('ops', validateTokenBucket),
  };
}
