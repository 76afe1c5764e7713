/**
 * An edge on one interrupt line of the in-kernel IOAPIC, raised with
 * KVM_IRQ_LINE (level 1, then 0) from the calling thread.
 *
 * Why not the irqfd: KVM can inject only MSIs from an eventfd's wake-up;
 * an IOAPIC pin is handed to a kernel worker thread (irqfd_inject), so every
 * interrupt costs a wake-up and a context switch on some CPU before the
 * guest sees it. KVM_IRQ_LINE does the same injection synchronously, in the
 * thread that completed the request (QEMU raises its lines this way too).
 */
import { KVM } from '../generated/kvm.js';
import { encodeIrqLevel } from '../generated/kvm_structs.js';
import * as libc from '../sys/libc.js';

export class IrqLine {
  /** struct kvm_irq_level for each level, made once: this runs per interrupt. */
  private readonly high: Uint8Array;
  private readonly low: Uint8Array;

  constructor(private readonly vmFd: number, readonly gsi: number) {
    this.high = encodeIrqLevel(gsi, 1);
    this.low = encodeIrqLevel(gsi, 0);
  }

  /** Raises and lowers the line: one edge, one interrupt. */
  pulse(): void {
    libc.ioctl(this.vmFd, KVM.IRQ_LINE, this.high, 'KVM_IRQ_LINE');
    libc.ioctl(this.vmFd, KVM.IRQ_LINE, this.low, 'KVM_IRQ_LINE');
  }
}
