/**
 * Command-line parsing: Firecracker's flags, defaults, rules and messages.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';

import {
  ArgumentsError,
  cliLoggerOptions,
  DEFAULT_API_SOCK_PATH,
  helpText,
  HTTP_MAX_PAYLOAD_SIZE,
  parseCliArgs,
  validateInstanceId,
  versionText,
} from '../../src/cli/args.js';
import { FcExitCode } from '../../src/generated/exit_codes.js';

function expectArgError(argv: string[], pattern: RegExp, exitCode: number = FcExitCode.ArgParsing): void {
  let caught: unknown;
  try {
    parseCliArgs(argv);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ArgumentsError, `expected ArgumentsError for ${JSON.stringify(argv)}, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  assert.equal(caught.exitCode, exitCode);
}

describe('exit codes', () => {
  it("match Firecracker's FcExitCode", () => {
    assert.equal(FcExitCode.Ok, 0);
    assert.equal(FcExitCode.GenericError, 1);
    assert.equal(FcExitCode.UnexpectedError, 2);
    assert.equal(FcExitCode.BadSyscall, 148);
    assert.equal(FcExitCode.BadConfiguration, 152);
    assert.equal(FcExitCode.ArgParsing, 153);
  });
});

describe('parseCliArgs: accepted lines', () => {
  it('gives Firecracker defaults for an empty line', () => {
    const o = parseCliArgs([]);
    assert.equal(o.apiSock, DEFAULT_API_SOCK_PATH);
    assert.equal(o.apiSock, '/run/firecracker.socket');
    assert.equal(o.id, 'anonymous-instance');
    assert.equal(o.httpApiMaxPayloadSize, 51200);
    assert.equal(HTTP_MAX_PAYLOAD_SIZE, 51200);
    assert.equal(o.mmdsSizeLimit, 51200);
    assert.equal(o.level, null);
    assert.equal(o.configFile, null);
    assert.equal(o.noApi, false);
    assert.equal(o.help, false);
    assert.equal(o.version, false);
  });

  it('reads every flag', () => {
    const o = parseCliArgs([
      '--api-sock', '/tmp/a.sock',
      '--config-file', '/tmp/vm.json',
      '--no-api',
      '--id', 'vm-0042',
      '--boot-timer',
      '--level', 'Debug',
      '--log-path', '/tmp/fc.log',
      '--show-level',
      '--show-log-origin',
      '--module', 'vmm::devices',
      '--metrics-path', '/tmp/metrics',
      '--http-api-max-payload-size', '1000',
      '--start-time-us', '1700000000000000',
      '--start-time-cpu-us', '12',
      '--parent-cpu-time-us', '34',
      '--no-seccomp',
    ]);
    assert.deepEqual(o, {
      help: false,
      version: false,
      apiSock: '/tmp/a.sock',
      configFile: '/tmp/vm.json',
      noApi: true,
      id: 'vm-0042',
      bootTimer: true,
      level: 'Debug',
      logPath: '/tmp/fc.log',
      showLevel: true,
      showLogOrigin: true,
      module: 'vmm::devices',
      metricsPath: '/tmp/metrics',
      httpApiMaxPayloadSize: 1000,
      mmdsSizeLimit: 1000,
      startTimeUs: 1700000000000000,
      startTimeCpuUs: 12,
      parentCpuTimeUs: 34,
      noSeccomp: true,
      seccompFilter: null,
    });
  });

  it('takes --mmds-size-limit over the payload size', () => {
    const o = parseCliArgs(['--http-api-max-payload-size', '1000', '--mmds-size-limit', '4096']);
    assert.equal(o.mmdsSizeLimit, 4096);
  });

  it('accepts --name=value', () => {
    assert.equal(parseCliArgs(['--id=abc']).id, 'abc');
  });

  for (const [given, level] of [
    ['debug', 'Debug'],
    ['WARNING', 'Warning'],
    ['warn', 'Warning'],
    ['Off', 'Off'],
    ['tRaCe', 'Trace'],
    ['error', 'Error'],
    ['INFO', 'Info'],
  ] as const) {
    it(`--level ${given} is ${level} (case-insensitive)`, () => {
      assert.equal(parseCliArgs(['--level', given]).level, level);
    });
  }

  it('--seccomp-filter alone is fine', () => {
    assert.equal(parseCliArgs(['--seccomp-filter', '/f.bpf']).seccompFilter, '/f.bpf');
  });

  it('--help and --version win over anything else, help first', () => {
    assert.equal(parseCliArgs(['--bogus', '--help']).help, true);
    assert.equal(parseCliArgs(['-h']).help, true);
    assert.equal(parseCliArgs(['--no-api', '--version']).version, true);
    const both = parseCliArgs(['--version', '--help']);
    assert.equal(both.help, true);
    assert.equal(both.version, false);
  });
});

describe('parseCliArgs: refused lines', () => {
  const table: Array<[string, string[], RegExp, number?]> = [
    ['--no-api without --config-file', ['--no-api'], /^Argument 'config-file' required, but not found\.$/],
    ['unknown flag', ['--bogus'], /^Found argument 'bogus' which wasn't expected, or isn't valid in this context\.$/],
    ['unknown short flag', ['-x'], /^Found argument '-x' which wasn't expected/],
    ['positional argument', ['vm.json'], /^Found argument 'vm\.json' which wasn't expected/],
    ['missing value at the end', ['--api-sock'], /^The argument 'api-sock' requires a value, but none was supplied\.$/],
    ['flag where a value should be', ['--config-file', '--no-api'], /^The argument 'config-file' requires a value, but none was supplied/],
    ['value given to a flag', ['--no-api=yes', '--config-file', 'x'], /^Argument 'no-api' does not take a value\.$/],
    ['duplicate flag', ['--id', 'a', '--id', 'b'], /^The argument 'id' was provided more than once\.$/],
    ['id with underscore', ['--id', 'vm_1'], /^Invalid instance ID: Invalid char \(_\) at position 2$/],
    ['id with colon', ['--id', 'vm:1'], /^Invalid instance ID: Invalid char \(:\) at position 2$/],
    ['empty id', ['--id', ''], /^Invalid instance ID: Invalid len \(0\); the length must be between 1 and 64$/],
    ['id too long', ['--id', 'a'.repeat(65)], /^Invalid instance ID: Invalid len \(65\)/],
    ['bad level', ['--level', 'loud'], /^Invalid value for logger level: "loud"\. Possible values \(case-insensitive\): Error, Warning, Info, Debug, Trace, Off$/, FcExitCode.BadConfiguration],
    ['seccomp flags together', ['--no-seccomp', '--seccomp-filter', 'f'], /^Argument 'seccomp-filter' cannot be used together with argument 'no-seccomp'\.$/],
    ['payload size not a number', ['--http-api-max-payload-size', '50k'], /^'http-api-max-payload-size' parameter expected to be of 'usize' type, got '50k'\.$/],
    ['negative payload size', ['--http-api-max-payload-size=-1'], /'http-api-max-payload-size' parameter expected to be of 'usize' type/],
    ['mmds size not a number', ['--mmds-size-limit', 'lots'], /'mmds-size-limit' parameter expected to be of 'usize' type/],
    ['start time not a number', ['--start-time-us', '1.5'], /'start-time-us' parameter expected to be of 'u64' type/],
    ['arguments after --', ['--', 'extra'], /^Found argument 'extra'/],
  ];
  for (const [name, argv, pattern, code] of table) {
    it(`refuses: ${name}`, () => expectArgError(argv, pattern, code));
  }

  it('reports parsing errors the way Firecracker words them', () => {
    const err = new ArgumentsError("Found argument 'x' which wasn't expected, or isn't valid in this context.");
    assert.equal(
      err.report(),
      "Arguments parsing error: Found argument 'x' which wasn't expected, or isn't valid in this context.\n\nFor more information try --help.",
    );
  });
});

describe('instance id', () => {
  it('accepts alphanumerics and dashes up to 64 bytes', () => {
    validateInstanceId('a'.repeat(64));
    validateInstanceId('12-3aa');
    validateInstanceId('A-b-C-0');
  });
  it('counts length in bytes, like Firecracker', () => {
    assert.throws(() => validateInstanceId('é'.repeat(33)), /Invalid len \(66\)/);
  });
});

describe('help and version', () => {
  it('version is the package version in Firecracker layout', () => {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(versionText(), `Firecracker-compatible sparkler v${pkg.version}\n\n`);
  });

  it('help lists every flag with its value placeholder and defaults', () => {
    const h = helpText();
    assert.ok(h.startsWith(versionText()));
    for (const flag of [
      '--api-sock <api-sock>', '--config-file <config-file>', '--no-api', '--id <id>', '--boot-timer', '--level <level>',
      '--log-path <log-path>', '--show-level', '--show-log-origin', '--metrics-path <metrics-path>',
      '--http-api-max-payload-size <http-api-max-payload-size>', '--mmds-size-limit <mmds-size-limit>',
      '--start-time-us <start-time-us>', '--start-time-cpu-us <start-time-cpu-us>',
      '--parent-cpu-time-us <parent-cpu-time-us>', '--no-seccomp', '--seccomp-filter <seccomp-filter>', '--version', '--help',
    ]) {
      assert.ok(h.includes(`  ${flag} `), `help is missing ${flag}`);
    }
    assert.match(h, /\[default: "\/run\/firecracker\.socket"\]/);
    assert.match(h, /\[default: "51200"\]/);
    assert.match(h, /\[default: "anonymous-instance"\]/);
  });
});

describe('cliLoggerOptions', () => {
  it('maps flags to a logger configuration like Firecracker main does', () => {
    assert.deepEqual(cliLoggerOptions(parseCliArgs([])), { level: 'Info', instanceId: 'anonymous-instance' });
    assert.deepEqual(
      cliLoggerOptions(parseCliArgs(['--level', 'trace', '--log-path', '/l', '--show-level', '--show-log-origin', '--id', 'x'])),
      { level: 'Trace', instanceId: 'x', path: '/l', showLevel: true, showOrigin: true },
    );
  });
});
