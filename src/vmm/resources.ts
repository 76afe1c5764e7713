/**
 * VmResources: the whole pre-boot configuration of one microVM, and the one
 * place where configuration is accepted. `--config-file` goes through
 * parseConfigFile() and (later) each API PUT/PATCH calls the same setter
 * with its body, so a body is accepted or rejected the same way through both.
 *
 * Sections whose devices do not exist yet are validated exactly and then
 * refused with UnsupportedConfigError: nothing is accepted and ignored. Their
 * fields are already here, typed, so adding a device means replacing a
 * refusal with a store.
 */
import * as fs from 'node:fs';

import { validateBalloon, type Balloon } from './vmm_config/balloon.js';
import { validateBootSource, type BootSource } from './vmm_config/boot_source.js';
import { validateCpuConfig, type CpuConfig } from './vmm_config/cpu_config.js';
import { validateDrive, type Drive } from './vmm_config/drive.js';
import { validateEntropyDevice, type EntropyDevice } from './vmm_config/entropy.js';
import { ConfigError, UnsupportedConfigError } from './vmm_config/errors.js';
import { validateLoggerConfig, type LoggerConfig } from './vmm_config/logger.js';
import {
  applyMachineConfigurationUpdate,
  defaultMachineConfiguration,
  readMachineConfigurationPut,
  validateMachineConfigurationUpdate,
  type MachineConfiguration,
  type MachineConfigurationUpdate,
} from './vmm_config/machine_config.js';
import { validateMemoryHotplugConfig, type MemoryHotplugConfig } from './vmm_config/memory_hotplug.js';
import { validateMetricsConfig, type MetricsConfig } from './vmm_config/metrics.js';
import { validateMmdsConfig, type MmdsConfig } from './vmm_config/mmds.js';
import { validateNetworkInterface, type NetworkInterface } from './vmm_config/net.js';
import { validatePmem, type Pmem } from './vmm_config/pmem.js';
import { validateSerialDevice, type SerialDevice } from './vmm_config/serial.js';
import { describeValue, fail, ioErrorText, isPlainObject, joinPath } from './vmm_config/validate.js';
import { validateVsock, type Vsock } from './vmm_config/vsock.js';

/** Top-level keys of a Firecracker config file. */
export const CONFIG_FILE_SECTIONS = [
  'boot-source',
  'machine-config',
  'drives',
  'network-interfaces',
  'vsock',
  'entropy',
  'balloon',
  'logger',
  'metrics',
  'mmds-config',
  'cpu-config',
  'pmem',
  'memory-hotplug',
  'serial',
] as const;
export type ConfigFileSection = (typeof CONFIG_FILE_SECTIONS)[number];

/** Firecracker opens a drive's file at PUT time: a missing or unusable file is refused then, not at boot. */
function checkBackingFile(at: string, path: string, readOnly: boolean): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
    fs.accessSync(path, readOnly ? fs.constants.R_OK : fs.constants.R_OK | fs.constants.W_OK);
  } catch (err) {
    fail(at, `unable to open the block device backing file ${JSON.stringify(path)}: ${ioErrorText(err)}`);
  }
  if (!st.isFile() && !st.isBlockDevice()) fail(at, `the block device backing file ${JSON.stringify(path)} is not a regular file or block device`);
}

function notSupported(at: string, what: string): never {
  throw new UnsupportedConfigError(`${at ? `${at}: ` : ''}${what} not supported yet`);
}

export class VmResources {
  bootSource: BootSource | null = null;
  machineConfig: MachineConfiguration = defaultMachineConfiguration();
  /** Applied to the logger by the caller (logger.configure(toLoggerOptions(...))). */
  logger: LoggerConfig | null = null;
  /** Applied by whoever owns metrics output. */
  metrics: MetricsConfig | null = null;
  /** Only `{}` / all-null so far: a serial output path is not supported yet. */
  serial: SerialDevice | null = null;

  // Not supported yet: always empty until their devices exist.
  readonly drives: Drive[] = [];
  readonly networkInterfaces: NetworkInterface[] = [];
  vsock: Vsock | null = null;
  entropy: EntropyDevice | null = null;
  balloon: Balloon | null = null;
  mmdsConfig: MmdsConfig | null = null;
  cpuConfig: CpuConfig | null = null;
  readonly pmem: Pmem[] = [];
  memoryHotplug: MemoryHotplugConfig | null = null;

  /** PUT /boot-source. */
  setBootSource(input: unknown, at = 'boot-source'): BootSource {
    this.bootSource = validateBootSource(input, at);
    return this.bootSource;
  }

  /** PUT /machine-config: a whole configuration; omitted fields take Firecracker's defaults. */
  setMachineConfig(input: unknown, at = 'machine-config'): MachineConfiguration {
    return this.applyMachineConfig(readMachineConfigurationPut(input, at), at);
  }

  /** PATCH /machine-config: only the given fields change. */
  patchMachineConfig(input: unknown, at = 'machine-config'): MachineConfiguration {
    return this.applyMachineConfig(validateMachineConfigurationUpdate(input, at), at);
  }

  private applyMachineConfig(update: MachineConfigurationUpdate, at: string): MachineConfiguration {
    const next = applyMachineConfigurationUpdate(this.machineConfig, update, at);
    if (next.cpu_template !== null) {
      notSupported(joinPath(at, 'cpu_template'), `static CPU template ${JSON.stringify(next.cpu_template)} is`);
    }
    this.machineConfig = next;
    return next;
  }

  /** PUT /logger. */
  setLogger(input: unknown, at = 'logger'): LoggerConfig {
    this.logger = validateLoggerConfig(input, at);
    return this.logger;
  }

  /** PUT /metrics. */
  setMetrics(input: unknown, at = 'metrics'): MetricsConfig {
    this.metrics = validateMetricsConfig(input, at);
    return this.metrics;
  }

  /** PUT /serial. Accepted only when it asks for the default (stdout, unlimited). */
  setSerial(input: unknown, at = 'serial'): SerialDevice {
    const s = validateSerialDevice(input, at);
    if (s.serial_out_path !== null) notSupported(joinPath(at, 'serial_out_path'), 'serial output to a file is');
    if (s.rate_limiter !== null) notSupported(joinPath(at, 'rate_limiter'), 'serial rate limiting is');
    this.serial = s;
    return s;
  }

  /** PUT /drives/{id}: adds the drive, or replaces the one with the same id. */
  setDrive(input: unknown, at = 'drive'): Drive {
    const d = validateDrive(input, at);
    if (d.socket !== null) notSupported(at, 'vhost-user block devices are');
    checkBackingFile(joinPath(at, 'path_on_host'), d.path_on_host ?? '', d.is_read_only ?? false);
    if (d.is_root_device && this.drives.some((x) => x.is_root_device && x.drive_id !== d.drive_id)) {
      fail(at, 'a root block device already exists; only one drive can be the root device');
    }
    const i = this.drives.findIndex((x) => x.drive_id === d.drive_id);
    if (i >= 0) this.drives[i] = d;
    else this.drives.push(d);
    return d;
  }

  /** PUT /network-interfaces/{id}. */
  setNetworkInterface(input: unknown, at = 'network-interface'): NetworkInterface {
    const n = validateNetworkInterface(input, at);
    // Firecracker refuses a TAP or MAC already used by another interface.
    for (const other of this.networkInterfaces) {
      if (other.iface_id === n.iface_id) continue;
      if (other.host_dev_name === n.host_dev_name) fail(at, `the host device ${n.host_dev_name} is already used by interface ${other.iface_id}`);
      if (n.guest_mac !== null && other.guest_mac === n.guest_mac) fail(at, `the guest MAC ${n.guest_mac} is already used by interface ${other.iface_id}`);
    }
    const i = this.networkInterfaces.findIndex((x) => x.iface_id === n.iface_id);
    if (i >= 0) this.networkInterfaces[i] = n;
    else this.networkInterfaces.push(n);
    return n;
  }

  /** PUT /vsock. */
  setVsock(input: unknown, at = 'vsock'): Vsock {
    this.vsock = validateVsock(input, at);
    return this.vsock;
  }

  /** PUT /entropy. */
  setEntropy(input: unknown, at = 'entropy'): EntropyDevice {
    this.entropy = validateEntropyDevice(input, at);
    return this.entropy;
  }

  /** PUT /balloon. */
  setBalloon(input: unknown, at = 'balloon'): never {
    validateBalloon(input, at);
    notSupported(at, 'the balloon device is');
  }

  /** PUT /mmds/config. Interface ids are checked against the configured interfaces. */
  setMmdsConfig(input: unknown, at = 'mmds-config'): never {
    validateMmdsConfig(
      input,
      at,
      this.networkInterfaces.map((n) => n.iface_id),
    );
    notSupported(at, 'MMDS is');
  }

  /** PUT /cpu-config. */
  setCpuConfig(input: unknown, at = 'cpu-config'): never {
    validateCpuConfig(input, at);
    notSupported(at, 'custom CPU templates are');
  }

  /** PUT /pmem/{id}. */
  setPmem(input: unknown, at = 'pmem'): never {
    validatePmem(input, at);
    notSupported(at, 'pmem devices are');
  }

  /** PUT /hotplug/memory. */
  setMemoryHotplug(input: unknown, at = 'memory-hotplug'): never {
    validateMemoryHotplugConfig(input, at);
    notSupported(at, 'memory hotplug is');
  }

  /** The configuration in config-file / GET /vm/config shape (yaml: FullVmConfiguration). */
  toFullVmConfiguration(): Record<string, unknown> {
    const { cpu_template, ...mc } = this.machineConfig;
    return {
      balloon: this.balloon,
      drives: this.drives,
      'boot-source': this.bootSource ?? { kernel_image_path: '', initrd_path: null, boot_args: null },
      'cpu-config': this.cpuConfig,
      logger: this.logger,
      'machine-config': cpu_template === null ? mc : { ...mc, cpu_template },
      metrics: this.metrics,
      'mmds-config': this.mmdsConfig,
      'network-interfaces': this.networkInterfaces,
      vsock: this.vsock,
      entropy: this.entropy,
      pmem: this.pmem,
      'memory-hotplug': this.memoryHotplug,
    };
  }
}

/**
 * A config file may give cpu-config as the path of a JSON template file
 * (Firecracker's CustomCpuTemplateOrPath); read it so it is validated too.
 */
function loadCpuTemplate(v: unknown, at: string): unknown {
  if (typeof v !== 'string') return v;
  let text: string;
  try {
    text = fs.readFileSync(v, 'utf8');
  } catch (err) {
    fail(at, `cannot read CPU template file ${JSON.stringify(v)}: ${ioErrorText(err)}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    fail(at, `CPU template file ${JSON.stringify(v)} is not valid JSON: ${jsonErrorText(err, text)}`);
  }
}

/**
 * V8's JSON.parse message on one line, plus "(line L, column C)" when the
 * failure position is known.
 */
function jsonErrorText(err: unknown, text: string): string {
  const msg = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ');
  const m = /position (\d+)/.exec(msg);
  // A truncated document fails at its end, which V8 does not locate.
  const pos = m ? Number(m[1]) : /end of JSON input/.test(msg) ? text.length : undefined;
  if (pos === undefined) return msg;
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return `${msg} (line ${line}, column ${column})`;
}

type Sections = Partial<Record<ConfigFileSection, unknown>>;

/** Runs `apply` on a section unless it is absent or null (null = not configured). */
function optional(doc: Sections, key: ConfigFileSection, apply: (v: unknown, at: string) => unknown): void {
  const v = doc[key];
  if (v !== undefined && v !== null) apply(v, key);
}

/** Runs `apply` on each entry of a list section; absent, null and [] are all "none". */
function list(doc: Sections, key: ConfigFileSection, apply: (v: unknown, at: string) => unknown): void {
  const v = doc[key];
  if (v === undefined || v === null) return;
  if (!Array.isArray(v)) fail(key, `expected an array, got ${describeValue(v)}`);
  v.forEach((entry, i) => apply(entry, joinPath(key, i)));
}

/**
 * Parses a `--config-file` document (Firecracker's VmmConfig). Sections are
 * applied in Firecracker's from_json order, so when several are wrong the
 * first one reported is the one Firecracker would report.
 * Throws ConfigError (or UnsupportedConfigError) with a one-line message.
 */
export function parseConfigFile(text: string): VmResources {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file is not valid JSON: ${jsonErrorText(err, text)}`);
  }
  if (!isPlainObject(doc)) {
    throw new ConfigError(`config file: expected a JSON object at the top level, got ${describeValue(doc)}`);
  }
  for (const key of Object.keys(doc)) {
    if (!(CONFIG_FILE_SECTIONS as readonly string[]).includes(key)) {
      throw new ConfigError(
        `config file: unknown section ${JSON.stringify(key)} (expected one of: ${CONFIG_FILE_SECTIONS.join(', ')})`,
      );
    }
  }
  const sections = doc as Sections;
  if (sections['boot-source'] === undefined) {
    throw new ConfigError('config file: missing required section "boot-source"');
  }

  const r = new VmResources();
  optional(sections, 'logger', (v, at) => r.setLogger(v, at));
  optional(sections, 'metrics', (v, at) => r.setMetrics(v, at));
  optional(sections, 'machine-config', (v, at) => r.setMachineConfig(v, at));
  optional(sections, 'cpu-config', (v, at) => r.setCpuConfig(loadCpuTemplate(v, at), at));
  // boot-source is required and not an Option in Firecracker: null is a type error.
  r.setBootSource(sections['boot-source'], 'boot-source');
  list(sections, 'drives', (v, at) => r.setDrive(v, at));
  list(sections, 'network-interfaces', (v, at) => r.setNetworkInterface(v, at));
  optional(sections, 'vsock', (v, at) => r.setVsock(v, at));
  optional(sections, 'balloon', (v, at) => r.setBalloon(v, at));
  optional(sections, 'mmds-config', (v, at) => r.setMmdsConfig(v, at));
  optional(sections, 'entropy', (v, at) => r.setEntropy(v, at));
  list(sections, 'pmem', (v, at) => r.setPmem(v, at));
  optional(sections, 'serial', (v, at) => r.setSerial(v, at));
  optional(sections, 'memory-hotplug', (v, at) => r.setMemoryHotplug(v, at));
  return r;
}
