/**
 * A 16550A UART as Linux's 8250 driver sees it: divisor latch, IER/IIR with
 * THRE and RDA interrupts, loopback (the driver's probe checks it), a receive
 * FIFO. Output goes to a sink; input comes from `enqueueInput`.
 *
 * The registers live in shared memory (SharedState) so that whichever vCPU
 * thread traps the access emulates it, while the main thread feeds stdin.
 */
import type { BusDevice } from '../../bus.js';
import type { IrqTrigger } from '../../irq.js';
import { SharedState } from '../../shared_state.js';
import type { SerialMetrics } from './metrics.js';
import {
  DEFAULT_BAUD_DIVISOR, IER_MASK, IER_RDA, IER_THRE, IIR_FIFO_BITS, IIR_NONE, IIR_RDA, IIR_THRE,
  LCR_DLAB, LSR_DR, LSR_TEMT, LSR_THRE, MCR_DTR, MCR_LOOP, MCR_OUT1, MCR_OUT2, MCR_RTS,
  MSR_CTS, MSR_DCD, MSR_DSR, MSR_RI, REG,
} from './registers.js';

export type SerialSink = (byte: number) => void;

/** Shared cells, by index. */
const C = {
  DLL: 0, DLM: 1, IER: 2, IIR: 3, LCR: 4, MCR: 5, SCR: 6, RX_HEAD: 7, RX_TAIL: 8,
  M_ERROR: 9, M_FLUSH: 10, M_MISSED_READ: 11, M_MISSED_WRITE: 12, M_READ: 13, M_WRITE: 14,
} as const;
const NCELLS = 15;
/**
 * Receive buffer. The guest sees a 16550's FIFO (LSR.DR while it holds data);
 * a deeper buffer only means pasted input is not dropped while the guest is slow.
 */
export const RX_CAPACITY = 4096;

export class Serial implements BusDevice {
  private readonly s: SharedState;

  /** `shared`: the state buffer of an existing UART (another thread's view of the same device). */
  constructor(private readonly irq: IrqTrigger, private readonly sink: SerialSink, shared?: SharedArrayBuffer) {
    this.s = new SharedState(shared ?? SharedState.allocate(NCELLS, RX_CAPACITY), NCELLS, RX_CAPACITY);
    if (!shared) {
      this.s.set(C.DLL, DEFAULT_BAUD_DIVISOR);
      this.s.set(C.IIR, IIR_NONE);
      this.s.set(C.LCR, 0x03); // 8 data bits, 1 stop bit, no parity
      this.s.set(C.MCR, MCR_OUT2);
    }
  }

  /** The shared state, to build this device's view on another thread. */
  get sharedState(): SharedArrayBuffer {
    return this.s.sab;
  }

  get metrics(): SerialMetrics {
    const s = this.s;
    return {
      error_count: s.get(C.M_ERROR), flush_count: s.get(C.M_FLUSH), missed_read_count: s.get(C.M_MISSED_READ),
      missed_write_count: s.get(C.M_MISSED_WRITE), read_count: s.get(C.M_READ), write_count: s.get(C.M_WRITE),
    };
  }

  private get rxCount(): number {
    return this.s.get(C.RX_TAIL) - this.s.get(C.RX_HEAD);
  }

  private rxPush(b: number): boolean {
    if (this.rxCount >= RX_CAPACITY) return false;
    const tail = this.s.get(C.RX_TAIL);
    this.s.bytes[tail % RX_CAPACITY] = b;
    this.s.set(C.RX_TAIL, tail + 1);
    return true;
  }

  private rxPop(): number | undefined {
    if (this.rxCount === 0) return undefined;
    const head = this.s.get(C.RX_HEAD);
    const b = this.s.bytes[head % RX_CAPACITY]!;
    if (head + 1 === this.s.get(C.RX_TAIL)) {
      // Empty again: rewind so the indices never overflow.
      this.s.set(C.RX_HEAD, 0);
      this.s.set(C.RX_TAIL, 0);
    } else {
      this.s.set(C.RX_HEAD, head + 1);
    }
    return b;
  }

  /** Host → guest bytes (stdin). Returns how many were taken; the rest must be offered again later. */
  enqueueInput(bytes: Uint8Array): number {
    return this.s.locked(() => {
      const wasEmpty = this.rxCount === 0;
      let n = 0;
      while (n < bytes.length && this.rxPush(bytes[n]!)) n++;
      if (wasEmpty && n > 0) this.receivedDataInterrupt();
      return n;
    });
  }

  /** Bytes the guest has not read yet. */
  get inputBacklog(): number {
    return this.rxCount;
  }

  private get dlab(): boolean {
    return (this.s.get(C.LCR) & LCR_DLAB) !== 0;
  }

  private get loopback(): boolean {
    return (this.s.get(C.MCR) & MCR_LOOP) !== 0;
  }

  private raise(): void {
    try {
      this.irq.trigger();
    } catch {
      this.s.add(C.M_ERROR);
    }
  }

  /**
   * THR empty. One interrupt edge per THRE event the guest has not seen yet:
   * while IIR already shows THRE (not read since), the handler that edge
   * started finds it when it reads IIR. Linux writes up to 16 bytes (the
   * 16550A's FIFO) per THRE interrupt, each byte empties our transmitter at
   * once; an edge per byte made the handler run once per byte and cost an
   * eventfd write each.
   */
  private thrEmptyInterrupt(): void {
    const iir = this.s.get(C.IIR);
    if ((this.s.get(C.IER) & IER_THRE) && iir !== IIR_RDA) {
      this.s.set(C.IIR, IIR_THRE);
      if (iir !== IIR_THRE) this.raise();
    }
  }

  private receivedDataInterrupt(): void {
    if (this.s.get(C.IER) & IER_RDA) {
      this.s.set(C.IIR, IIR_RDA);
      this.raise();
    }
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    data[0] = this.s.locked(() => this.readReg(offset));
  }

  write(offset: number, data: Uint8Array): void {
    const out = this.s.locked(() => this.writeReg(offset, data[0] ?? 0));
    // The sink (a write(2) to stdout) runs outside the lock.
    if (out !== undefined) {
      try {
        this.sink(out);
      } catch {
        this.s.add(C.M_MISSED_WRITE);
      }
    }
  }

  private readReg(offset: number): number {
    const s = this.s;
    switch (offset) {
      case REG.DATA: {
        if (this.dlab) return s.get(C.DLL);
        s.add(C.M_READ);
        const b = this.rxPop();
        if (b === undefined) {
          s.add(C.M_MISSED_READ);
          return 0;
        }
        if (this.rxCount === 0) {
          if (s.get(C.IIR) === IIR_RDA) s.set(C.IIR, IIR_NONE);
          this.thrEmptyInterrupt();
        }
        return b;
      }
      case REG.IER:
        return this.dlab ? s.get(C.DLM) : s.get(C.IER);
      case REG.IIR: {
        const iir = s.get(C.IIR);
        // Reading IIR acknowledges a THRE interrupt (16550 datasheet, "FIFO interrupt mode").
        if (iir === IIR_THRE) s.set(C.IIR, IIR_NONE);
        return iir | IIR_FIFO_BITS;
      }
      case REG.LCR:
        return s.get(C.LCR);
      case REG.MCR:
        return s.get(C.MCR);
      case REG.LSR:
        return LSR_THRE | LSR_TEMT | (this.rxCount ? LSR_DR : 0);
      case REG.MSR: {
        const mcr = s.get(C.MCR);
        if (this.loopback) {
          return (mcr & MCR_RTS ? MSR_CTS : 0) | (mcr & MCR_DTR ? MSR_DSR : 0)
            | (mcr & MCR_OUT1 ? MSR_RI : 0) | (mcr & MCR_OUT2 ? MSR_DCD : 0);
        }
        return MSR_DCD | MSR_DSR | MSR_CTS;
      }
      case REG.SCR:
        return s.get(C.SCR);
      default:
        return 0;
    }
  }

  /** Returns a byte to send to the sink, if the write transmitted one. */
  private writeReg(offset: number, v: number): number | undefined {
    const s = this.s;
    switch (offset) {
      case REG.DATA: {
        if (this.dlab) {
          s.set(C.DLL, v);
          return undefined;
        }
        let out: number | undefined;
        if (this.loopback) {
          if (this.rxPush(v)) this.receivedDataInterrupt();
        } else {
          s.add(C.M_WRITE);
          out = v;
        }
        this.thrEmptyInterrupt();
        return out;
      }
      case REG.IER:
        if (this.dlab) {
          s.set(C.DLM, v);
          return undefined;
        }
        s.set(C.IER, v & IER_MASK);
        // Disabling THRE interrupts withdraws a pending one, so enabling them again is a new event.
        if (!(v & IER_THRE) && s.get(C.IIR) === IIR_THRE) s.set(C.IIR, IIR_NONE);
        // The transmitter is always empty here, so enabling THRE interrupts raises one at once;
        // Linux's 8250 driver relies on this to start transmitting.
        this.thrEmptyInterrupt();
        if ((v & IER_RDA) && this.rxCount) this.receivedDataInterrupt();
        return undefined;
      case REG.LCR:
        s.set(C.LCR, v);
        return undefined;
      case REG.MCR:
        s.set(C.MCR, v);
        return undefined;
      case REG.SCR:
        s.set(C.SCR, v);
        return undefined;
      default:
        // FCR, LSR and MSR writes have no effect on an emulated line.
        return undefined;
    }
  }
}
