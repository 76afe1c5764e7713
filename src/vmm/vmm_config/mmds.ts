/**
 * The `mmds-config` section / `PUT /mmds/config` body (yaml: MmdsConfig),
 * and the `PUT`/`PATCH /mmds` data bodies (yaml: MmdsContentsObject).
 * Validated exactly; MMDS comes later.
 */
import { Fields, describeValue, expectString, fail, isPlainObject } from './validate.js';

export const MMDS_VERSIONS = ['V1', 'V2'] as const;
export type MmdsVersion = (typeof MMDS_VERSIONS)[number];
export const DEFAULT_MMDS_IPV4 = '169.254.169.254';

export interface MmdsConfig {
  version: MmdsVersion;
  network_interfaces: string[];
  /** null means the default, 169.254.169.254. */
  ipv4_address: string | null;
  imds_compat: boolean;
}

const FIELDS = ['version', 'network_interfaces', 'ipv4_address', 'imds_compat'] as const;
const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * Firecracker's is_link_local_valid: 169.254.0.0/16 without its first and
 * last /24, which RFC 3927 reserves.
 */
function checkLinkLocal(s: string, at: string): void {
  const m = IPV4_RE.exec(s);
  const octets = m ? m.slice(1).map(Number) : [];
  if (!m || octets.some((o) => o > 255) || m.slice(1).some((o) => o.length > 1 && o.startsWith('0'))) {
    fail(at, `invalid IPv4 address ${JSON.stringify(s)}`);
  }
  const [a, b, c] = octets;
  if (a !== 169 || b !== 254 || c === 0 || c === 255) {
    fail(at, `${s} is not a valid link-local address (169.254.1.0 - 169.254.254.255)`);
  }
}

/**
 * Validates an MmdsConfig body. `knownIfaceIds` are the configured network
 * interfaces, which every listed interface must name (as Firecracker checks
 * when the config is set).
 */
export function validateMmdsConfig(input: unknown, at = 'mmds-config', knownIfaceIds: readonly string[] = []): MmdsConfig {
  const f = Fields.of(input, at, FIELDS);
  const version = f.defEnum('version', MMDS_VERSIONS, 'V1');
  const network_interfaces = f.array('network_interfaces', expectString);
  const ipv4_address = f.optStr('ipv4_address');
  if (ipv4_address !== null) checkLinkLocal(ipv4_address, f.path('ipv4_address'));
  const imds_compat = f.defBool('imds_compat', false);
  if (network_interfaces.length === 0) {
    fail(f.path('network_interfaces'), 'the list of network interface IDs that allow forwarding MMDS requests is empty');
  }
  const unknown = network_interfaces.find((id) => !knownIfaceIds.includes(id));
  if (unknown !== undefined) {
    fail(f.path('network_interfaces'), `${JSON.stringify(unknown)} does not name a configured network interface`);
  }
  return { version, network_interfaces, ipv4_address, imds_compat };
}

/** The MMDS data store contents (yaml: MmdsContentsObject): any JSON object. */
export type MmdsData = Record<string, unknown>;

/**
 * Validates a `PUT`/`PATCH /mmds` body: any JSON object, whatever its keys;
 * an array, null or a scalar is refused. The data store size limit is the
 * store's to enforce, against the merged result of a PATCH.
 */
export function validateMmdsData(input: unknown, at = 'mmds'): MmdsData {
  if (!isPlainObject(input)) fail(at, `expected a JSON object, got ${describeValue(input)}`);
  return input;
}
