/**
 * A vCPU and its run loop.
 *
 * KVM_RUN is issued asynchronously (koffi on the libuv thread pool), so each
 * vCPU blocks in the kernel on a thread of its own while the main thread stays
 * free for the API, stdin and device events. Exits come back to the main
 * thread, which dispatches them to the PIO/MMIO buses and re-enters the guest.
 * All device models therefore run on one thread and need no locks.
 */
import { KVM, KVM_EXIT, KVM_EXIT_IO_OUT, KVM_EXIT_NAMES, KVM_RUN_OFFSET, KVM_SYSTEM_EVENT } from '../../generated/kvm.js';
import { EAGAIN, EINTR } from '../../generated/libc.js';
import { SysError } from '../../sys/libc.js';
import type { VcpuFd } from '../../kvm/vcpu_fd.js';
import type { Bus } from '../devices/bus.js';
import { signalThreads, threadsInIoctl } from './kick.js';

/** How a vCPU's run loop ended. `exitCode` follows Firecracker's FcExitCode. */
export interface VcpuStop {
  reason: 'stopped' | 'shutdown' | 'reset' | 'error';
  exitCode: number;
  message: string;
}

export interface VcpuMetrics {
  exit_io_in: number;
  exit_io_out: number;
  exit_mmio_read: number;
  exit_mmio_write: number;
  failures: number;
}

const EXIT_OK = 0;
const EXIT_GENERIC_ERROR = 1;

/** What an unclaimed PIO read returns: a floating ISA bus reads all ones. */
const UNCLAIMED_PIO_BYTE = 0xff;

export class Vcpu {
  private running = false;
  private stopRequested = false;
  private pauseRequested = false;
  private resumeWaiter: (() => void) | undefined;
  private pausedNotify: (() => void) | undefined;
  readonly metrics: VcpuMetrics = { exit_io_in: 0, exit_io_out: 0, exit_mmio_read: 0, exit_mmio_write: 0, failures: 0 };

  constructor(
    readonly fd: VcpuFd,
    private readonly pio: Bus,
    private readonly mmio: Bus,
    private readonly warn: (msg: string) => void = () => undefined,
  ) {}

  get id(): number {
    return this.fd.id;
  }

  /** True while KVM_RUN is in flight on a pool thread. */
  get isRunning(): boolean {
    return this.running;
  }

  /** Runs the guest until it stops; resolves with why. Never rejects. */
  async run(): Promise<VcpuStop> {
    for (;;) {
      if (this.stopRequested) return { reason: 'stopped', exitCode: EXIT_OK, message: `vCPU ${this.id} stopped` };
      if (this.pauseRequested) {
        await this.parked();
        continue;
      }
      this.running = true;
      const { ret, errno } = await this.fd.runAsync();
      this.running = false;
      if (ret < 0) {
        if (errno === EINTR || errno === EAGAIN) {
          this.fd.immediateExit = false;
          continue;
        }
        this.metrics.failures++;
        return { reason: 'error', exitCode: EXIT_GENERIC_ERROR, message: `vCPU ${this.id}: ${new SysError('KVM_RUN', errno).message}` };
      }
      const stop = this.handleExit();
      if (stop) return stop;
    }
  }

  private parked(): Promise<void> {
    this.pausedNotify?.();
    this.pausedNotify = undefined;
    return new Promise((resolve) => {
      this.resumeWaiter = resolve;
    });
  }

  /** Handles one exit; returns a stop reason when the loop must end. */
  private handleExit(): VcpuStop | undefined {
    const run = this.fd.run;
    const reason = run.getUint32(KVM_RUN_OFFSET.exit_reason, true);
    switch (reason) {
      case KVM_EXIT.IO: {
        const out = run.getUint8(KVM_RUN_OFFSET.io_direction) === KVM_EXIT_IO_OUT;
        const size = run.getUint8(KVM_RUN_OFFSET.io_size);
        const port = run.getUint16(KVM_RUN_OFFSET.io_port, true);
        const count = run.getUint32(KVM_RUN_OFFSET.io_count, true);
        const base = Number(run.getBigUint64(KVM_RUN_OFFSET.io_data_offset, true));
        for (let i = 0; i < count; i++) {
          const data = this.fd.runBytes.subarray(base + i * size, base + (i + 1) * size);
          if (out) {
            this.metrics.exit_io_out++;
            this.pio.write(port, data);
          } else {
            this.metrics.exit_io_in++;
            if (!this.pio.read(port, data)) data.fill(UNCLAIMED_PIO_BYTE);
          }
        }
        return undefined;
      }
      case KVM_EXIT.MMIO: {
        const addr = Number(run.getBigUint64(KVM_RUN_OFFSET.mmio_phys_addr, true));
        const len = Math.min(8, run.getUint32(KVM_RUN_OFFSET.mmio_len, true));
        const data = this.fd.runBytes.subarray(KVM_RUN_OFFSET.mmio_data, KVM_RUN_OFFSET.mmio_data + len);
        if (run.getUint8(KVM_RUN_OFFSET.mmio_is_write)) {
          this.metrics.exit_mmio_write++;
          this.mmio.write(addr, data);
        } else {
          this.metrics.exit_mmio_read++;
          if (!this.mmio.read(addr, data)) data.fill(0);
        }
        return undefined;
      }
      case KVM_EXIT.INTR:
        return undefined;
      case KVM_EXIT.HLT:
        return { reason: 'shutdown', exitCode: EXIT_OK, message: `vCPU ${this.id} halted (KVM_EXIT_HLT)` };
      case KVM_EXIT.SHUTDOWN:
        // A triple fault: what a guest booted with reboot=t does to reboot. Firecracker treats it as a stop.
        return { reason: 'shutdown', exitCode: EXIT_OK, message: `vCPU ${this.id} received KVM_EXIT_SHUTDOWN (guest triple fault or shutdown)` };
      case KVM_EXIT.SYSTEM_EVENT: {
        const type = run.getUint32(KVM_RUN_OFFSET.system_event_type, true);
        if (type === KVM_SYSTEM_EVENT.SHUTDOWN || type === KVM_SYSTEM_EVENT.RESET) {
          return { reason: type === KVM_SYSTEM_EVENT.RESET ? 'reset' : 'shutdown', exitCode: EXIT_OK, message: `vCPU ${this.id} received KVM_EXIT_SYSTEM_EVENT type ${type}` };
        }
        this.metrics.failures++;
        return { reason: 'error', exitCode: EXIT_GENERIC_ERROR, message: `vCPU ${this.id}: guest crashed (KVM_EXIT_SYSTEM_EVENT type ${type})` };
      }
      case KVM_EXIT.INTERNAL_ERROR: {
        this.metrics.failures++;
        const sub = run.getUint32(KVM_RUN_OFFSET.internal_suberror, true);
        const n = Math.min(16, run.getUint32(KVM_RUN_OFFSET.internal_ndata, true));
        const data = Array.from({ length: n }, (_, i) => `0x${run.getBigUint64(KVM_RUN_OFFSET.internal_data + i * 8, true).toString(16)}`);
        const rip = this.safeRip();
        return {
          reason: 'error', exitCode: EXIT_GENERIC_ERROR,
          message: `vCPU ${this.id}: KVM_EXIT_INTERNAL_ERROR suberror ${sub}${sub === 1 ? ' (instruction emulation failed)' : ''}${rip}${data.length ? `, data [${data.join(', ')}]` : ''}`,
        };
      }
      case KVM_EXIT.FAIL_ENTRY: {
        this.metrics.failures++;
        const hw = run.getBigUint64(KVM_RUN_OFFSET.fail_entry_reason, true);
        return { reason: 'error', exitCode: EXIT_GENERIC_ERROR, message: `vCPU ${this.id}: KVM_EXIT_FAIL_ENTRY, hardware entry failure reason 0x${hw.toString(16)}` };
      }
      default:
        this.metrics.failures++;
        return { reason: 'error', exitCode: EXIT_GENERIC_ERROR, message: `vCPU ${this.id}: unexpected exit ${KVM_EXIT_NAMES[reason] ?? reason}` };
    }
  }

  private safeRip(): string {
    try {
      return ` at rip 0x${this.fd.getRegs().rip.toString(16)}`;
    } catch {
      return '';
    }
  }

  /** Forces the vCPU out of KVM_RUN; resolves once it is out (or after `timeoutMs`). Returns whether it left. */
  async kick(timeoutMs = 2000): Promise<boolean> {
    this.fd.immediateExit = true;
    const deadline = Date.now() + timeoutMs;
    let delay = 1;
    while (this.running) {
      signalThreads(threadsInIoctl(this.fd.fd, KVM.RUN));
      if (Date.now() > deadline) {
        this.warn(`vCPU ${this.id} did not leave KVM_RUN within ${timeoutMs} ms`);
        return false;
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 50);
    }
    return true;
  }

  /** Ends the run loop. */
  async stop(timeoutMs?: number): Promise<boolean> {
    this.stopRequested = true;
    return this.kick(timeoutMs);
  }

  /** Parks the vCPU outside KVM_RUN; resolves once it is parked. */
  async pause(): Promise<void> {
    if (this.pauseRequested) return;
    this.pauseRequested = true;
    const parked = new Promise<void>((resolve) => {
      this.pausedNotify = resolve;
    });
    await this.kick();
    if (this.resumeWaiter) return; // already parked
    await parked;
  }

  resume(): void {
    this.pauseRequested = false;
    const w = this.resumeWaiter;
    this.resumeWaiter = undefined;
    w?.();
  }

  close(): void {
    this.fd.close();
  }
}
