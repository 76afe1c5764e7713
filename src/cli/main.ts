/**
 * `sparkler` entry point: parse flags, configure the logger, build the
 * microVM from --config-file and run it until the guest stops.
 * Every failure ends in one log line and a Firecracker exit code, never a
 * stack trace.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { FcExitCode } from '../generated/exit_codes.js';
import { logger } from '../logger/logger.js';
import { ConfigError } from '../vmm/vmm_config/errors.js';
import { kernelCmdline } from '../vmm/vmm_config/boot_source.js';
import { toLoggerOptions } from '../vmm/vmm_config/logger.js';
import { parseConfigFile, type VmResources } from '../vmm/resources.js';
import { buildMicroVm, type MachineSpec } from '../vmm/builder.js';
import { ArgumentsError, cliLoggerOptions, helpText, parseCliArgs, versionText, type CliOptions } from './args.js';
import { detectHostVirtualization } from './host.js';

/** CLOCK_MONOTONIC µs at process start: now minus the time since Node's time origin. */
function processStartUs(): bigint {
  return process.hrtime.bigint() / 1000n - BigInt(Math.round(performance.now() * 1000));
}

function fail(code: number, msg: string): never {
  logger.errorUnrestricted(msg);
  logger.close();
  process.exit(code);
}

function readConfig(path: string): VmResources {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read the configuration file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return parseConfigFile(text);
}

function machineSpec(res: VmResources, opts: CliOptions): MachineSpec {
  const bs = res.bootSource;
  if (!bs) throw new ConfigError('boot-source: the kernel image is not configured (boot-source.kernel_image_path is required)');
  const mc = res.machineConfig;
  if (mc.huge_pages !== 'None') throw new ConfigError(`machine-config.huge_pages: "${mc.huge_pages}" is not supported yet`);
  if (mc.track_dirty_pages) throw new ConfigError('machine-config.track_dirty_pages: dirty page tracking is not supported yet');
  return {
    kernelImagePath: bs.kernel_image_path,
    initrdPath: bs.initrd_path ?? undefined,
    bootArgs: kernelCmdline(bs),
    vcpuCount: mc.vcpu_count,
    memSizeMib: mc.mem_size_mib,
    smt: mc.smt,
    bootTimer: opts.bootTimer,
    startTimeUs: opts.startTimeUs !== null ? BigInt(opts.startTimeUs) : processStartUs(),
    startCpuUs: opts.startTimeCpuUs ?? 0,
  };
}

async function main(): Promise<number> {
  let opts: CliOptions;
  try {
    opts = parseCliArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof ArgumentsError) {
      process.stderr.write(`${e.report()}\n`);
      return e.exitCode;
    }
    throw e;
  }
  if (opts.help) {
    process.stdout.write(helpText());
    return FcExitCode.Ok;
  }
  if (opts.version) {
    process.stdout.write(versionText());
    return FcExitCode.Ok;
  }
  try {
    logger.configure(cliLoggerOptions(opts));
  } catch (e) {
    process.stderr.write(`Failed to configure the logger: ${(e as Error).message}\n`);
    return FcExitCode.BadConfiguration;
  }
  logger.info(`Running sparkler v${versionText().trim().split(' v')[1] ?? ''}`);
  if (!opts.noApi || opts.configFile === null) {
    fail(FcExitCode.GenericError, 'the API server is not available yet: start with --no-api --config-file FILE');
  }

  let spec: MachineSpec;
  try {
    const res = readConfig(opts.configFile);
    if (res.logger) logger.configure(toLoggerOptions(res.logger));
    spec = machineSpec(res, opts);
  } catch (e) {
    if (e instanceof ConfigError) fail(FcExitCode.BadConfiguration, `Configuration for VMM from one single json failed: ${e.message}`);
    throw e;
  }

  const host = detectHostVirtualization();
  if (!host.hardware) logger.warn(`this host has no hardware virtualization (${host.detail}): ordinary guests run under KVM's instruction emulator`);

  let vmm;
  try {
    vmm = buildMicroVm(spec, { info: (m) => logger.info(m), warn: (m) => logger.warn(m), error: (m) => logger.error(m) });
  } catch (e) {
    fail(FcExitCode.GenericError, `Building VMM configured from cmdline json failed: ${(e as Error).message}`);
  }
  const stopOnSignal = (sig: string): void => {
    logger.info(`received ${sig}, stopping the microVM`);
    vmm.end({ reason: 'stopped', exitCode: FcExitCode.Ok, message: `stopped by ${sig}` });
  };
  process.once('SIGTERM', () => stopOnSignal('SIGTERM'));
  process.once('SIGINT', () => stopOnSignal('SIGINT'));

  logger.info(`Successfully started microvm that was configured from one single json`);
  const stop = await vmm.run();
  logger.info(`Vmm is stopping with exit code ${stop.exitCode}`);
  return stop.exitCode;
}

main().then(
  (code) => {
    logger.close();
    process.exit(code);
  },
  (err: unknown) => fail(FcExitCode.UnexpectedError, `unexpected error: ${err instanceof Error ? err.message : String(err)}`),
);
