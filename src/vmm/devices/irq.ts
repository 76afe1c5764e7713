/**
 * Interrupt lines from devices to the in-kernel irqchip. An EventFdTrigger is
 * an eventfd registered with KVM_IRQFD: writing it injects an edge on the GSI
 * inside KVM, with no ioctl on the device's path.
 */
import { EFD_CLOEXEC, EFD_NONBLOCK } from '../../generated/libc.js';
import * as libc from '../../sys/libc.js';
import type { VmFd } from '../../kvm/vm_fd.js';

export interface IrqTrigger {
  trigger(): void;
}

const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);

export class EventFdTrigger implements IrqTrigger {
  readonly fd: number;

  constructor(vm: VmFd, readonly gsi: number) {
    this.fd = libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    vm.registerIrqfd(this.fd, gsi);
  }

  trigger(): void {
    libc.write(this.fd, ONE, `irq ${this.gsi} eventfd write`);
  }

  close(): void {
    libc.close(this.fd);
  }
}
