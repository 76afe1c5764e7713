/**
 * The validators by API body type (the yaml's definition names), so the REST
 * API can look up the one a route takes. Each is `(input, at?) => T` and
 * throws ConfigError; VmResources' setters wrap them with the
 * supported/unsupported decision and are what routes should call.
 */
import { validateBalloon } from './balloon.js';
import { validateBootSource } from './boot_source.js';
import { validateCpuConfig } from './cpu_config.js';
import { validateDrive } from './drive.js';
import { validateEntropyDevice } from './entropy.js';
import { validateLoggerConfig } from './logger.js';
import { validateMachineConfiguration, validateMachineConfigurationUpdate } from './machine_config.js';
import { validateMemoryHotplugConfig } from './memory_hotplug.js';
import { validateMetricsConfig } from './metrics.js';
import { validateMmdsConfig } from './mmds.js';
import { validateNetworkInterface } from './net.js';
import { validatePmem } from './pmem.js';
import { validateRateLimiter, validateTokenBucket } from './rate_limiter.js';
import { validateSerialDevice } from './serial.js';
import { validateVsock } from './vsock.js';

export { ConfigError, UnsupportedConfigError } from './errors.js';

export const BODY_VALIDATORS = {
  Balloon: validateBalloon,
  BootSource: validateBootSource,
  CpuConfig: validateCpuConfig,
  Drive: validateDrive,
  EntropyDevice: validateEntropyDevice,
  Logger: validateLoggerConfig,
  MachineConfiguration: validateMachineConfiguration,
  MachineConfigurationUpdate: validateMachineConfigurationUpdate,
  MemoryHotplugConfig: validateMemoryHotplugConfig,
  Metrics: validateMetricsConfig,
  MmdsConfig: validateMmdsConfig,
  NetworkInterface: validateNetworkInterface,
  Pmem: validatePmem,
  RateLimiter: validateRateLimiter,
  SerialDevice: validateSerialDevice,
  TokenBucket: validateTokenBucket,
  Vsock: validateVsock,
} as const;
