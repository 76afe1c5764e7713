/**
 * Firecracker's log timestamp: local time, nanosecond field, year unpadded
 * (its LocalTime Display): `2024-05-06T12:34:56.123456789`.
 */

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * Formats a wall-clock instant given in (fractional) milliseconds since the
 * epoch. JS clocks resolve to about a microsecond, so the last digits of the
 * nanosecond field are zeros; the width stays Firecracker's.
 */
export function formatLocalTimestamp(epochMs: number): string {
  const wholeMs = Math.floor(epochMs);
  const d = new Date(wholeMs);
  const nsInMs = Math.round((epochMs - wholeMs) * 1e6);
  const ns = Math.min(d.getMilliseconds() * 1e6 + nsInMs, 999_999_999);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1, 2)}-${pad(d.getDate(), 2)}` +
    `T${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.${pad(ns, 9)}`
  );
}

/** Wall clock with sub-millisecond precision (monotonic offsets from the process's time origin). */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}
