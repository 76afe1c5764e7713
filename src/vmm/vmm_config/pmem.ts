/**
 * The `pmem` entries / `PUT /pmem/{id}` body (yaml: Pmem) and the
 * `PATCH /pmem/{id}` body (yaml: PartialPmem). Validated exactly;
 * virtio-pmem comes later.
 */
import { validateRateLimiter, type RateLimiter } from './rate_limiter.js';
import { Fields } from './validate.js';

export interface Pmem {
  id: string;
  path_on_host: string;
  root_device: boolean;
  read_only: boolean;
  rate_limiter: RateLimiter | null;
}

const FIELDS = ['id', 'path_on_host', 'root_device', 'read_only', 'rate_limiter'] as const;

export function validatePmem(input: unknown, at = 'pmem'): Pmem {
  const f = Fields.of(input, at, FIELDS);
  return {
    id: f.nonEmptyStr('id'),
    path_on_host: f.nonEmptyStr('path_on_host'),
    root_device: f.defBool('root_device', false),
    read_only: f.defBool('read_only', false),
    rate_limiter: f.optObject('rate_limiter', validateRateLimiter),
  };
}

/** PATCH /pmem/{id} (yaml: PartialPmem): a post-boot rate limiter update. */
export interface PartialPmem {
  id: string;
  /** New rate limiter, or null to leave it unchanged. */
  rate_limiter: RateLimiter | null;
}

const PARTIAL_FIELDS = ['id', 'rate_limiter'] as const;

export function validatePmemUpdate(input: unknown, at = 'pmem'): PartialPmem {
  const f = Fields.of(input, at, PARTIAL_FIELDS);
  return { id: f.nonEmptyStr('id'), rate_limiter: f.optObject('rate_limiter', validateRateLimiter) };
}
