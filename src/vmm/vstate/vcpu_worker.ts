/**
 * A vCPU thread: blocks in KVM_RUN and emulates each exit right here, on the
 * thread that trapped it, so an exit costs one ioctl round trip and no
 * cross-thread wake-up. Devices are shared with the other threads through
 * their SharedArrayBuffer state (see device_manager.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { VcpuFd } from '../../kvm/vcpu_fd.js';
import { EAGAIN, EINTR } from '../../generated/libc.js';
import { SysError, gettid } from '../../sys/libc.js';
import { attachDevices, type DevicesSpec } from '../device_manager.js';
import { ExitHandler, EXIT_GENERIC_ERROR, EXIT_OK, type VcpuStop } from './vcpu_exit.js';
import { REQUEST, STATE, VcpuControl } from './vcpu_control.js';

export interface VcpuWorkerData {
  id: number;
  fd: number;
  runAddr: bigint;
  runSize: number;
  control: SharedArrayBuffer;
  devices: DevicesSpec;
}

/** Messages a vCPU thread posts to the main thread. */
export type VcpuMessage = { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string } | { type: 'exit'; stop: VcpuStop };

function post(m: VcpuMessage): void {
  parentPort!.postMessage(m);
}

function runLoop(data: VcpuWorkerData): VcpuStop {
  const ctl = new VcpuControl(data.control);
  const vcpu = new VcpuFd(data.fd, data.id, data.runSize, data.runAddr);
  let resetRequested = false;
  const buses = attachDevices(data.devices, {
    onReset: () => { resetRequested = true; },
    info: (msg) => post({ type: 'log', level: 'info', msg }),
  });
  const exits = new ExitHandler(vcpu, buses.pio, buses.mmio, ctl);
  ctl.tid = gettid();
  ctl.state = STATE.RUNNING;

  for (;;) {
    const req = ctl.request;
    if (req === REQUEST.STOP) return { reason: 'stopped', exitCode: EXIT_OK, message: `vCPU ${data.id} stopped` };
    if (req === REQUEST.PAUSE) {
      ctl.state = STATE.PAUSED;
      ctl.waitWhileRequest(REQUEST.PAUSE);
      ctl.state = STATE.RUNNING;
      continue;
    }
    const ret = vcpu.runSync();
    if (ret < 0) {
      const errno = -ret;
      // EINTR: kicked (signal or immediate_exit). EAGAIN: an AP woken by INIT before its SIPI.
      if (errno === EINTR || errno === EAGAIN) {
        vcpu.immediateExit = false;
        continue;
      }
      exits.count('failures');
      return { reason: 'error', exitCode: EXIT_GENERIC_ERROR, message: `vCPU ${data.id}: ${new SysError('KVM_RUN', errno).message}` };
    }
    const stop = exits.handle();
    if (resetRequested) return { reason: 'reset', exitCode: EXIT_OK, message: 'guest requested a reset through the i8042' };
    if (stop) return stop;
  }
}

function start(data: VcpuWorkerData): void {
  let stop: VcpuStop;
  try {
    stop = runLoop(data);
  } catch (e) {
    stop = { reason: 'error', exitCode: 2, message: `vCPU ${data.id}: unexpected error: ${e instanceof Error ? e.message : String(e)}` };
  }
  new VcpuControl(data.control).state = STATE.EXITED;
  post({ type: 'exit', stop });
}

// Started with its vCPU, or ahead of time (vcpu_thread.ts): then the vCPU arrives as the first message.
if (workerData) start(workerData as VcpuWorkerData);
else parentPort!.once('message', (m: VcpuWorkerData) => start(m));
