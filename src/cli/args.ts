/**
 * Command-line arguments, with Firecracker's flag names, defaults, rules and
 * error texts (its main.rs and utils/arg_parser.rs), parsed by node:util
 * parseArgs in strict mode.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';

import { FcExitCode } from '../generated/exit_codes.js';
import { DEFAULT_LEVEL, LEVEL_FILTER_NAMES, parseLevelFilter, type LevelFilter } from '../logger/levels.js';
import { DEFAULT_INSTANCE_ID, type LoggerOptions } from '../logger/logger.js';

/** Firecracker's DEFAULT_API_SOCK_PATH (a runtime file, hence /run). */
export const DEFAULT_API_SOCK_PATH = '/run/firecracker.socket';
/** Firecracker's HTTP_MAX_PAYLOAD_SIZE: API (and by default MMDS) request body limit. */
export const HTTP_MAX_PAYLOAD_SIZE = 51200;

export interface CliOptions {
  /** --help / -h: print helpText() and exit 0; nothing else was parsed. */
  help: boolean;
  /** --version: print versionText() and exit 0; nothing else was parsed. */
  version: boolean;
  apiSock: string;
  configFile: string | null;
  noApi: boolean;
  /** Validated instance id (1..64 bytes of alphanumerics and '-'). */
  id: string;
  bootTimer: boolean;
  /** null when --level was not given (the logger default, Info, applies). */
  level: LevelFilter | null;
  logPath: string | null;
  showLevel: boolean;
  showLogOrigin: boolean;
  module: string | null;
  metricsPath: string | null;
  httpApiMaxPayloadSize: number;
  /** Defaults to httpApiMaxPayloadSize, as in Firecracker. */
  mmdsSizeLimit: number;
  startTimeUs: number | null;
  startTimeCpuUs: number | null;
  parentCpuTimeUs: number | null;
  noSeccomp: boolean;
  seccompFilter: string | null;
}

/**
 * A command line Firecracker would refuse. exitCode is ArgParsing (153),
 * except an invalid --level, which Firecracker reports as BadConfiguration (152).
 */
export class ArgumentsError extends Error {
  constructor(
    message: string,
    readonly exitCode: FcExitCode = FcExitCode.ArgParsing,
  ) {
    super(message);
    this.name = 'ArgumentsError';
  }

  /** The text to print, as Firecracker words a parsing error. */
  report(): string {
    if (this.exitCode !== FcExitCode.ArgParsing) return this.message;
    return `Arguments parsing error: ${this.message}\n\nFor more information try --help.`;
  }
}

interface ArgSpec {
  takesValue: boolean;
  help: string;
  default?: string;
}

/**
 * The flags, in the alphabetical order Firecracker's parser (a BTreeMap)
 * both lists them in --help and checks their rules in.
 */
const ARGS: Readonly<Record<string, ArgSpec>> = {
  'api-sock': { takesValue: true, help: 'Path to unix domain socket used by the API.', default: DEFAULT_API_SOCK_PATH },
  'boot-timer': {
    takesValue: false,
    help: 'Whether or not to load boot timer device for logging elapsed time since InstanceStart command.',
  },
  'config-file': { takesValue: true, help: 'Path to a file that contains the microVM configuration in JSON format.' },
  help: { takesValue: false, help: 'Show the help message.' },
  'http-api-max-payload-size': {
    takesValue: true,
    help: 'Http API request payload max size, in bytes.',
    default: String(HTTP_MAX_PAYLOAD_SIZE),
  },
  id: { takesValue: true, help: 'MicroVM unique identifier.', default: DEFAULT_INSTANCE_ID },
  level: { takesValue: true, help: 'Set the logger level.' },
  'log-path': { takesValue: true, help: 'Path to a fifo or a file used for configuring the logger on startup.' },
  'metrics-path': { takesValue: true, help: 'Path to a fifo or a file used for configuring the metrics on startup.' },
  'mmds-size-limit': { takesValue: true, help: 'Mmds data store limit, in bytes.' },
  module: { takesValue: true, help: 'Set the logger module filter.' },
  'no-api': {
    takesValue: false,
    help: 'Optional parameter which allows starting and using a microVM without an active API socket.',
  },
  'no-seccomp': {
    takesValue: false,
    help: 'Optional parameter which allows starting and using a microVM without seccomp filtering. Not recommended.',
  },
  'parent-cpu-time-us': { takesValue: true, help: 'Parent process CPU time (wall clock, microseconds). This parameter is optional.' },
  'seccomp-filter': {
    takesValue: true,
    help: 'Optional parameter which allows specifying the path to a custom seccomp filter. For advanced users.',
  },
  'show-level': { takesValue: false, help: 'Whether or not to output the level in the logs.' },
  'show-log-origin': {
    takesValue: false,
    help: "Whether or not to include the file path and line number of the log's origin.",
  },
  'start-time-cpu-us': { takesValue: true, help: 'Process start CPU time (wall clock, microseconds). This parameter is optional.' },
  'start-time-us': { takesValue: true, help: 'Process start time (wall clock, microseconds). This parameter is optional.' },
  version: { takesValue: false, help: 'Print the binary version number.' },
};

/** Firecracker's `requires` and `forbids` rules. */
const REQUIRES: Readonly<Record<string, string>> = { 'no-api': 'config-file' };
const FORBIDS: Readonly<Record<string, readonly string[]>> = {
  'no-seccomp': ['seccomp-filter'],
  'seccomp-filter': ['no-seccomp'],
};

/** Set by scripts/bundle.mjs to package.json's version; absent from the tsc output. */
declare const __SPARKLER_VERSION__: string | undefined;

/**
 * The version from package.json: built into the bundle (dist/bundle/), read
 * from the file by the tsc output (this file is <root>/dist/src/cli/args.js).
 */
export function packageVersion(): string {
  if (typeof __SPARKLER_VERSION__ === 'string') return __SPARKLER_VERSION__;
  try {
    const pkg: unknown = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
    if (typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string') {
      return pkg.version;
    }
  } catch {
    // fall through: a version line is still printable without it
  }
  return 'unknown';
}

/**
 * What --version prints. Firecracker prints "Firecracker v<version>" and a
 * blank line; we keep the layout and say what we are.
 */
export function versionText(): string {
  return `Firecracker-compatible sparkler v${packageVersion()}\n\n`;
}

/** What --help prints: the version line, then Firecracker's aligned flag list. */
export function helpText(): string {
  const name = (k: string) => (ARGS[k]!.takesValue ? `  --${k} <${k}>` : `  --${k}`);
  const keys = Object.keys(ARGS);
  const width = Math.max(...keys.map((k) => name(k).length));
  const lines = keys.map((k) => {
    const spec = ARGS[k]!;
    const dflt = spec.default !== undefined ? ` [default: "${spec.default}"]` : '';
    return `${name(k).padEnd(width)}   ${spec.help}${dflt}`;
  });
  return `${versionText()}optional arguments:\n${lines.join('\n')}\n`;
}

/**
 * Firecracker's validate_instance_id: 1..64 bytes, each character
 * alphanumeric (Unicode, like Rust's char::is_alphanumeric) or '-'.
 */
export function validateInstanceId(id: string): void {
  const len = Buffer.byteLength(id);
  if (len < 1 || len > 64) {
    throw new ArgumentsError(`Invalid instance ID: Invalid len (${len}); the length must be between 1 and 64`);
  }
  // ASCII letters, digits and '-' are all valid: skip the Unicode property
  // test (costly to compile, at start-up) for the usual ids.
  if (/^[A-Za-z0-9-]+$/.test(id)) return;
  let i = 0;
  for (const c of id) {
    if (c !== '-' && !/^[\p{Alphabetic}\p{Nd}\p{Nl}\p{No}]$/u.test(c)) {
      throw new ArgumentsError(`Invalid instance ID: Invalid char (${c}) at position ${i}`);
    }
    i++;
  }
}

/** Firecracker parses these as usize/u64 and refuses anything else. */
function parseUnsigned(name: string, value: string, rustType: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new ArgumentsError(`'${name}' parameter expected to be of '${rustType}' type, got '${value}'.`);
  }
  return n;
}

/** Maps parseArgs' errors to Firecracker's UtilsArgParserError texts. */
function translateParseError(err: unknown): ArgumentsError {
  const e = err as { code?: string; message?: string };
  const msg = e.message ?? String(err);
  const quoted = /'([^']*)'/.exec(msg)?.[1] ?? '';
  const bare = quoted.replace(/^--/, '').replace(/ <value>$/, '');
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new ArgumentsError(`Found argument '${bare}' which wasn't expected, or isn't valid in this context.`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(msg)) {
        return new ArgumentsError(`Argument '${bare}' does not take a value.`);
      }
      // Firecracker also treats a following "--flag" as a missing value.
      // parseArgs additionally refuses values starting with '-' unless
      // written --name=-value; the message says so.
      return new ArgumentsError(
        /ambiguous/.test(msg)
          ? `The argument '${bare}' requires a value, but none was supplied (write --${bare}=<value> for a value starting with '-').`
          : `The argument '${bare}' requires a value, but none was supplied.`,
      );
    default:
      return new ArgumentsError(msg.replace(/\s+/g, ' '));
  }
}

const PARSE_OPTIONS = Object.fromEntries(
  Object.entries(ARGS).map(([k, spec]) => [k, { type: spec.takesValue ? ('string' as const) : ('boolean' as const) }]),
);

function strictParse(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: PARSE_OPTIONS, strict: true, allowPositionals: false, tokens: true });
}

function defaults(): CliOptions {
  return {
    help: false,
    version: false,
    apiSock: DEFAULT_API_SOCK_PATH,
    configFile: null,
    noApi: false,
    id: DEFAULT_INSTANCE_ID,
    bootTimer: false,
    level: null,
    logPath: null,
    showLevel: false,
    showLogOrigin: false,
    module: null,
    metricsPath: null,
    httpApiMaxPayloadSize: HTTP_MAX_PAYLOAD_SIZE,
    mmdsSizeLimit: HTTP_MAX_PAYLOAD_SIZE,
    startTimeUs: null,
    startTimeCpuUs: null,
    parentCpuTimeUs: null,
    noSeccomp: false,
    seccompFilter: null,
  };
}

/**
 * Parses the arguments after the program name (process.argv.slice(2)).
 * Throws ArgumentsError (see its exitCode) for anything Firecracker refuses.
 */
export function parseCliArgs(argv: readonly string[]): CliOptions {
  const out = defaults();
  // Like Firecracker, --help / -h and then --version win over everything
  // else on the line, even arguments that would not parse.
  const beforeSeparator = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
  if (beforeSeparator.includes('--help') || beforeSeparator.includes('-h')) return { ...out, help: true };
  if (beforeSeparator.includes('--version')) return { ...out, version: true };

  let parsed: ReturnType<typeof strictParse>;
  try {
    parsed = strictParse(argv);
  } catch (err) {
    throw translateParseError(err);
  }
  const seen = new Set<string>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option') continue;
    if (seen.has(t.name)) throw new ArgumentsError(`The argument '${t.name}' was provided more than once.`);
    seen.add(t.name);
  }
  for (const name of Object.keys(ARGS)) {
    if (!seen.has(name)) continue;
    const required = REQUIRES[name];
    if (required !== undefined && !seen.has(required)) {
      throw new ArgumentsError(`Argument '${required}' required, but not found.`);
    }
    for (const other of FORBIDS[name] ?? []) {
      if (seen.has(other)) throw new ArgumentsError(`Argument '${other}' cannot be used together with argument '${name}'.`);
    }
  }

  const v = parsed.values;
  const str = (k: string): string | null => {
    const x = v[k];
    return typeof x === 'string' ? x : null;
  };
  const flag = (k: string): boolean => v[k] === true;

  out.id = str('id') ?? DEFAULT_INSTANCE_ID;
  validateInstanceId(out.id);
  const level = str('level');
  if (level !== null) {
    const lf = parseLevelFilter(level);
    if (lf === undefined) {
      throw new ArgumentsError(
        `Invalid value for logger level: ${JSON.stringify(level)}. Possible values (case-insensitive): ${LEVEL_FILTER_NAMES.join(', ')}`,
        FcExitCode.BadConfiguration,
      );
    }
    out.level = lf;
  }
  out.apiSock = str('api-sock') ?? DEFAULT_API_SOCK_PATH;
  out.configFile = str('config-file');
  out.noApi = flag('no-api');
  out.bootTimer = flag('boot-timer');
  out.logPath = str('log-path');
  out.showLevel = flag('show-level');
  out.showLogOrigin = flag('show-log-origin');
  out.module = str('module');
  out.metricsPath = str('metrics-path');
  out.noSeccomp = flag('no-seccomp');
  out.seccompFilter = str('seccomp-filter');
  const payload = str('http-api-max-payload-size');
  if (payload !== null) out.httpApiMaxPayloadSize = parseUnsigned('http-api-max-payload-size', payload, 'usize');
  const mmds = str('mmds-size-limit');
  out.mmdsSizeLimit = mmds !== null ? parseUnsigned('mmds-size-limit', mmds, 'usize') : out.httpApiMaxPayloadSize;
  const u64 = (k: string): number | null => {
    const s = str(k);
    return s === null ? null : parseUnsigned(k, s, 'u64');
  };
  out.startTimeUs = u64('start-time-us');
  out.startTimeCpuUs = u64('start-time-cpu-us');
  out.parentCpuTimeUs = u64('parent-cpu-time-us');
  return out;
}

/**
 * The logger.configure() call main makes from the flags, as Firecracker's
 * main does right after parsing: level defaults to Info, show flags only
 * ever turn things on, and the instance id is set.
 */
export function cliLoggerOptions(o: CliOptions): LoggerOptions {
  const opts: LoggerOptions = { level: o.level ?? DEFAULT_LEVEL, instanceId: o.id };
  if (o.logPath !== null) opts.path = o.logPath;
  if (o.showLevel) opts.showLevel = true;
  if (o.showLogOrigin) opts.showOrigin = true;
  if (o.module !== null) opts.module = o.module;
  return opts;
}
