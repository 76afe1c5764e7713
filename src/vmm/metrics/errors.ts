/**
 * Firecracker's metrics errors, with its messages (displaydoc strings of
 * logger::MetricsError and vmm_config::metrics::MetricsConfigError), and
 * OS errors rendered as Rust's std::io::Error shows them:
 * "No such file or directory (os error 2)".
 */
import os from 'node:os';

export type MetricsErrorKind = 'NeverInitialized' | 'AlreadyInitialized' | 'Serde' | 'Write';

/** logger::MetricsError. */
export class MetricsError extends Error {
  constructor(readonly kind: MetricsErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MetricsError';
  }

  /** "Reinitialization of metrics not allowed." */
  static alreadyInitialized(): MetricsError {
    return new MetricsError('AlreadyInitialized', 'Reinitialization of metrics not allowed.');
  }

  /** "Failed to write metrics: {io error}" */
  static write(err: unknown): MetricsError {
    return new MetricsError('Write', `Failed to write metrics: ${ioErrorText(err)}`, { cause: err });
  }

  /** The serializer's message as it is. */
  static serde(err: unknown): MetricsError {
    return new MetricsError('Serde', err instanceof Error ? err.message : String(err), { cause: err });
  }
}

/**
 * vmm_config::metrics::MetricsConfigError::InitializationFailure, what
 * PUT /metrics and --metrics-path report:
 * "Cannot initialize the metrics system due to bad user input: {0}".
 */
export class MetricsConfigError extends Error {
  constructor(readonly detail: string, options?: { cause?: unknown }) {
    super(`Cannot initialize the metrics system due to bad user input: ${detail}`, options);
    this.name = 'MetricsConfigError';
  }
}

/** glibc's strerror() for the errors opening or writing a file can give. */
const STRERROR: Readonly<Record<string, string>> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  ENXIO: 'No such device or address',
  EBADF: 'Bad file descriptor',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  ENFILE: 'Too many open files in system',
  EMFILE: 'Too many open files',
  ETXTBSY: 'Text file busy',
  EFBIG: 'File too large',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
  EPIPE: 'Broken pipe',
  ENAMETOOLONG: 'File name too long',
  ELOOP: 'Too many levels of symbolic links',
  EOVERFLOW: 'Value too large for defined data type',
  EDQUOT: 'Disk quota exceeded',
  ENOTSUP: 'Operation not supported',
};

const ERRNO = os.constants.errno as Readonly<Record<string, number>>;

/**
 * An error as Rust's io::Error displays an OS error: "<strerror> (os error N)".
 * Anything that is not an OS error is shown by its message.
 */
export function ioErrorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException | null;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const errno = code !== undefined ? ERRNO[code] : undefined;
  if (code !== undefined && errno !== undefined) {
    // Node's message is "ENOENT: no such file or directory, open '/x'" (libuv's wording).
    const uv = /^[A-Z0-9]+: ([^,]*)/.exec(e!.message)?.[1];
    const text = STRERROR[code] ?? (uv ? uv.charAt(0).toUpperCase() + uv.slice(1) : code);
    return `${text} (os error ${errno})`;
  }
  return err instanceof Error ? err.message : String(err);
}
