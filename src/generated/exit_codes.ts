/**
 * Process exit codes, numerically identical to Firecracker's `FcExitCode`
 * (src/vmm/src/lib.rs) so supervisors written for Firecracker read them the
 * same way.
 *
 * Which error maps to which code follows Firecracker's main.rs
 * (`impl From<MainError> for FcExitCode`):
 *  - argument parsing errors (unknown flag, missing value, --no-api without
 *    --config-file, ...) → ArgParsing (153);
 *  - an invalid `--level` → BadConfiguration (152);
 *  - a VM that stops with an error → the code it stopped with;
 *  - everything else, including a config file that fails to build the VM
 *    (Firecracker wraps it as RunWithoutApiError/BuildFromJson) → GenericError (1).
 */
export const FcExitCode = {
  /** Success. */
  Ok: 0,
  /** Generic error. */
  GenericError: 1,
  /** An error that sound program logic cannot produce. */
  UnexpectedError: 2,
  /** Shut down after intercepting a restricted system call (seccomp). */
  BadSyscall: 148,
  /** Shut down after intercepting SIGBUS. */
  SIGBUS: 149,
  /** Shut down after intercepting SIGSEGV. */
  SIGSEGV: 150,
  /** Shut down after intercepting SIGXFSZ. */
  SIGXFSZ: 151,
  /** Bad configuration for the microVM's resources. */
  BadConfiguration: 152,
  /** Command line arguments parsing error. */
  ArgParsing: 153,
  /** Shut down after intercepting SIGXCPU. */
  SIGXCPU: 154,
  /** Shut down after intercepting SIGPIPE. */
  SIGPIPE: 155,
  /** Shut down after intercepting SIGHUP. */
  SIGHUP: 156,
  /** Shut down after intercepting SIGILL. */
  SIGILL: 157,
} as const;

export type FcExitCode = (typeof FcExitCode)[keyof typeof FcExitCode];
