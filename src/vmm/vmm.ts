/**
 * A running microVM: its KVM objects, memory, devices and vCPUs, and the
 * rules for how it ends. The first vCPU to stop (guest reset, shutdown or an
 * error) or a device's reset request ends the whole VM; teardown closes every
 * fd and unmaps guest memory.
 */
import type { Kvm } from '../kvm/kvm.js';
import type { VmFd } from '../kvm/vm_fd.js';
import type { GuestMemory } from '../memory/guest_memory.js';
import type { EventFdTrigger } from './devices/irq.js';
import type { I8042 } from './devices/legacy/i8042/i8042.js';
import type { SerialConsole } from './devices/legacy/serial/console.js';
import type { Serial } from './devices/legacy/serial/serial.js';
import { guestMemoryLayout, unmapGuestMemory, type GuestMemoryMapping } from './vstate/memory.js';
import type { VirtioDeviceManager } from './devices/virtio/manager.js';
import type { Vcpu, VcpuStop } from './vstate/vcpu.js';

export interface VmmLog {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface VmmParts {
  kvm: Kvm;
  vm: VmFd;
  memory: GuestMemoryMapping;
  vcpus: Vcpu[];
  serial: Serial;
  console: SerialConsole;
  i8042: I8042;
  virtio: VirtioDeviceManager;
  irqs: EventFdTrigger[];
  log: VmmLog;
}

export type VmState = 'Not started' | 'Running' | 'Paused' | 'Stopped';

export class Vmm {
  private state: VmState = 'Not started';
  private ending: Promise<VcpuStop> | undefined;
  private endWith: ((s: VcpuStop) => void) | undefined;
  private tornDown = false;
  /** kvmclock at pause, restored at resume so the guest's clock does not jump over the pause. */
  private pausedClock: bigint | undefined;

  constructor(readonly parts: VmmParts) {}

  get guestMemory(): GuestMemory {
    return this.parts.memory.memory;
  }

  get vmState(): VmState {
    return this.state;
  }

  /** Starts every vCPU; resolves with the reason the VM ended, after teardown. */
  run(): Promise<VcpuStop> {
    if (this.ending) return this.ending;
    const ended = new Promise<VcpuStop>((resolve) => {
      this.endWith = resolve;
    });
    this.ending = ended.then(async (stop) => {
      await this.stopAll();
      this.teardown();
      return stop;
    });
    this.state = 'Running';
    this.parts.console.attach();
    this.parts.virtio.start(guestMemoryLayout(this.parts.memory.memory));
    for (const vcpu of this.parts.vcpus) void vcpu.run().then((stop) => this.end(stop));
    return this.ending;
  }

  /** Ends the VM (first caller wins). */
  end(stop: VcpuStop): void {
    if (!this.endWith) return;
    const log = this.parts.log;
    if (stop.reason === 'error') log.error(stop.message);
    else log.info(stop.message);
    const f = this.endWith;
    this.endWith = undefined;
    f(stop);
  }

  async pause(): Promise<void> {
    if (this.state !== 'Running') return;
    const parked = await Promise.all(this.parts.vcpus.map((v) => v.pause()));
    if (parked.some((ok) => !ok)) this.parts.log.warn('some vCPUs did not pause in time');
    try {
      this.pausedClock = this.parts.vm.getClock();
    } catch (e) {
      this.parts.log.warn(`cannot save the guest clock: ${(e as Error).message}`);
    }
    // Tell kvmclock the guest was stopped, so it doesn't see a soft lockup on resume.
    for (const v of this.parts.vcpus) {
      try {
        v.fd.kvmclockCtrl();
      } catch {
        // EINVAL when the guest doesn't use kvmclock.
      }
    }
    this.state = 'Paused';
  }

  resume(): void {
    if (this.state !== 'Paused') return;
    if (this.pausedClock !== undefined) {
      try {
        this.parts.vm.setClock(this.pausedClock);
      } catch (e) {
        this.parts.log.warn(`cannot restore the guest clock: ${(e as Error).message}`);
      }
      this.pausedClock = undefined;
    }
    for (const v of this.parts.vcpus) v.resume();
    this.state = 'Running';
  }

  sendCtrlAltDel(): boolean {
    return this.parts.i8042.sendCtrlAltDel();
  }

  private async stopAll(): Promise<void> {
    this.state = 'Stopped';
    const left = await Promise.all(this.parts.vcpus.map((v) => v.stop()));
    await this.parts.virtio.stop();
    if (left.some((ok) => !ok)) this.parts.log.warn('some vCPUs could not be stopped; they end with the process');
  }

  /** Releases host resources. vCPUs that did not leave KVM_RUN keep their fds (closing them under a running ioctl is unsafe). */
  teardown(): void {
    if (this.tornDown) return;
    this.tornDown = true;
    const { console, irqs, vcpus, vm, kvm, memory } = this.parts;
    console.detach();
    for (const irq of irqs) irq.close();
    this.parts.virtio.close();
    const allOut = vcpus.every((v) => !v.isRunning);
    if (!allOut) return;
    for (const v of vcpus) v.close();
    vm.close();
    kvm.close();
    unmapGuestMemory(memory);
  }
}
