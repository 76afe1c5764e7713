/**
 * A 16550A UART as Linux's 8250 driver sees it: divisor latch, IER/IIR with
 * THRE and RDA interrupts, loopback (the driver's probe checks it), a 64-byte
 * receive FIFO. Output goes to a sink; input comes from `enqueueInput`.
 */
import type { BusDevice } from '../../bus.js';
import type { IrqTrigger } from '../../irq.js';
import { newSerialMetrics, type SerialMetrics } from './metrics.js';
import {
  DEFAULT_BAUD_DIVISOR, FIFO_SIZE, IER_MASK, IER_RDA, IER_THRE, IIR_FIFO_BITS, IIR_NONE, IIR_RDA, IIR_THRE,
  LCR_DLAB, LSR_DR, LSR_TEMT, LSR_THRE, MCR_DTR, MCR_LOOP, MCR_OUT1, MCR_OUT2, MCR_RTS,
  MSR_CTS, MSR_DCD, MSR_DSR, MSR_RI, REG,
} from './registers.js';

export type SerialSink = (byte: number) => void;

export class Serial implements BusDevice {
  private divisorLow = DEFAULT_BAUD_DIVISOR;
  private divisorHigh = 0;
  private ier = 0;
  private iir = IIR_NONE;
  private lcr = 0x03; // 8 data bits, 1 stop bit, no parity
  private mcr = MCR_OUT2;
  private scr = 0;
  private readonly fifo: number[] = [];
  /** Host input that did not fit in the FIFO yet; fed in as the guest drains it. */
  private readonly pending: number[] = [];
  readonly metrics: SerialMetrics = newSerialMetrics();

  constructor(private readonly irq: IrqTrigger, private readonly sink: SerialSink) {}

  /** Host → guest bytes (stdin). */
  enqueueInput(bytes: Uint8Array): void {
    for (const b of bytes) this.pending.push(b);
    this.refillFifo();
  }

  /** Bytes the guest has not read yet (FIFO + pending). */
  get inputBacklog(): number {
    return this.fifo.length + this.pending.length;
  }

  private refillFifo(): void {
    const before = this.fifo.length;
    while (this.fifo.length < FIFO_SIZE && this.pending.length) this.fifo.push(this.pending.shift()!);
    if (before === 0 && this.fifo.length > 0) this.receivedDataInterrupt();
  }

  private get dlab(): boolean {
    return (this.lcr & LCR_DLAB) !== 0;
  }

  private get loopback(): boolean {
    return (this.mcr & MCR_LOOP) !== 0;
  }

  private raise(): void {
    try {
      this.irq.trigger();
    } catch {
      this.metrics.error_count++;
    }
  }

  private thrEmptyInterrupt(): void {
    if ((this.ier & IER_THRE) && this.iir !== IIR_RDA) {
      this.iir = IIR_THRE;
      this.raise();
    }
  }

  private receivedDataInterrupt(): void {
    if (this.ier & IER_RDA) {
      this.iir = IIR_RDA;
      this.raise();
    }
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    data[0] = this.readReg(offset);
  }

  write(offset: number, data: Uint8Array): void {
    this.writeReg(offset, data[0] ?? 0);
  }

  private readReg(offset: number): number {
    switch (offset) {
      case REG.DATA: {
        if (this.dlab) return this.divisorLow;
        this.metrics.read_count++;
        const b = this.fifo.shift();
        if (b === undefined) {
          this.metrics.missed_read_count++;
          return 0;
        }
        if (this.fifo.length === 0) {
          if (this.iir === IIR_RDA) this.iir = IIR_NONE;
          this.refillFifo();
          if (this.fifo.length === 0) this.thrEmptyInterrupt();
        }
        return b;
      }
      case REG.IER:
        return this.dlab ? this.divisorHigh : this.ier;
      case REG.IIR: {
        const v = this.iir | IIR_FIFO_BITS;
        // Reading IIR acknowledges a THRE interrupt (16550 §8.6).
        if (this.iir === IIR_THRE) this.iir = IIR_NONE;
        return v;
      }
      case REG.LCR:
        return this.lcr;
      case REG.MCR:
        return this.mcr;
      case REG.LSR:
        return LSR_THRE | LSR_TEMT | (this.fifo.length ? LSR_DR : 0);
      case REG.MSR:
        if (this.loopback) {
          return (this.mcr & MCR_RTS ? MSR_CTS : 0) | (this.mcr & MCR_DTR ? MSR_DSR : 0)
            | (this.mcr & MCR_OUT1 ? MSR_RI : 0) | (this.mcr & MCR_OUT2 ? MSR_DCD : 0);
        }
        return MSR_DCD | MSR_DSR | MSR_CTS;
      case REG.SCR:
        return this.scr;
      default:
        return 0;
    }
  }

  private writeReg(offset: number, v: number): void {
    switch (offset) {
      case REG.DATA:
        if (this.dlab) {
          this.divisorLow = v;
          return;
        }
        if (this.loopback) {
          if (this.fifo.length < FIFO_SIZE) {
            this.fifo.push(v);
            this.receivedDataInterrupt();
          }
        } else {
          this.metrics.write_count++;
          try {
            this.sink(v);
          } catch {
            this.metrics.missed_write_count++;
          }
        }
        this.thrEmptyInterrupt();
        return;
      case REG.IER:
        if (this.dlab) {
          this.divisorHigh = v;
          return;
        }
        this.ier = v & IER_MASK;
        // The transmitter is always empty here, so enabling THRE interrupts raises one at once;
        // Linux's 8250 driver relies on this to start transmitting.
        this.thrEmptyInterrupt();
        if ((this.ier & IER_RDA) && this.fifo.length) this.receivedDataInterrupt();
        return;
      case REG.LCR:
        this.lcr = v;
        return;
      case REG.MCR:
        this.mcr = v;
        return;
      case REG.SCR:
        this.scr = v;
        return;
      default:
        // FCR, LSR and MSR writes have no effect on an emulated line.
        return;
    }
  }
}
