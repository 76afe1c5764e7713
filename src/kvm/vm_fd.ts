/** A KVM VM file descriptor (kvm-ioctls' `VmFd`). */
import { KVM, KVM_IOEVENTFD_FLAG, KVM_IRQFD_FLAG, KVM_PIT_SPEAKER_DUMMY, SIZEOF } from '../generated/kvm.js';
import {
  encodeIoeventfd, encodeIrqfd, encodeIrqLevel, encodePitConfig, encodeUserspaceMemoryRegion,
} from '../generated/kvm_structs.js';
import * as libc from '../sys/libc.js';
import { VcpuFd } from './vcpu_fd.js';

export interface IoEventAddress { kind: 'pio' | 'mmio'; addr: number }

export class VmFd {
  constructor(readonly fd: number, private readonly runMmapSize: number) {}

  setTssAddress(addr: number): void {
    libc.ioctl(this.fd, KVM.SET_TSS_ADDR, addr, 'KVM_SET_TSS_ADDR');
  }

  setIdentityMapAddress(addr: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(addr), true);
    libc.ioctl(this.fd, KVM.SET_IDENTITY_MAP_ADDR, b, 'KVM_SET_IDENTITY_MAP_ADDR');
  }

  /** In-kernel PIC pair, IOAPIC and per-vCPU LAPICs. */
  createIrqchip(): void {
    libc.ioctl(this.fd, KVM.CREATE_IRQCHIP, 0, 'KVM_CREATE_IRQCHIP');
  }

  /** In-kernel i8254 PIT; the PC speaker port is left to a dummy so it doesn't exit to us. */
  createPit2(): void {
    libc.ioctl(this.fd, KVM.CREATE_PIT2, encodePitConfig(KVM_PIT_SPEAKER_DUMMY), 'KVM_CREATE_PIT2');
  }

  setUserMemoryRegion(slot: number, guestPhysAddr: number, memorySize: number, userspaceAddr: bigint, flags = 0): void {
    const region = encodeUserspaceMemoryRegion({ slot, flags, guestPhysAddr, memorySize, userspaceAddr });
    libc.ioctl(this.fd, KVM.SET_USER_MEMORY_REGION, region, 'KVM_SET_USER_MEMORY_REGION');
  }

  /** Route an eventfd to a GSI: a write to the eventfd injects an edge on that GSI without a trip through userspace. */
  registerIrqfd(eventFd: number, gsi: number): void {
    libc.ioctl(this.fd, KVM.IRQFD, encodeIrqfd(eventFd, gsi, 0), 'KVM_IRQFD');
  }

  unregisterIrqfd(eventFd: number, gsi: number): void {
    libc.ioctl(this.fd, KVM.IRQFD, encodeIrqfd(eventFd, gsi, KVM_IRQFD_FLAG.DEASSIGN), 'KVM_IRQFD(deassign)');
  }

  /** Make guest writes to `at` signal an eventfd inside KVM, without a VM exit to userspace. */
  registerIoevent(eventFd: number, at: IoEventAddress, len: number, datamatch?: bigint): void {
    let flags = at.kind === 'pio' ? KVM_IOEVENTFD_FLAG.PIO : 0;
    if (datamatch !== undefined) flags |= KVM_IOEVENTFD_FLAG.DATAMATCH;
    const arg = encodeIoeventfd({ datamatch: datamatch ?? 0n, addr: at.addr, len, fd: eventFd, flags });
    libc.ioctl(this.fd, KVM.IOEVENTFD, arg, 'KVM_IOEVENTFD');
  }

  setIrqLine(irq: number, level: boolean): void {
    libc.ioctl(this.fd, KVM.IRQ_LINE, encodeIrqLevel(irq, level ? 1 : 0), 'KVM_IRQ_LINE');
  }

  /** The guest's kvmclock, ns (struct kvm_clock_data.clock). */
  getClock(): bigint {
    const b = new Uint8Array(SIZEOF.kvm_clock_data);
    libc.ioctl(this.fd, KVM.GET_CLOCK, b, 'KVM_GET_CLOCK');
    return new DataView(b.buffer).getBigUint64(0, true);
  }

  setClock(ns: bigint): void {
    const b = new Uint8Array(SIZEOF.kvm_clock_data);
    new DataView(b.buffer).setBigUint64(0, ns, true);
    libc.ioctl(this.fd, KVM.SET_CLOCK, b, 'KVM_SET_CLOCK');
  }

  createVcpu(id: number): VcpuFd {
    const fd = libc.ioctl(this.fd, KVM.CREATE_VCPU, id, `KVM_CREATE_VCPU(${id})`);
    return new VcpuFd(fd, id, this.runMmapSize);
  }

  close(): void {
    libc.close(this.fd);
  }
}
