/**
 * The i8042 keyboard controller, as much of it as a microVM needs: the
 * controller commands Linux's i8042 driver issues while probing, the CPU reset
 * line (command 0xfe: how `reboot` ends a guest with reboot=k), and a
 * keyboard that can type Ctrl-Alt-Del (the API's SendCtrlAltDel).
 */
import type { BusDevice } from '../../bus.js';
import type { IrqTrigger } from '../../irq.js';
import { SharedState } from '../../shared_state.js';

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

/** Shared cells, by index. */
const C = {
  STATUS: 0, CONTROL: 1, OUTP: 2, CMD: 3, BUF_HEAD: 4, BUF_LEN: 5,
  M_ERROR: 6, M_MISSED_READ: 7, M_MISSED_WRITE: 8, M_READ: 9, M_RESET: 10, M_WRITE: 11,
} as const;
const NCELLS = 12;

export interface I8042Metrics {
  error_count: number;
  missed_read_count: number;
  missed_write_count: number;
  read_count: number;
  reset_count: number;
  write_count: number;
}

/**
 * State lives in shared memory (SharedState): the vCPU thread that traps an
 * access emulates it, and the main thread can type Ctrl-Alt-Del.
 */
export class I8042 implements BusDevice {
  private readonly s: SharedState;

  /** `onReset` is called when the guest pulses the CPU reset line. `shared`: another thread's view of the same device. */
  constructor(private readonly kbdIrq: IrqTrigger, private readonly onReset: () => void, shared?: SharedArrayBuffer) {
    this.s = new SharedState(shared ?? SharedState.allocate(NCELLS, BUFFER_SIZE), NCELLS, BUFFER_SIZE);
    if (!shared) {
      this.s.set(C.STATUS, SB_KBD_ENABLED);
      this.s.set(C.CONTROL, CTR_KBD_INT);
    }
  }

  get sharedState(): SharedArrayBuffer {
    return this.s.sab;
  }

  get metrics(): I8042Metrics {
    const s = this.s;
    return {
      error_count: s.get(C.M_ERROR), missed_read_count: s.get(C.M_MISSED_READ), missed_write_count: s.get(C.M_MISSED_WRITE),
      read_count: s.get(C.M_READ), reset_count: s.get(C.M_RESET), write_count: s.get(C.M_WRITE),
    };
  }

  private push(b: number): boolean {
    const len = this.s.get(C.BUF_LEN);
    if (len >= BUFFER_SIZE) return false;
    this.s.bytes[(this.s.get(C.BUF_HEAD) + len) % BUFFER_SIZE] = b;
    this.s.set(C.BUF_LEN, len + 1);
    this.s.set(C.STATUS, this.s.get(C.STATUS) | SB_OUT_DATA_AVAIL);
    return true;
  }

  private pop(): number | undefined {
    const len = this.s.get(C.BUF_LEN);
    if (len === 0) return undefined;
    const head = this.s.get(C.BUF_HEAD);
    this.s.set(C.BUF_HEAD, (head + 1) % BUFFER_SIZE);
    this.s.set(C.BUF_LEN, len - 1);
    if (len === 1) this.s.set(C.STATUS, this.s.get(C.STATUS) & ~SB_OUT_DATA_AVAIL);
    return this.s.bytes[head]!;
  }

  private triggerKbd(): void {
    if (this.s.get(C.CONTROL) & CTR_KBD_INT) {
      try {
        this.kbdIrq.trigger();
      } catch {
        this.s.add(C.M_ERROR);
      }
    }
  }

  /** Types Ctrl-Alt-Del on the emulated keyboard; false when the buffer is full. */
  sendCtrlAltDel(): boolean {
    return this.s.locked(() => {
      if (this.s.get(C.BUF_LEN) + CTRL_ALT_DEL.length > BUFFER_SIZE) return false;
      for (const b of CTRL_ALT_DEL) this.push(b);
      this.triggerKbd();
      return true;
    });
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    data[0] = this.s.locked(() => this.readPort(offset));
  }

  private readPort(offset: number): number {
    if (offset === I8042_COMMAND_OFFSET) return this.s.get(C.STATUS);
    if (offset !== I8042_DATA_OFFSET) {
      this.s.add(C.M_MISSED_READ);
      return 0;
    }
    const b = this.pop();
    if (b === undefined) {
      this.s.add(C.M_MISSED_READ);
      return 0;
    }
    // More data waiting: the driver reads one byte per interrupt.
    if (this.s.get(C.BUF_LEN)) this.triggerKbd();
    this.s.add(C.M_READ);
    return b;
  }

  write(offset: number, data: Uint8Array): void {
    const reset = this.s.locked(() => this.writePort(offset, data[0] ?? 0));
    if (reset) this.onReset();
  }

  /** Returns true when the write asked for a CPU reset. */
  private writePort(offset: number, v: number): boolean {
    if (offset === I8042_COMMAND_OFFSET) return this.writeCommand(v);
    if (offset !== I8042_DATA_OFFSET) {
      this.s.add(C.M_MISSED_WRITE);
      return false;
    }
    this.s.add(C.M_WRITE);
    const status = this.s.get(C.STATUS);
    if (status & SB_I8042_CMD_DATA) {
      // Data byte of a two-byte controller command.
      const cmd = this.s.get(C.CMD);
      if (cmd === CMD_WRITE_CTR) this.s.set(C.CONTROL, v);
      else if (cmd === CMD_WRITE_OUTP) this.s.set(C.OUTP, v);
      this.s.set(C.STATUS, status & ~SB_I8042_CMD_DATA);
      this.s.set(C.CMD, 0);
      return false;
    }
    // A byte for the keyboard itself: acknowledge every keyboard command.
    this.push(KBD_ACK);
    this.triggerKbd();
    return false;
  }

  private writeCommand(v: number): boolean {
    const s = this.s;
    switch (v) {
      case CMD_RESET_CPU:
        s.add(C.M_RESET);
        return true;
      case CMD_READ_CTR:
        this.push(s.get(C.CONTROL));
        return false;
      case CMD_WRITE_CTR:
      case CMD_WRITE_OUTP:
        s.set(C.STATUS, s.get(C.STATUS) | SB_I8042_CMD_DATA);
        s.set(C.CMD, v);
        return false;
      case CMD_READ_OUTP:
        this.push(s.get(C.OUTP));
        return false;
      case CMD_SELF_TEST:
        this.push(SELF_TEST_OK);
        return false;
      case CMD_KBD_TEST:
        this.push(INTERFACE_TEST_OK);
        return false;
      case CMD_KBD_DISABLE:
        s.set(C.CONTROL, s.get(C.CONTROL) | CTR_KBD_DISABLE);
        return false;
      case CMD_KBD_ENABLE:
        s.set(C.CONTROL, s.get(C.CONTROL) & ~CTR_KBD_DISABLE);
        return false;
      default:
        s.add(C.M_MISSED_WRITE);
        return false;
    }
  }
}
