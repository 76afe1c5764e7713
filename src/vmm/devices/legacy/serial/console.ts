/**
 * Wires the UART to the VMM process's stdout/stdin. Output is batched and
 * written once per event-loop turn so a guest printing a line costs one
 * write(2), not one per character. A terminal stdin is put in raw mode so
 * keys reach the guest unprocessed (and restored at exit).
 */
import fs from 'node:fs';
import type { Serial } from './serial.js';

export class SerialConsole {
  private out: number[] = [];
  private flushScheduled = false;
  private rawMode = false;
  private onData = (chunk: Buffer): void => this.serial?.enqueueInput(chunk);
  private serial: Serial | undefined;

  constructor(private readonly outFd = 1) {}

  /** The sink handed to Serial. */
  readonly sink = (byte: number): void => {
    this.out.push(byte);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  };

  flush(): void {
    this.flushScheduled = false;
    if (!this.out.length) return;
    const buf = Buffer.from(this.out);
    this.out = [];
    try {
      fs.writeSync(this.outFd, buf);
    } catch {
      // stdout closed (e.g. a pipe reader went away): the guest keeps running.
    }
  }

  attachInput(serial: Serial, stdin: NodeJS.ReadStream = process.stdin): void {
    this.serial = serial;
    if (stdin.isTTY) {
      stdin.setRawMode(true);
      this.rawMode = true;
    }
    stdin.on('data', this.onData);
    stdin.on('error', () => undefined);
    stdin.resume();
  }

  detach(stdin: NodeJS.ReadStream = process.stdin): void {
    this.flush();
    stdin.off('data', this.onData);
    if (this.rawMode) {
      stdin.setRawMode(false);
      this.rawMode = false;
    }
    stdin.pause();
    stdin.unref?.();
  }
}
