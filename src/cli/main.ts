/**
 * `sparkler` entry point: parse flags, configure the logger, then either
 * serve Firecracker's API on --api-sock (optionally booting --config-file
 * right away) or, with --no-api, boot --config-file and run until the guest
 * stops. Every failure ends in one log line and a Firecracker exit code,
 * never a stack trace.
 */
import fs from 'node:fs';
import { ApiServer } from '../api/server.js';
import { FcExitCode } from '../generated/exit_codes.js';
import { logger } from '../logger/logger.js';
import { ConfigError } from '../vmm/vmm_config/errors.js';
import { toLoggerOptions } from '../vmm/vmm_config/logger.js';
import { parseConfigFile, VmResources } from '../vmm/resources.js';
import { preloadBuilder, VmmActionError, VmmController } from '../vmm/rpc_interface.js';
import { ArgumentsError, cliLoggerOptions, helpText, packageVersion, parseCliArgs, versionText, type CliOptions } from './args.js';
import { detectHostVirtualization } from './host.js';
import { VmmMetrics } from './vmm_metrics.js';

/**
 * CLOCK_MONOTONIC µs at process start: now minus the time since Node's time
 * origin. `performance` is the global (the same object node:perf_hooks
 * exports, without loading that module before the API listens).
 */
function processStartUs(): bigint {
  return process.hrtime.bigint() / 1000n - BigInt(Math.round(performance.now() * 1000));
}

function exitWith(code: number): never {
  logger.close();
  process.exit(code);
}

function fail(code: number, msg: string): never {
  logger.errorUnrestricted(msg);
  exitWith(code);
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

function parseArgsOrExit(): CliOptions {
  try {
    return parseCliArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof ArgumentsError) {
      process.stderr.write(`${e.report()}\n`);
      process.exit(e.exitCode);
    }
    throw e;
  }
}

async function main(): Promise<void> {
  const opts = parseArgsOrExit();
  if (opts.help) {
    process.stdout.write(helpText());
    exitWith(FcExitCode.Ok);
  }
  if (opts.version) {
    process.stdout.write(versionText());
    exitWith(FcExitCode.Ok);
  }
  try {
    logger.configure(cliLoggerOptions(opts));
  } catch (e) {
    process.stderr.write(`Failed to configure the logger: ${(e as Error).message}\n`);
    process.exit(FcExitCode.BadConfiguration);
  }
  logger.info(`Running sparkler v${packageVersion()}`);
  const host = detectHostVirtualization();
  if (!host.hardware) logger.warn(`this host has no hardware virtualization (${host.detail}): ordinary guests run under KVM's instruction emulator`);

  let resources: VmResources;
  try {
    resources = opts.configFile !== null ? readConfig(opts.configFile) : new VmResources();
    if (resources.logger) logger.configure(toLoggerOptions(resources.logger));
  } catch (e) {
    if (e instanceof ConfigError) fail(FcExitCode.BadConfiguration, `Configuration for VMM from one single json failed: ${e.message}`);
    throw e;
  }

  const metrics = new VmmMetrics(opts);
  let api: ApiServer | undefined;
  const controller = new VmmController(resources, {
    instanceId: opts.id,
    bootTimer: opts.bootTimer,
    startTimeUs: opts.startTimeUs !== null ? BigInt(opts.startTimeUs) : processStartUs(),
    startCpuUs: opts.startTimeCpuUs ?? 0,
    log: { info: (m) => logger.info(m), warn: (m) => logger.warn(m), error: (m) => logger.error(m) },
    onStarted: () => metrics.onInstanceStart(controller),
    onVmEnd: (stop) => {
      api?.close();
      metrics.flushAtExit();
      logger.info(`Vmm is stopping with exit code ${stop.exitCode}`);
      exitWith(stop.exitCode);
    },
  });
  try {
    if (resources.metrics) metrics.configure(resources.metrics);
  } catch (e) {
    fail(FcExitCode.BadConfiguration, `Configuration for VMM from one single json failed: ${(e as Error).message}`);
  }

  const stopOnSignal = (sig: string): void => {
    logger.info(`received ${sig}, stopping`);
    if (controller.started) controller.stop(FcExitCode.Ok, `stopped by ${sig}`);
    else {
      api?.close();
      metrics.flushAtExit();
      exitWith(FcExitCode.Ok);
    }
  };
  process.once('SIGTERM', () => stopOnSignal('SIGTERM'));
  process.once('SIGINT', () => stopOnSignal('SIGINT'));

  // As Firecracker: a VM described by --config-file is built before the API answers, so GET / already says Running.
  if (opts.configFile !== null && (opts.noApi || resources.bootSource)) {
    try {
      await controller.startInstance();
    } catch (e) {
      const msg = e instanceof VmmActionError ? e.message : (e as Error).message;
      fail(FcExitCode.GenericError, `Building VMM configured from cmdline json failed: ${msg}`);
    }
    logger.info('Successfully started microvm that was configured from one single json');
  }

  if (!opts.noApi) {
    api = new ApiServer({
      socketPath: opts.apiSock,
      maxPayload: opts.httpApiMaxPayloadSize,
      controller,
      info: {
        instanceId: opts.id,
        version: packageVersion(),
        flushMetrics: () => metrics.flushOnRequest(),
        configureLogger: (body) => {
          const cfg = resources.setLogger(body, '');
          try {
            logger.configure(toLoggerOptions(cfg));
          } catch (e) {
            // A log path that cannot be opened is bad input (400), as in Firecracker.
            throw new ConfigError((e as Error).message);
          }
        },
        configureMetrics: (body) => metrics.configure(resources.setMetrics(body, '')),
      },
      onRequest: (key, failed) => metrics.countRequest(key, failed),
    });
    try {
      await api.listen();
    } catch (e) {
      fail(FcExitCode.GenericError, (e as Error).message);
    }
    logger.info(`API server listening on ${opts.apiSock}`);
    metrics.onApiServerUp();
    // Warm the VM builder now that the API answers, so InstanceStart does not wait for it.
    setImmediate(() => void preloadBuilder());
  } else if (opts.configFile === null) {
    fail(FcExitCode.ArgParsing, 'Arguments parsing error: --no-api requires --config-file');
  }

}

main().catch((err: unknown) => fail(FcExitCode.UnexpectedError, `unexpected error: ${err instanceof Error ? err.message : String(err)}`));
