/**
 * The shared control block between the main thread and a vCPU thread: what
 * the main thread asks (run, pause, stop), what state the vCPU is in, the
 * vCPU thread's tid (the target of kicks) and its exit counters.
 */
import { VCPU_METRICS, type VcpuMetricName } from './vcpu_exit.js';

export const REQUEST = { RUN: 0, PAUSE: 1, STOP: 2 } as const;
export const STATE = { STARTING: 0, RUNNING: 1, PAUSED: 2, EXITED: 3 } as const;

const I_REQUEST = 0;
const I_STATE = 1;
const I_TID = 2;
const I_METRICS = 3;
/** Cell of each exit counter (counted on every exit: no search by name there). */
const METRIC_CELL = Object.fromEntries(VCPU_METRICS.map((m, i) => [m, I_METRICS + i])) as Record<VcpuMetricName, number>;

export class VcpuControl {
  readonly cells: Int32Array;

  constructor(readonly sab: SharedArrayBuffer = new SharedArrayBuffer((I_METRICS + VCPU_METRICS.length) * 4)) {
    this.cells = new Int32Array(sab);
  }

  get request(): number { return Atomics.load(this.cells, I_REQUEST); }
  set request(v: number) {
    Atomics.store(this.cells, I_REQUEST, v);
    Atomics.notify(this.cells, I_REQUEST);
  }
  get state(): number { return Atomics.load(this.cells, I_STATE); }
  set state(v: number) {
    Atomics.store(this.cells, I_STATE, v);
    Atomics.notify(this.cells, I_STATE);
  }
  get tid(): number { return Atomics.load(this.cells, I_TID); }
  set tid(v: number) { Atomics.store(this.cells, I_TID, v); }

  /** Blocks the calling (vCPU) thread while the request is still `value`. */
  waitWhileRequest(value: number): void {
    Atomics.wait(this.cells, I_REQUEST, value);
  }

  /** The cell of counter `m`: the vCPU thread's exit handler counts into it, the only writer. */
  metricCell(m: VcpuMetricName): number {
    return METRIC_CELL[m];
  }

  metrics(): Record<VcpuMetricName, number> {
    return Object.fromEntries(VCPU_METRICS.map((m, i) => [m, Atomics.load(this.cells, I_METRICS + i)])) as Record<VcpuMetricName, number>;
  }
}
