/** 8250/16550 UART register offsets and bits (National Semiconductor PC16550D datasheet). */

export const REG = {
  DATA: 0, // RBR (read) / THR (write); DLL when DLAB=1
  IER: 1, // interrupt enable; DLM when DLAB=1
  IIR: 2, // interrupt identification (read) / FCR (write)
  LCR: 3,
  MCR: 4,
  LSR: 5,
  MSR: 6,
  SCR: 7,
} as const;

/** Number of I/O ports the UART decodes. */
export const UART_PORTS = 8;

export const IER_RDA = 0x01; // received data available
export const IER_THRE = 0x02; // transmitter holding register empty
/** Only the four standard IER bits are writable. */
export const IER_MASK = 0x0f;

export const IIR_NONE = 0x01;
export const IIR_THRE = 0x02;
export const IIR_RDA = 0x04;
/** IIR bits 7:6 report the FIFOs as enabled (a 16550A). */
export const IIR_FIFO_BITS = 0xc0;

export const LCR_DLAB = 0x80;

export const MCR_DTR = 0x01;
export const MCR_RTS = 0x02;
export const MCR_OUT1 = 0x04;
export const MCR_OUT2 = 0x08;
export const MCR_LOOP = 0x10;

export const LSR_DR = 0x01; // data ready
export const LSR_THRE = 0x20; // THR empty
export const LSR_TEMT = 0x40; // transmitter empty

export const MSR_CTS = 0x10;
export const MSR_DSR = 0x20;
export const MSR_RI = 0x40;
export const MSR_DCD = 0x80;

/** Receive FIFO depth of a 16550A. */
export const FIFO_SIZE = 64;
/** Divisor for 9600 baud from the 1.8432 MHz clock; the reset value guests read back. */
export const DEFAULT_BAUD_DIVISOR = 12;
