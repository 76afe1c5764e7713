/**
 * The `entropy` section / `PUT /entropy` body (yaml: EntropyDevice).
 * Validated exactly; the virtio-rng device comes later.
 */
import { validateRateLimiter, type RateLimiter } from './rate_limiter.js';
import { Fields } from './validate.js';

export interface EntropyDevice {
  rate_limiter: RateLimiter | null;
}

export function validateEntropyDevice(input: unknown, at = 'entropy'): EntropyDevice {
  const f = Fields.of(input, at, ['rate_limiter']);
  return { rate_limiter: f.optObject('rate_limiter', validateRateLimiter) };
}
