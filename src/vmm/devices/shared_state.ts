/**
 * Device state that several threads touch: each vCPU thread emulates the
 * device when its guest accesses it, and the main thread feeds it host input.
 * The state lives in a SharedArrayBuffer (Int32 cells + a byte area) and every
 * access runs under the device's lock, like Firecracker's Mutex-wrapped devices.
 */

const LOCK = 0;
const UNLOCKED = 0;
const LOCKED = 1;
/** Locked, and a thread may be asleep in Atomics.wait on it: unlock() must notify (a futex mutex, as glibc's). */
const CONTENDED = 2;
/** Failed attempts before a waiter sleeps: critical sections are a few register updates. */
const SPINS = 100;

export class SharedState {
  readonly cells: Int32Array;
  readonly bytes: Uint8Array;

  /** `ncells` Int32 cells (cell 0 is the lock) followed by `nbytes` bytes. */
  constructor(readonly sab: SharedArrayBuffer, ncells: number, nbytes: number) {
    if (sab.byteLength < (ncells + 1) * 4 + nbytes) throw new Error('shared device state buffer is too small');
    this.cells = new Int32Array(sab, 0, ncells + 1);
    this.bytes = new Uint8Array(sab, (ncells + 1) * 4, nbytes);
  }

  static allocate(ncells: number, nbytes: number): SharedArrayBuffer {
    return new SharedArrayBuffer((ncells + 1) * 4 + nbytes);
  }

  /** Runs `fn` holding the lock. */
  locked<T>(fn: () => T): T {
    this.lock();
    try {
      return fn();
    } finally {
      this.unlock();
    }
  }

  /**
   * Takes the lock; pair it with unlock() in a finally. For per-exit paths,
   * where locked(fn) would cost a closure per access. Critical sections are a
   * few register updates, so waiters spin briefly, then sleep.
   */
  lock(): void {
    const c = this.cells;
    if (Atomics.compareExchange(c, LOCK, UNLOCKED, LOCKED) === UNLOCKED) return;
    for (let i = 0; i < SPINS; i++) {
      if (Atomics.compareExchange(c, LOCK, UNLOCKED, LOCKED) === UNLOCKED) return;
    }
    // Sleep, marking the lock CONTENDED so the holder wakes us. Having taken it
    // that way, we keep the mark: another waiter may still sleep.
    while (Atomics.exchange(c, LOCK, CONTENDED) !== UNLOCKED) Atomics.wait(c, LOCK, CONTENDED);
  }

  unlock(): void {
    // Atomics.notify is the costly part of an uncontended unlock: only when someone may sleep.
    if (Atomics.exchange(this.cells, LOCK, UNLOCKED) === CONTENDED) Atomics.notify(this.cells, LOCK, 1);
  }

  /** Cell i (1-based: cell 0 is the lock). */
  get(i: number): number {
    return this.cells[i + 1]!;
  }

  set(i: number, v: number): void {
    this.cells[i + 1] = v;
  }

  add(i: number, d = 1): void {
    this.cells[i + 1] = (this.cells[i + 1]! + d) | 0;
  }
}
