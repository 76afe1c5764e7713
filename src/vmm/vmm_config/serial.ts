/**
 * The `serial` section / `PUT /serial` body (yaml: SerialDevice).
 */
import { validateTokenBucket, type TokenBucket } from './rate_limiter.js';
import { Fields } from './validate.js';

export interface SerialDevice {
  /** File or named pipe for guest console output; null = stdout. */
  serial_out_path: string | null;
  rate_limiter: TokenBucket | null;
}

export function validateSerialDevice(input: unknown, at = 'serial'): SerialDevice {
  const f = Fields.of(input, at, ['serial_out_path', 'rate_limiter']);
  return {
    serial_out_path: f.optStr('serial_out_path'),
    rate_limiter: f.optObject('rate_limiter', validateTokenBucket),
  };
}
