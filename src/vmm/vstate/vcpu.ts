/**
 * The main thread's handle on a vCPU thread.
 *
 * Each vCPU runs in a worker thread of its own (vcpu_worker.ts) that blocks
 * in KVM_RUN and emulates its exits. The main thread stays free for stdin,
 * signals and the API, and steers vCPUs through a shared control block:
 * pause, resume and stop set a request and then kick the vCPU out of
 * KVM_RUN: kvm_run.immediate_exit (for a thread about to enter) plus SIGUSR2
 * to the vCPU thread (for one already inside), KVM's documented race-free kick.
 */
import type { Worker } from 'node:worker_threads';
import { SIGUSR2 } from '../../generated/libc.js';
import * as libc from '../../sys/libc.js';
import type { VcpuFd } from '../../kvm/vcpu_fd.js';
import type { DevicesSpec } from '../device_manager.js';
import type { VcpuStop } from './vcpu_exit.js';
import { REQUEST, STATE, VcpuControl } from './vcpu_control.js';
import type { VcpuMessage, VcpuWorkerData } from './vcpu_worker.js';
import { startWorker } from '../worker_url.js';

export type { VcpuStop } from './vcpu_exit.js';

export interface VcpuLog {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

let kickHandlerInstalled = false;

/** KVM_RUN only returns EINTR for a signal the process handles: give SIGUSR2 a no-op handler. */
export function installKickHandler(): void {
  if (kickHandlerInstalled) return;
  process.on('SIGUSR2', () => undefined);
  kickHandlerInstalled = true;
}


export class Vcpu {
  private readonly control = new VcpuControl();
  private worker: Worker | undefined;
  private exited: Promise<VcpuStop> | undefined;

  /** `thread`: a vCPU thread started ahead of time (spawnVcpuThread), else one is started by run(). */
  constructor(readonly fd: VcpuFd, private readonly devices: DevicesSpec, private readonly log: VcpuLog, private readonly thread?: Worker) {}

  get id(): number {
    return this.fd.id;
  }

  /** True until the vCPU thread has left its run loop for good. */
  get isRunning(): boolean {
    return this.worker !== undefined && this.control.state !== STATE.EXITED;
  }

  get metrics(): ReturnType<VcpuControl['metrics']> {
    return this.control.metrics();
  }

  /** Starts the vCPU thread; resolves with why it stopped. Never rejects. */
  run(): Promise<VcpuStop> {
    if (this.exited) return this.exited;
    const { addr, size } = this.fd.runMapping;
    const workerData: VcpuWorkerData = { id: this.id, fd: this.fd.fd, runAddr: addr, runSize: size, control: this.control.sab, devices: this.devices };
    const worker = this.thread ?? startWorker('vstate/vcpu_worker', { workerData, name: `fc_vcpu ${this.id}` });
    this.worker = worker;
    this.exited = new Promise<VcpuStop>((resolve) => {
      let stop: VcpuStop | undefined;
      worker.on('message', (m: VcpuMessage) => {
        if (m.type === 'log') this.log[m.level](m.msg);
        else stop = m.stop;
      });
      worker.on('error', (e) => {
        stop = { reason: 'error', exitCode: 2, message: `vCPU ${this.id} thread failed: ${e.message}` };
      });
      worker.on('exit', () => {
        this.control.state = STATE.EXITED;
        resolve(stop ?? { reason: 'error', exitCode: 2, message: `vCPU ${this.id} thread ended without a reason` });
      });
    });
    if (this.thread) worker.postMessage(workerData);
    return this.exited;
  }

  /** Kicks until `done()` or the timeout; returns whether `done()` became true. */
  private async kickUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let delay = 1;
    while (!done()) {
      this.fd.immediateExit = true;
      const tid = this.control.tid;
      if (tid) {
        try {
          libc.tgkill(tid, SIGUSR2);
        } catch {
          // ESRCH: the thread is gone.
        }
      }
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 50);
    }
    return true;
  }

  /** Parks the vCPU outside KVM_RUN; resolves once it is parked. */
  async pause(timeoutMs = 2000): Promise<boolean> {
    this.control.request = REQUEST.PAUSE;
    return this.kickUntil(() => this.control.state === STATE.PAUSED || this.control.state === STATE.EXITED, timeoutMs);
  }

  resume(): void {
    this.control.request = REQUEST.RUN;
  }

  /** Ends the run loop; resolves with whether the thread left KVM_RUN (a guest spinning under kvm_pvm's emulator may not). */
  async stop(timeoutMs = 2000): Promise<boolean> {
    this.control.request = REQUEST.STOP;
    if (!this.worker) return true;
    const left = await this.kickUntil(() => this.control.state === STATE.EXITED, timeoutMs);
    if (!left) this.log.warn(`vCPU ${this.id} did not leave KVM_RUN within ${timeoutMs} ms`);
    return left;
  }

  close(): void {
    this.fd.close();
  }
}
