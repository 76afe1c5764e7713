/**
 * Decoding and handling one KVM exit: PIO and MMIO go to the buses, the rest
 * decide whether the vCPU goes on or stops (and with which Firecracker exit code).
 */
import { KVM_EXIT, KVM_EXIT_IO_OUT, KVM_EXIT_NAMES, KVM_RUN_OFFSET, KVM_SYSTEM_EVENT } from '../../generated/kvm.js';
import type { VcpuFd } from '../../kvm/vcpu_fd.js';
import type { Bus } from '../devices/bus.js';

/** How a vCPU's run loop ended. `exitCode` follows Firecracker's FcExitCode. */
export interface VcpuStop {
  reason: 'stopped' | 'shutdown' | 'reset' | 'error';
  exitCode: number;
  message: string;
}

/** Exit counters (Firecracker's `vcpu` metrics group), kept in shared memory. */
export const VCPU_METRICS = ['exit_io_in', 'exit_io_out', 'exit_mmio_read', 'exit_mmio_write', 'failures'] as const;
export type VcpuMetricName = (typeof VCPU_METRICS)[number];

/**
 * Where a vCPU's exit counters live (VcpuControl): one Int32 cell per metric.
 * Only the vCPU's own thread writes them.
 */
export interface ExitCounters {
  readonly cells: Int32Array;
  metricCell(m: VcpuMetricName): number;
}

export const EXIT_OK = 0;
export const EXIT_GENERIC_ERROR = 1;

/** What an unclaimed PIO read returns: a floating ISA bus reads all ones. */
const UNCLAIMED_PIO_BYTE = 0xff;

export class ExitHandler {
  /** kvm_run's mmio.data[0..len) for len 0..8, made once: a view per exit would be garbage per exit. */
  private readonly mmioData: Uint8Array[];
  private readonly cells: Int32Array;
  // The counters' cells, looked up once rather than by name per exit.
  private readonly cIoIn: number;
  private readonly cIoOut: number;
  private readonly cMmioRead: number;
  private readonly cMmioWrite: number;

  constructor(
    private readonly vcpu: VcpuFd,
    private readonly pio: Bus,
    private readonly mmio: Bus,
    private readonly counters: ExitCounters,
  ) {
    this.mmioData = Array.from({ length: 9 }, (_, len) => vcpu.runBytes.subarray(KVM_RUN_OFFSET.mmio_data, KVM_RUN_OFFSET.mmio_data + len));
    this.cells = counters.cells;
    this.cIoIn = counters.metricCell('exit_io_in');
    this.cIoOut = counters.metricCell('exit_io_out');
    this.cMmioRead = counters.metricCell('exit_mmio_read');
    this.cMmioWrite = counters.metricCell('exit_mmio_write');
  }

  /**
   * Counts into a cell. A plain increment, not Atomics.add: this thread is
   * the only writer, and readers (Atomics.load) cannot see a torn Int32.
   */
  private bump(cell: number): void {
    this.cells[cell] = (this.cells[cell]! + 1) | 0;
  }

  /** Counts a metric by name (the uncommon exits). */
  count(m: VcpuMetricName): void {
    this.bump(this.counters.metricCell(m));
  }

  /** Handles the exit KVM_RUN just returned; returns a stop reason when the loop must end. */
  handle(): VcpuStop | undefined {
    const run = this.vcpu.run;
    const id = this.vcpu.id;
    const reason = run.getUint32(KVM_RUN_OFFSET.exit_reason, true);
    switch (reason) {
      case KVM_EXIT.IO: {
        const out = run.getUint8(KVM_RUN_OFFSET.io_direction) === KVM_EXIT_IO_OUT;
        const size = run.getUint8(KVM_RUN_OFFSET.io_size);
        const port = run.getUint16(KVM_RUN_OFFSET.io_port, true);
        const count = run.getUint32(KVM_RUN_OFFSET.io_count, true);
        const base = Number(run.getBigUint64(KVM_RUN_OFFSET.io_data_offset, true));
        for (let i = 0; i < count; i++) {
          const data = this.vcpu.runBytes.subarray(base + i * size, base + (i + 1) * size);
          if (out) {
            this.bump(this.cIoOut);
            this.pio.write(port, data);
          } else {
            this.bump(this.cIoIn);
            if (!this.pio.read(port, data)) data.fill(UNCLAIMED_PIO_BYTE);
          }
        }
        return undefined;
      }
      case KVM_EXIT.MMIO: {
        // Two 32-bit halves rather than a BigInt: this runs on every MMIO exit.
        const addr = run.getUint32(KVM_RUN_OFFSET.mmio_phys_addr, true) + run.getUint32(KVM_RUN_OFFSET.mmio_phys_addr + 4, true) * 2 ** 32;
        const len = Math.min(8, run.getUint32(KVM_RUN_OFFSET.mmio_len, true));
        const data = this.mmioData[len]!;
        if (run.getUint8(KVM_RUN_OFFSET.mmio_is_write)) {
          this.bump(this.cMmioWrite);
          this.mmio.write(addr, data);
        } else {
          this.bump(this.cMmioRead);
          if (!this.mmio.read(addr, data)) {
            // Unclaimed: reads as 0. Two stores over all 8 bytes of mmio.data
            // (KVM copies back only len) rather than fill()'s builtin call.
            run.setUint32(KVM_RUN_OFFSET.mmio_data, 0, true);
            run.setUint32(KVM_RUN_OFFSET.mmio_data + 4, 0, true);
          }
        }
        return undefined;
      }
      case KVM_EXIT.INTR:
        return undefined;
      case KVM_EXIT.HLT:
        return { reason: 'shutdown', exitCode: EXIT_OK, message: `vCPU ${id} halted (KVM_EXIT_HLT)` };
      case KVM_EXIT.SHUTDOWN:
        // A triple fault: how a guest booted with reboot=t reboots. Firecracker treats it as a stop.
        return { reason: 'shutdown', exitCode: EXIT_OK, message: `vCPU ${id} received KVM_EXIT_SHUTDOWN (guest triple fault or shutdown)` };
      case KVM_EXIT.SYSTEM_EVENT: {
        const type = run.getUint32(KVM_RUN_OFFSET.system_event_type, true);
        if (type === KVM_SYSTEM_EVENT.SHUTDOWN || type === KVM_SYSTEM_EVENT.RESET) {
          return { reason: type === KVM_SYSTEM_EVENT.RESET ? 'reset' : 'shutdown', exitCode: EXIT_OK, message: `vCPU ${id} received KVM_EXIT_SYSTEM_EVENT type ${type}` };
        }
        return this.fail(`vCPU ${id}: guest crashed (KVM_EXIT_SYSTEM_EVENT type ${type})`);
      }
      case KVM_EXIT.INTERNAL_ERROR: {
        const sub = run.getUint32(KVM_RUN_OFFSET.internal_suberror, true);
        const n = Math.min(16, run.getUint32(KVM_RUN_OFFSET.internal_ndata, true));
        const data = Array.from({ length: n }, (_, i) => `0x${run.getBigUint64(KVM_RUN_OFFSET.internal_data + i * 8, true).toString(16)}`);
        return this.fail(`vCPU ${id}: KVM_EXIT_INTERNAL_ERROR suberror ${sub}${sub === 1 ? ' (instruction emulation failed)' : ''}${this.rip()}${data.length ? `, data [${data.join(', ')}]` : ''}`);
      }
      case KVM_EXIT.FAIL_ENTRY: {
        const hw = run.getBigUint64(KVM_RUN_OFFSET.fail_entry_reason, true);
        return this.fail(`vCPU ${id}: KVM_EXIT_FAIL_ENTRY, hardware entry failure reason 0x${hw.toString(16)}`);
      }
      default:
        return this.fail(`vCPU ${id}: unexpected exit ${KVM_EXIT_NAMES[reason] ?? reason}${this.rip()}`);
    }
  }

  private fail(message: string): VcpuStop {
    this.count('failures');
    return { reason: 'error', exitCode: EXIT_GENERIC_ERROR, message };
  }

  private rip(): string {
    try {
      return ` at rip 0x${this.vcpu.getRegs().rip.toString(16)}`;
    } catch {
      return '';
    }
  }
}
