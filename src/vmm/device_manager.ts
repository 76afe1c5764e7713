/**
 * A microVM's devices as the vCPU threads see them: the legacy devices (UART,
 * i8042, boot timer) and the virtio-mmio register windows, on the PIO and
 * MMIO buses.
 *
 * The main thread creates the devices (their shared state and irqfds) and
 * describes them in a plain, cloneable `DevicesSpec`; each vCPU thread
 * rebuilds its own buses over the same shared state with `attachDevices`.
 */
import fs from 'node:fs';
import { BOOT_TIMER_ADDR, BOOT_TIMER_SIZE, COM1_PORT, I8042_DATA_PORT, VIRTIO_MMIO_SIZE } from './arch/x86_64/layout.js';
import { Bus } from './devices/bus.js';
import type { IrqTrigger } from './devices/irq.js';
import { I8042, I8042_PORTS } from './devices/legacy/i8042/i8042.js';
import { UART_PORTS } from './devices/legacy/serial/registers.js';
import { Serial } from './devices/legacy/serial/serial.js';
import { BootTimer, formatBootTime } from './devices/pseudo/boot_timer.js';
import * as libc from '../sys/libc.js';
import { signalEventFd } from './event_manager.js';
import { MmioTransport } from './devices/virtio/mmio/transport.js';
import type { VirtioDeviceWiring } from './devices/virtio/wiring.js';

export interface DevicesSpec {
  serial: { state: SharedArrayBuffer; irqFd: number };
  i8042: { state: SharedArrayBuffer; irqFd: number };
  /** Present with --boot-timer: process start in CLOCK_MONOTONIC µs and CPU µs. */
  bootTimer?: { startUs: bigint; startCpuUs: number };
  /** Where the guest's console output goes (fd 1 normally). */
  consoleFd: number;
  /** virtio-mmio devices: their registers are emulated on the vCPU threads too. */
  virtio: VirtioDeviceWiring[];
}

export interface DeviceHooks {
  /** The guest asked the i8042 for a CPU reset. */
  onReset: () => void;
  info: (msg: string) => void;
}

const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);

/** An irqfd-registered eventfd seen from any thread: writing it injects the edge inside KVM. */
export class EventFdIrq implements IrqTrigger {
  constructor(private readonly fd: number) {}
  trigger(): void {
    libc.write(this.fd, ONE, 'irqfd write');
  }
}

/** The guest's console output: one write(2) per byte, as the UART transmits it (Firecracker does the same). */
export function consoleSink(fd: number): (b: number) => void {
  const one = new Uint8Array(1);
  return (b) => {
    one[0] = b;
    try {
      fs.writeSync(fd, one);
    } catch {
      // stdout gone (closed pipe): the guest keeps running.
    }
  };
}

export interface DeviceBuses {
  pio: Bus;
  mmio: Bus;
  serial: Serial;
  i8042: I8042;
}

export function attachDevices(spec: DevicesSpec, hooks: DeviceHooks): DeviceBuses {
  const pio = new Bus('pio');
  const mmio = new Bus('mmio');
  const serial = new Serial(new EventFdIrq(spec.serial.irqFd), consoleSink(spec.consoleFd), spec.serial.state);
  pio.insert(serial, COM1_PORT, UART_PORTS, 'serial (COM1)');
  const i8042 = new I8042(new EventFdIrq(spec.i8042.irqFd), hooks.onReset, spec.i8042.state);
  pio.insert(i8042, I8042_DATA_PORT, I8042_PORTS, 'i8042');
  if (spec.bootTimer) {
    const timer = new BootTimer(spec.bootTimer.startUs, spec.bootTimer.startCpuUs, (t) => hooks.info(formatBootTime(t)));
    mmio.insert(timer, BOOT_TIMER_ADDR, BOOT_TIMER_SIZE, 'boot timer');
  }
  for (const w of spec.virtio) {
    const t = MmioTransport.fromShared(w.transportState);
    // Status changes (activate, reset) are acted on by the device thread.
    t.onStatusChange = () => signalEventFd(w.activateFd);
    // QueueNotify normally never exits (ioeventfd); a write KVM did not match still reaches the queue.
    t.onQueueNotify = (q) => { const fd = w.queueFds[q]; if (fd !== undefined) signalEventFd(fd); };
    t.onHookError = (e) => hooks.info(`virtio ${w.id}: ${e instanceof Error ? e.message : String(e)}`);
    mmio.insert(t, w.addr, VIRTIO_MMIO_SIZE, `virtio-mmio ${w.id}`);
  }
  return { pio, mmio, serial, i8042 };
}
