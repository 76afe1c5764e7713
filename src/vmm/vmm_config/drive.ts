/**
 * The `drives` entries / `PUT /drives/{id}` body (yaml: Drive) and the
 * `PATCH /drives/{id}` body (yaml: PartialDrive). Validated exactly; block
 * devices themselves come later.
 */
import { validateRateLimiter, type RateLimiter } from './rate_limiter.js';
import { Fields, fail } from './validate.js';

export const CACHE_TYPES = ['Unsafe', 'Writeback'] as const;
export type CacheType = (typeof CACHE_TYPES)[number];
export const IO_ENGINES = ['Sync', 'Async'] as const;
export type IoEngine = (typeof IO_ENGINES)[number];

export interface Drive {
  drive_id: string;
  partuuid: string | null;
  is_root_device: boolean;
  cache_type: CacheType;
  // virtio-block only:
  is_read_only: boolean | null;
  path_on_host: string | null;
  rate_limiter: RateLimiter | null;
  io_engine: IoEngine | null;
  // vhost-user-block only:
  socket: string | null;
}

const FIELDS = [
  'drive_id',
  'partuuid',
  'is_root_device',
  'cache_type',
  'is_read_only',
  'path_on_host',
  'rate_limiter',
  'io_engine',
  'socket',
] as const;

/** Fields that only make sense for a virtio-block (file-backed) drive. */
const VIRTIO_ONLY = ['is_read_only', 'path_on_host', 'rate_limiter', 'io_engine'] as const;

/**
 * Validates a Drive body. A drive is either virtio-block (path_on_host, and
 * no socket) or vhost-user-block (socket, and none of the virtio-only
 * fields), which is how Firecracker's Block::new tells them apart.
 */
export function validateDrive(input: unknown, at = 'drive'): Drive {
  const f = Fields.of(input, at, FIELDS);
  const d: Drive = {
    drive_id: f.nonEmptyStr('drive_id'),
    partuuid: f.optStr('partuuid'),
    is_root_device: f.bool('is_root_device'),
    cache_type: f.defEnum('cache_type', CACHE_TYPES, 'Unsafe'),
    is_read_only: f.optBool('is_read_only'),
    path_on_host: f.optStr('path_on_host'),
    rate_limiter: f.optObject('rate_limiter', validateRateLimiter),
    io_engine: f.optEnum('io_engine', IO_ENGINES),
    socket: f.optStr('socket'),
  };
  if (d.socket !== null) {
    const clash = VIRTIO_ONLY.find((k) => f.isSet(k));
    if (clash !== undefined) {
      fail(at, `"${clash}" cannot be used with "socket" (a vhost-user drive takes only drive_id, partuuid, is_root_device, cache_type and socket)`);
    }
  } else if (d.path_on_host === null) {
    fail(at, 'missing "path_on_host" (or "socket" for a vhost-user drive)');
  }
  return d;
}

/** PATCH /drives/{id} (yaml: PartialDrive): post-boot path and rate limiter updates. */
export interface PartialDrive {
  drive_id: string;
  /** New backing file (virtio-block), or null to keep it. */
  path_on_host: string | null;
  /** New rate limiter (virtio-block), or null to keep it. */
  rate_limiter: RateLimiter | null;
}

const PARTIAL_FIELDS = ['drive_id', 'path_on_host', 'rate_limiter'] as const;

/**
 * Validates a PartialDrive body. A body with only drive_id is valid: for a
 * vhost-user drive it asks Firecracker to re-read the backend's config.
 * Whether drive_id matches the path and names an existing drive is the
 * route's and the device's concern.
 */
export function validatePartialDrive(input: unknown, at = 'drive'): PartialDrive {
  const f = Fields.of(input, at, PARTIAL_FIELDS);
  const drive_id = f.nonEmptyStr('drive_id');
  const path_on_host = f.optStr('path_on_host');
  if (path_on_host === '') fail(f.path('path_on_host'), 'must not be empty');
  return { drive_id, path_on_host, rate_limiter: f.optObject('rate_limiter', validateRateLimiter) };
}
