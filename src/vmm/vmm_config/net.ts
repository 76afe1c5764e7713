/**
 * The `network-interfaces` entries / `PUT /network-interfaces/{id}` body
 * (yaml: NetworkInterface) and the `PATCH /network-interfaces/{id}` body
 * (yaml: PartialNetworkInterface). Validated exactly; net devices come later.
 */
import { validateRateLimiter, type RateLimiter } from './rate_limiter.js';
import { Fields, fail } from './validate.js';

export interface NetworkInterface {
  iface_id: string;
  host_dev_name: string;
  /** Lower-case canonical form, or null to let the guest driver pick. */
  guest_mac: string | null;
  mtu: number | null;
  rx_rate_limiter: RateLimiter | null;
  tx_rate_limiter: RateLimiter | null;
}

const FIELDS = ['iface_id', 'host_dev_name', 'guest_mac', 'mtu', 'rx_rate_limiter', 'tx_rate_limiter'] as const;
const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** Linux interface names are at most IFNAMSIZ-1 = 15 bytes (also used by snapshot network_overrides). */
export function checkHostDevName(name: string, at: string): string {
  if (Buffer.byteLength(name) > 15) fail(at, `${JSON.stringify(name)} is longer than 15 bytes (IFNAMSIZ)`);
  return name;
}

export function validateNetworkInterface(input: unknown, at = 'network-interface'): NetworkInterface {
  const f = Fields.of(input, at, FIELDS);
  const iface_id = f.nonEmptyStr('iface_id');
  const host_dev_name = checkHostDevName(f.nonEmptyStr('host_dev_name'), f.path('host_dev_name'));
  let guest_mac = f.optStr('guest_mac');
  if (guest_mac !== null) {
    if (!MAC_RE.test(guest_mac)) {
      fail(f.path('guest_mac'), `invalid MAC address ${JSON.stringify(guest_mac)} (expected xx:xx:xx:xx:xx:xx in hex)`);
    }
    guest_mac = guest_mac.toLowerCase();
  }
  return {
    iface_id,
    host_dev_name,
    guest_mac,
    mtu: f.optInt('mtu', { min: 68, max: 65535 }),
    rx_rate_limiter: f.optObject('rx_rate_limiter', validateRateLimiter),
    tx_rate_limiter: f.optObject('tx_rate_limiter', validateRateLimiter),
  };
}

/** PATCH /network-interfaces/{id} (yaml: PartialNetworkInterface): post-boot rate limiter updates. */
export interface PartialNetworkInterface {
  iface_id: string;
  /** New RX limiter, or null to leave it unchanged. */
  rx_rate_limiter: RateLimiter | null;
  /** New TX limiter, or null to leave it unchanged. */
  tx_rate_limiter: RateLimiter | null;
}

const PARTIAL_FIELDS = ['iface_id', 'rx_rate_limiter', 'tx_rate_limiter'] as const;

export function validatePartialNetworkInterface(input: unknown, at = 'network-interface'): PartialNetworkInterface {
  const f = Fields.of(input, at, PARTIAL_FIELDS);
  return {
    iface_id: f.nonEmptyStr('iface_id'),
    rx_rate_limiter: f.optObject('rx_rate_limiter', validateRateLimiter),
    tx_rate_limiter: f.optObject('tx_rate_limiter', validateRateLimiter),
  };
}
