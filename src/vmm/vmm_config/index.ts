/**
 * The validators by API body type (the yaml's definition names), so the REST
 * API can look up the one a route takes. Each is `(input, at?) => T` and
 * throws ConfigError; VmResources' setters wrap them with the
 * supported/unsupported decision and are what routes should call.
 */
import { validateInstanceActionInfo } from './actions.js';
import {
  validateBalloon,
  validateBalloonHintingStart,
  validateBalloonStatsUpdate,
  validateBalloonUpdate,
} from './balloon.js';
import { validateBootSource } from './boot_source.js';
import { validateCpuConfig } from './cpu_config.js';
import { validateDrive, validatePartialDrive } from './drive.js';
import { validateEntropyDevice } from './entropy.js';
import { validateLoggerConfig } from './logger.js';
import { validateMachineConfiguration, validateMachineConfigurationUpdate } from './machine_config.js';
import { validateMemoryHotplugConfig, validateMemoryHotplugSizeUpdate } from './memory_hotplug.js';
import { validateMetricsConfig } from './metrics.js';
import { validateMmdsConfig, validateMmdsData } from './mmds.js';
import { validateNetworkInterface, validatePartialNetworkInterface } from './net.js';
import { validatePmem, validatePmemUpdate } from './pmem.js';
import { validateRateLimiter, validateTokenBucket } from './rate_limiter.js';
import { validateSerialDevice } from './serial.js';
import { validateSnapshotCreateParams, validateSnapshotLoadParams } from './snapshot.js';
import { validateVmState } from './vm_state.js';
import { validateVsock } from './vsock.js';

export { ConfigError, UnsupportedConfigError } from './errors.js';

export const BODY_VALIDATORS = {
  Balloon: validateBalloon,
  BalloonStartCmd: validateBalloonHintingStart,
  BalloonStatsUpdate: validateBalloonStatsUpdate,
  BalloonUpdate: validateBalloonUpdate,
  BootSource: validateBootSource,
  CpuConfig: validateCpuConfig,
  Drive: validateDrive,
  EntropyDevice: validateEntropyDevice,
  InstanceActionInfo: validateInstanceActionInfo,
  Logger: validateLoggerConfig,
  MachineConfiguration: validateMachineConfiguration,
  MachineConfigurationUpdate: validateMachineConfigurationUpdate,
  MemoryHotplugConfig: validateMemoryHotplugConfig,
  MemoryHotplugSizeUpdate: validateMemoryHotplugSizeUpdate,
  Metrics: validateMetricsConfig,
  MmdsConfig: validateMmdsConfig,
  MmdsContentsObject: validateMmdsData,
  NetworkInterface: validateNetworkInterface,
  PartialDrive: validatePartialDrive,
  PartialNetworkInterface: validatePartialNetworkInterface,
  PartialPmem: validatePmemUpdate,
  Pmem: validatePmem,
  RateLimiter: validateRateLimiter,
  SerialDevice: validateSerialDevice,
  SnapshotCreateParams: validateSnapshotCreateParams,
  SnapshotLoadParams: validateSnapshotLoadParams,
  TokenBucket: validateTokenBucket,
  Vm: validateVmState,
  Vsock: validateVsock,
} as const;

/** A yaml definition name that has a validator. */
export type BodyDefinition = keyof typeof BODY_VALIDATORS;
/** What the validator for `K` returns. */
export type BodyOf<K extends BodyDefinition> = ReturnType<(typeof BODY_VALIDATORS)[K]>;

/**
 * Validates an API request body against its yaml definition, with no
 * location prefix: errors read `missing required field "state"` or
 * `rate_limiter.ops.size: expected an integer, got …`, never
 * `vm: …`. An absent body is `undefined` (only BalloonStartCmd accepts one).
 * Context-dependent validators get their standalone defaults: MmdsConfig,
 * for one, sees no configured interfaces, so routes that need state should
 * call VmResources' setters instead.
 */
export function validateBody<K extends BodyDefinition>(definition: K, input: unknown): BodyOf<K> {
  if (!Object.hasOwn(BODY_VALIDATORS, definition)) {
    throw new TypeError(`no validator for API body type ${JSON.stringify(definition)}`);
  }
  const validator = BODY_VALIDATORS[definition] as (input: unknown, at: string) => BodyOf<K>;
  return validator(input, '');
}
