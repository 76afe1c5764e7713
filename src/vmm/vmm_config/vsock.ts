/**
 * The `vsock` section / `PUT /vsock` body (yaml: Vsock). Validated exactly;
 * the vsock device comes later.
 */
import { Fields, U32_MAX } from './validate.js';

export interface Vsock {
  /** CIDs 0-2 are reserved (hypervisor, local, host). */
  guest_cid: number;
  uds_path: string;
  /** Deprecated in Firecracker; accepted and not used. */
  vsock_id: string | null;
}

const FIELDS = ['guest_cid', 'uds_path', 'vsock_id'] as const;

export function validateVsock(input: unknown, at = 'vsock'): Vsock {
  const f = Fields.of(input, at, FIELDS);
  return {
    guest_cid: f.int('guest_cid', { min: 3, max: U32_MAX }),
    uds_path: f.nonEmptyStr('uds_path'),
    vsock_id: f.optStr('vsock_id'),
  };
}
