/**
 * Errors raised while operating a virtqueue.
 *
 * Almost every QueueError is a *guest* error: the driver broke a rule of the
 * virtio specification (Virtio 1.2 §2.7) in memory it controls. A device that
 * gets one should either return the offending chain with `addUsed(head, 0)`
 * (when `head` is known and the queue itself is still sound) or, more
 * conservatively, set DEVICE_NEEDS_RESET and stop processing the queue
 * (§2.1.2). The `kind` field lets a device tell them apart without parsing
 * messages; the message always names the descriptor index and the problem.
 */
import { GuestMemoryError } from '../../memory/guest_memory.js';

export type QueueErrorKind =
  /** The queue's configuration (size, ring addresses, alignment) is invalid. */
  | 'config'
  /** The queue was used before it was ready/validated. */
  | 'not-ready'
  /** avail.idx moved by more than the queue size since the last descriptor the device consumed. */
  | 'avail-idx'
  /** An avail ring entry names a descriptor head outside the descriptor table. */
  | 'head-out-of-range'
  /** A descriptor's `next` is outside its descriptor table. */
  | 'next-out-of-range'
  /** Following `next` visited more descriptors than the table holds: a loop. */
  | 'loop'
  /** A buffer [addr, addr+len) is not wholly backed by guest RAM. */
  | 'buffer-out-of-range'
  /** An INDIRECT descriptor is malformed (bad length, outside RAM, with NEXT, nested, not negotiated). */
  | 'indirect'
  /** A device-readable descriptor follows a device-writable one (§2.7.4.2). */
  | 'order'
  /** The chain describes no bytes at all. */
  | 'zero-length'
  /** The chain is longer than 2^32 bytes in total (§2.7.5.2). */
  | 'too-long'
  /** The device itself misused the queue (e.g. addUsed with an invalid head). */
  | 'device';

export class QueueError extends Error {
  constructor(
    readonly kind: QueueErrorKind,
    message: string,
    /** Index of the offending descriptor in its table (the queue's, or an indirect table), when there is one. */
    readonly descIndex?: number,
    /** Head of the chain being processed, when known: lets a device return the chain with addUsed(head, 0). */
    readonly head?: number,
  ) {
    super(`virtqueue: ${message}`);
    this.name = 'QueueError';
  }
}

/**
 * A GuestMemoryError raised while touching a ring or buffer (validation
 * should make it impossible; this is the last line of defence) as a
 * QueueError, so guest-controlled input only ever surfaces as QueueError;
 * anything else unchanged. For `catch (e) { throw asQueueError(e); }`.
 */
export function asQueueError(e: unknown): unknown {
  return e instanceof GuestMemoryError ? new QueueError('buffer-out-of-range', e.message) : e;
}
