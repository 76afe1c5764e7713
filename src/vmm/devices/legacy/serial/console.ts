/**
 * Host stdin → the guest's UART, on the main thread. A terminal stdin is put
 * in raw mode so keys reach the guest unprocessed (restored at exit). Input
 * the UART cannot take yet waits here and is offered again shortly, so a
 * large paste is delivered, not dropped. (Output: see consoleSink.)
 */
import type { Serial } from './serial.js';

/** How often to retry handing over input the guest has not drained, ms. */
const RETRY_MS = 10;

export class SerialConsole {
  private rawMode = false;
  private pending: Uint8Array = new Uint8Array(0);
  private timer: NodeJS.Timeout | undefined;
  private readonly onData = (chunk: Buffer): void => {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.deliver();
  };

  constructor(private readonly serial: Serial, private readonly stdin: NodeJS.ReadStream = process.stdin) {}

  private deliver(): void {
    const taken = this.serial.enqueueInput(this.pending);
    this.pending = this.pending.subarray(taken);
    if (this.pending.length && !this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.deliver();
      }, RETRY_MS);
    }
  }

  attach(): void {
    if (this.stdin.isTTY) {
      this.stdin.setRawMode(true);
      this.rawMode = true;
    }
    this.stdin.on('data', this.onData);
    this.stdin.on('error', () => undefined);
    this.stdin.resume();
  }

  detach(): void {
    if (this.timer) clearTimeout(this.timer);
    this.stdin.off('data', this.onData);
    if (this.rawMode) {
      this.stdin.setRawMode(false);
      this.rawMode = false;
    }
    this.stdin.pause();
    this.stdin.unref?.();
  }
}
