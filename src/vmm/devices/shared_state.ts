/**
 * Device state that several threads touch: each vCPU thread emulates the
 * device when its guest accesses it, and the main thread feeds it host input.
 * The state lives in a SharedArrayBuffer (Int32 cells + a byte area) and every
 * access runs under the device's lock, like Firecracker's Mutex-wrapped devices.
 */

const LOCK = 0;
const UNLOCKED = 0;
const LOCKED = 1;

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

  /** Runs `fn` holding the lock. Critical sections are a few register updates, so waiters spin briefly, then sleep. */
  locked<T>(fn: () => T): T {
    const c = this.cells;
    let spins = 0;
    while (Atomics.compareExchange(c, LOCK, UNLOCKED, LOCKED) !== UNLOCKED) {
      if (++spins > 100) Atomics.wait(c, LOCK, LOCKED, 1);
    }
    try {
      return fn();
    } finally {
      Atomics.store(c, LOCK, UNLOCKED);
      Atomics.notify(c, LOCK, 1);
    }
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
