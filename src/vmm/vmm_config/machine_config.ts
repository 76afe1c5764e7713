/**
 * The `machine-config` section / `PUT` and `PATCH /machine-config` bodies
 * (yaml: MachineConfiguration).
 */
import { Fields, fail, joinPath } from './validate.js';

/** Firecracker's MAX_SUPPORTED_VCPUS (and the yaml's maximum). */
export const MAX_SUPPORTED_VCPUS = 32;
/** Firecracker's DEFAULT_MEM_SIZE_MIB. */
export const DEFAULT_MEM_SIZE_MIB = 128;
/**
 * Upper bound on mem_size_mib: 1 TiB. Firecracker itself only bounds it by
 * usize and fails later when the mapping cannot be made; we refuse earlier
 * because (a) 1 TiB is far beyond any microVM and most hosts' guest-physical
 * address width once the 3–4 GiB MMIO gap is added, and (b) it keeps every
 * byte count derived from it (mib × 2^20 ≤ 2^40) exact in a JS number.
 */
export const MAX_MEM_SIZE_MIB = 1024 * 1024;

export const HUGE_PAGES = ['None', 'Transparent', '2M'] as const;
export type HugePages = (typeof HUGE_PAGES)[number];

/** Static CPU templates (yaml: CpuTemplate); deprecated in Firecracker. */
export const CPU_TEMPLATES = ['C3', 'T2', 'T2S', 'T2CL', 'T2A', 'V1N1', 'None'] as const;
export type CpuTemplate = (typeof CPU_TEMPLATES)[number];

export interface MachineConfiguration {
  vcpu_count: number;
  mem_size_mib: number;
  smt: boolean;
  /** null when none was set (Firecracker omits it then). */
  cpu_template: CpuTemplate | null;
  track_dirty_pages: boolean;
  huge_pages: HugePages;
}

/** PATCH /machine-config: every field optional, at least one present. */
export type MachineConfigurationUpdate = Partial<MachineConfiguration>;

const FIELDS = ['vcpu_count', 'mem_size_mib', 'smt', 'cpu_template', 'track_dirty_pages', 'huge_pages'] as const;

/** Firecracker's MachineConfig::default(). */
export function defaultMachineConfiguration(): MachineConfiguration {
  return {
    vcpu_count: 1,
    mem_size_mib: DEFAULT_MEM_SIZE_MIB,
    smt: false,
    cpu_template: null,
    track_dirty_pages: false,
    huge_pages: 'None',
  };
}

/**
 * The cross-field rules of Firecracker's MachineConfig::update(), applied to
 * the merged result so PUT and PATCH enforce them identically.
 */
export function checkMachineConfiguration(mc: MachineConfiguration, at = 'machine-config'): MachineConfiguration {
  const vcpuAt = joinPath(at, 'vcpu_count');
  const memAt = joinPath(at, 'mem_size_mib');
  if (mc.vcpu_count < 1 || mc.vcpu_count > MAX_SUPPORTED_VCPUS) {
    fail(vcpuAt, `${mc.vcpu_count} is out of range (1..${MAX_SUPPORTED_VCPUS})`);
  }
  if (mc.smt && mc.vcpu_count > 1 && mc.vcpu_count % 2 === 1) {
    fail(vcpuAt, `must be 1 or an even number when smt is true (got ${mc.vcpu_count})`);
  }
  if (mc.mem_size_mib < 1 || mc.mem_size_mib > MAX_MEM_SIZE_MIB) {
    fail(memAt, `${mc.mem_size_mib} is out of range (1..${MAX_MEM_SIZE_MIB})`);
  }
  // Huge pages are 2 MiB; Firecracker also asks THP-backed memory to be a
  // multiple of 2 MiB to keep the kernel's alignment optimisations.
  if (mc.huge_pages !== 'None' && mc.mem_size_mib % 2 !== 0) {
    fail(memAt, `${mc.mem_size_mib} is not a multiple of 2 MiB, which huge_pages "${mc.huge_pages}" requires`);
  }
  return mc;
}

/**
 * Reads the fields of a body. Only integer-ness is checked here; the ranges
 * are checkMachineConfiguration's, so 0, 33 and 300 all get the same
 * "out of range (1..32)" message rather than a u8 overflow one.
 */
function readFields(f: Fields, put: boolean): MachineConfigurationUpdate {
  const out: MachineConfigurationUpdate = {};
  if (put || f.raw('vcpu_count') !== undefined) out.vcpu_count = f.int('vcpu_count', {});
  if (put || f.raw('mem_size_mib') !== undefined) out.mem_size_mib = f.int('mem_size_mib', {});
  // A PUT carries a whole MachineConfig, whose serde defaults fill the
  // omitted fields (Firecracker's From<MachineConfig> for MachineConfigUpdate);
  // a PATCH only touches what it names.
  if (put || f.raw('smt') !== undefined) out.smt = f.defBool('smt', false);
  if (put || f.raw('track_dirty_pages') !== undefined) {
    out.track_dirty_pages = f.defBool('track_dirty_pages', false);
  }
  if (put || f.raw('huge_pages') !== undefined) out.huge_pages = f.defEnum('huge_pages', HUGE_PAGES, 'None');
  // cpu_template stays absent unless given, in both: absent keeps the current one.
  const tpl = f.optEnum('cpu_template', CPU_TEMPLATES);
  if (tpl !== null) out.cpu_template = tpl;
  return out;
}

/**
 * Reads a PUT body (or config-file section) as the update it applies:
 * vcpu_count and mem_size_mib are required, the rest take Firecracker's
 * defaults, cpu_template is kept unless given.
 */
export function readMachineConfigurationPut(input: unknown, at = 'machine-config'): MachineConfigurationUpdate {
  return readFields(Fields.of(input, at, FIELDS), true);
}

/** Validates a PATCH body on its own (types, enums, at least one field). */
export function validateMachineConfigurationUpdate(input: unknown, at = 'machine-config'): MachineConfigurationUpdate {
  const u = readFields(Fields.of(input, at, FIELDS), false);
  if (Object.keys(u).length === 0) fail(at, 'empty update: at least one field must be given');
  return u;
}

/**
 * Applies an update (from a PUT or a PATCH) to the current configuration and
 * checks the result. As in Firecracker, cpu_template "None" clears the
 * template and an absent one keeps it.
 */
export function applyMachineConfigurationUpdate(
  current: MachineConfiguration,
  update: MachineConfigurationUpdate,
  at = 'machine-config',
): MachineConfiguration {
  const merged: MachineConfiguration = { ...current, ...update };
  if (update.cpu_template === 'None') merged.cpu_template = null;
  else if (update.cpu_template === undefined) merged.cpu_template = current.cpu_template;
  return checkMachineConfiguration(merged, at);
}

/**
 * Validates a full MachineConfiguration body against the defaults: the
 * standalone form of a PUT, for callers without current state.
 */
export function validateMachineConfiguration(input: unknown, at = 'machine-config'): MachineConfiguration {
  return applyMachineConfigurationUpdate(defaultMachineConfiguration(), readMachineConfigurationPut(input, at), at);
}
