/**
 * Errors raised while validating VM configuration, whether it arrives in a
 * `--config-file` or (later) in an API request body. One error type for both
 * paths is what lets the API map every configuration fault to a 400 with the
 * same one-line text the config file path prints.
 */

/** A configuration value was malformed, out of range, or pointed at an unusable file. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * The configuration was valid but names a feature sparkler does not implement
 * yet. Kept distinct so callers can tell "fix your input" from "not here yet",
 * while still being a ConfigError: nothing is ever accepted and then ignored.
 */
export class UnsupportedConfigError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedConfigError';
  }
}
