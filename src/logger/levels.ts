/**
 * Log levels, shared by the logger, the CLI (`--level`) and the `logger`
 * configuration section so the three accept exactly the same spellings.
 */

/** The levels a message can be logged at. */
export type LogLevel = 'Error' | 'Warning' | 'Info' | 'Debug' | 'Trace';
/** A level filter: the most verbose level still printed, or Off. */
export type LevelFilter = LogLevel | 'Off';

/** Firecracker's default filter (its swagger spec says Info). */
export const DEFAULT_LEVEL: LevelFilter = 'Info';

/** The spellings the API documents, in the yaml's order. */
export const LEVEL_FILTER_NAMES: readonly LevelFilter[] = ['Error', 'Warning', 'Info', 'Debug', 'Trace', 'Off'];

/** Higher is more verbose; a message is printed when its rank <= the filter's rank. */
export const LEVEL_RANK: Readonly<Record<LevelFilter, number>> = {
  Off: 0,
  Error: 1,
  Warning: 2,
  Info: 3,
  Debug: 4,
  Trace: 5,
};

/**
 * How the level appears in a log line. Firecracker prints the `log` crate's
 * level names, so Warning shows as WARN.
 */
export const LEVEL_LABEL: Readonly<Record<LogLevel, string>> = {
  Error: 'ERROR',
  Warning: 'WARN',
  Info: 'INFO',
  Debug: 'DEBUG',
  Trace: 'TRACE',
};

/**
 * Parses a level filter case-insensitively. Like Firecracker, "warn" is
 * accepted as well as "warning" (kept there for backward compatibility).
 * Returns undefined for anything else.
 */
export function parseLevelFilter(s: string): LevelFilter | undefined {
  switch (s.toLowerCase()) {
    case 'off':
      return 'Off';
    case 'trace':
      return 'Trace';
    case 'debug':
      return 'Debug';
    case 'info':
      return 'Info';
    case 'warn':
    case 'warning':
      return 'Warning';
    case 'error':
      return 'Error';
    default:
      return undefined;
  }
}
