export { RateLimiter, type BucketUpdate, type RateLimiterConfig, type TokenType } from './rate_limiter.js';
export {
  clockNs, monotonicClock, TokenBucket, type BucketReduction, type Clock, type TokenBucketConfig,
} from './token_bucket.js';
