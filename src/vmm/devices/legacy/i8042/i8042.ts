/**
 * The i8042 keyboard controller, as much of it as a microVM needs: the
 * controller commands Linux's i8042 driver issues while probing, the CPU reset
 * line (command 0xfe: how `reboot` ends a guest with reboot=k), and a
 * keyboard that can type Ctrl-Alt-Del (the API's SendCtrlAltDel).
 */
import type { BusDevice } from '../../bus.js';
import type { IrqTrigger } from '../../irq.js';

/** Port offsets from 0x60: data at +0, status/command at +4. */
export const I8042_DATA_OFFSET = 0;
export const I8042_COMMAND_OFFSET = 4;
export const I8042_PORTS = 5;

// Status register bits.
const SB_OUT_DATA_AVAIL = 0x01;
const SB_I8042_CMD_DATA = 0x08; // last write was a command
const SB_KBD_ENABLED = 0x10;

// Controller commands (IBM PC/AT technical reference).
const CMD_READ_CTR = 0x20;
const CMD_WRITE_CTR = 0x60;
const CMD_READ_OUTP = 0xd0;
const CMD_WRITE_OUTP = 0xd1;
const CMD_SELF_TEST = 0xaa;
const CMD_KBD_TEST = 0xab;
const CMD_KBD_DISABLE = 0xad;
const CMD_KBD_ENABLE = 0xae;
const CMD_RESET_CPU = 0xfe;

// Controller configuration byte bits.
const CTR_KBD_INT = 0x01;
const CTR_KBD_DISABLE = 0x10;

// Keyboard replies.
const KBD_ACK = 0xfa;
const SELF_TEST_OK = 0x55;
const INTERFACE_TEST_OK = 0x00;

/** Ctrl, Alt, Del make and break codes in scancode set 2 (Linux's i8042 translates off). */
const CTRL_ALT_DEL = [0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14];

const BUFFER_SIZE = 16;

export interface I8042Metrics {
  error_count: number;
  missed_read_count: number;
  missed_write_count: number;
  read_count: number;
  reset_count: number;
  write_count: number;
}

export class I8042 implements BusDevice {
  private status = SB_KBD_ENABLED;
  private control = CTR_KBD_INT;
  private outp = 0;
  private cmd = 0;
  private readonly buf: number[] = [];
  readonly metrics: I8042Metrics = { error_count: 0, missed_read_count: 0, missed_write_count: 0, read_count: 0, reset_count: 0, write_count: 0 };

  /** `onReset` is called when the guest pulses the CPU reset line. */
  constructor(private readonly kbdIrq: IrqTrigger, private readonly onReset: () => void) {}

  private push(b: number): boolean {
    if (this.buf.length >= BUFFER_SIZE) return false;
    this.buf.push(b);
    this.status |= SB_OUT_DATA_AVAIL;
    return true;
  }

  private triggerKbd(): void {
    if (this.control & CTR_KBD_INT) {
      try {
        this.kbdIrq.trigger();
      } catch {
        this.metrics.error_count++;
      }
    }
  }

  /** Types Ctrl-Alt-Del on the emulated keyboard; false when the buffer is full. */
  sendCtrlAltDel(): boolean {
    if (this.buf.length + CTRL_ALT_DEL.length > BUFFER_SIZE) return false;
    for (const b of CTRL_ALT_DEL) this.push(b);
    this.triggerKbd();
    return true;
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset === I8042_COMMAND_OFFSET) {
      data[0] = this.status;
      return;
    }
    if (offset !== I8042_DATA_OFFSET) {
      this.metrics.missed_read_count++;
      return;
    }
    const b = this.buf.shift();
    if (b === undefined) {
      this.metrics.missed_read_count++;
      return;
    }
    if (!this.buf.length) this.status &= ~SB_OUT_DATA_AVAIL;
    else this.triggerKbd(); // more data waiting: the driver reads one byte per interrupt
    this.metrics.read_count++;
    data[0] = b;
  }

  write(offset: number, data: Uint8Array): void {
    const v = data[0] ?? 0;
    if (offset === I8042_COMMAND_OFFSET) {
      this.writeCommand(v);
      return;
    }
    if (offset !== I8042_DATA_OFFSET) {
      this.metrics.missed_write_count++;
      return;
    }
    this.metrics.write_count++;
    if (this.status & SB_I8042_CMD_DATA) {
      // Data byte of a two-byte controller command.
      if (this.cmd === CMD_WRITE_CTR) this.control = v;
      else if (this.cmd === CMD_WRITE_OUTP) this.outp = v;
      this.status &= ~SB_I8042_CMD_DATA;
      this.cmd = 0;
      return;
    }
    // A byte for the keyboard itself: acknowledge every keyboard command.
    this.push(KBD_ACK);
    this.triggerKbd();
  }

  private writeCommand(v: number): void {
    switch (v) {
      case CMD_RESET_CPU:
        this.metrics.reset_count++;
        this.onReset();
        return;
      case CMD_READ_CTR:
        this.push(this.control);
        return;
      case CMD_WRITE_CTR:
      case CMD_WRITE_OUTP:
        this.status |= SB_I8042_CMD_DATA;
        this.cmd = v;
        return;
      case CMD_READ_OUTP:
        this.push(this.outp);
        return;
      case CMD_SELF_TEST:
        this.push(SELF_TEST_OK);
        return;
      case CMD_KBD_TEST:
        this.push(INTERFACE_TEST_OK);
        return;
      case CMD_KBD_DISABLE:
        this.control |= CTR_KBD_DISABLE;
        return;
      case CMD_KBD_ENABLE:
        this.control &= ~CTR_KBD_DISABLE;
        return;
      default:
        this.metrics.missed_write_count++;
        return;
    }
  }
}
