/**
 * The `logger` section / `PUT /logger` body (yaml: Logger).
 */
import { DEFAULT_LEVEL, LEVEL_FILTER_NAMES, parseLevelFilter, type LevelFilter } from '../../logger/levels.js';
import type { LoggerOptions } from '../../logger/logger.js';
import { Fields, fail } from './validate.js';

/** Named LoggerConfig (not the yaml's "Logger") to stay clear of the logger class. */
export interface LoggerConfig {
  /** Normalised spelling; the input is case-insensitive. null = not given. */
  level: LevelFilter | null;
  log_path: string | null;
  show_level: boolean | null;
  show_log_origin: boolean | null;
  /** Only log lines whose call-site module path starts with this. */
  module: string | null;
}

const FIELDS = ['level', 'log_path', 'show_level', 'show_log_origin', 'module'] as const;

/**
 * Validates a Logger body. Every field is optional (all are Option<T> in
 * Firecracker). The log path is not opened here: that is configuring the
 * logger, which may create it (see toLoggerOptions / logger.configure).
 */
export function validateLoggerConfig(input: unknown, at = 'logger'): LoggerConfig {
  const f = Fields.of(input, at, FIELDS);
  const rawLevel = f.optStr('level');
  let level: LevelFilter | null = null;
  if (rawLevel !== null) {
    const parsed = parseLevelFilter(rawLevel);
    if (parsed === undefined) {
      fail(
        f.path('level'),
        `invalid value ${JSON.stringify(rawLevel)} (expected one of, case-insensitive: ${LEVEL_FILTER_NAMES.join(', ')})`,
      );
    }
    level = parsed;
  }
  const log_path = f.optStr('log_path');
  if (log_path === '') fail(f.path('log_path'), 'must not be empty');
  return {
    level,
    log_path,
    show_level: f.optBool('show_level'),
    show_log_origin: f.optBool('show_log_origin'),
    module: f.optStr('module'),
  };
}

/**
 * The logger.configure() call this configuration asks for. Unset fields are
 * left unchanged, except the level: Firecracker's Logger::update sets an
 * omitted level back to the default (Info), and PUT /logger / the config
 * file's `logger` section behave the same here.
 */
export function toLoggerOptions(cfg: LoggerConfig): LoggerOptions {
  const o: LoggerOptions = { level: cfg.level ?? DEFAULT_LEVEL };
  if (cfg.log_path !== null) o.path = cfg.log_path;
  if (cfg.show_level !== null) o.showLevel = cfg.show_level;
  if (cfg.show_log_origin !== null) o.showOrigin = cfg.show_log_origin;
  if (cfg.module !== null) o.module = cfg.module;
  return o;
}
