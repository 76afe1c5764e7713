/**
 * Firecracker's boot timer: the guest's init writes the magic byte 123 at
 * BOOT_TIMER_ADDR and the VMM logs how long the boot took, wall and CPU time,
 * since the process started (or since --start-time-us/--start-time-cpu-us).
 */
import type { BusDevice } from '../bus.js';

/** The byte the guest writes (Firecracker's MAGIC_VALUE_SIGNAL_GUEST_BOOT_COMPLETE). */
export const BOOT_COMPLETE_MAGIC = 123;

export interface BootTimes { wallUs: number; cpuUs: number }

export class BootTimer implements BusDevice {
  private done = false;

  constructor(
    private readonly startWallUs: bigint,
    private readonly startCpuUs: number,
    private readonly report: (t: BootTimes) => void,
  ) {}

  read(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }

  write(offset: number, data: Uint8Array): void {
    if (offset !== 0 || data.byteLength !== 1 || data[0] !== BOOT_COMPLETE_MAGIC || this.done) return;
    this.done = true;
    const wallUs = Number(process.hrtime.bigint() / 1000n - this.startWallUs);
    const cpu = process.cpuUsage();
    this.report({ wallUs, cpuUs: cpu.user + cpu.system - this.startCpuUs });
  }
}

/** Firecracker's log line: "Guest-boot-time = {:>6} us {} ms, {:>6} CPU us {} CPU ms". */
export function formatBootTime(t: BootTimes): string {
  const pad = (n: number): string => String(n).padStart(6, ' ');
  return `Guest-boot-time = ${pad(t.wallUs)} us ${Math.floor(t.wallUs / 1000)} ms, ${pad(t.cpuUs)} CPU us ${Math.floor(t.cpuUs / 1000)} CPU ms`;
}
