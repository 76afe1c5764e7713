/** /dev/kvm: the system-level handle (kvm-ioctls' `Kvm`). */
import { KVM, KVM_API_VERSION, KVM_MAX_CPUID_ENTRIES, KVM_CAP } from '../generated/kvm.js';
import { O_RDWR } from '../generated/libc.js';
import { cpuid2Buffer, decodeCpuid2, type CpuidEntry } from '../generated/kvm_structs.js';
import * as libc from '../sys/libc.js';
import { VmFd } from './vm_fd.js';

export class Kvm {
  readonly fd: number;

  constructor(path = '/dev/kvm') {
    this.fd = libc.open(path, O_RDWR);
    const version = libc.ioctl(this.fd, KVM.GET_API_VERSION, 0, 'KVM_GET_API_VERSION');
    if (version !== KVM_API_VERSION) {
      libc.close(this.fd);
      throw new Error(`KVM API version ${version} is not supported (need ${KVM_API_VERSION})`);
    }
  }

  checkExtension(cap: number): number {
    return libc.ioctl(this.fd, KVM.CHECK_EXTENSION, cap, 'KVM_CHECK_EXTENSION');
  }

  /** Fails with a clear message when a capability the VMM relies on is missing. */
  requireExtensions(caps: Array<keyof typeof KVM_CAP>): void {
    const missing = caps.filter((c) => this.checkExtension(KVM_CAP[c]) <= 0);
    if (missing.length) throw new Error(`KVM lacks required capabilities: ${missing.map((c) => `KVM_CAP_${c}`).join(', ')}`);
  }

  vcpuMmapSize(): number {
    return libc.ioctl(this.fd, KVM.GET_VCPU_MMAP_SIZE, 0, 'KVM_GET_VCPU_MMAP_SIZE');
  }

  /** Recommended and maximum vCPUs per VM. */
  maxVcpus(): number {
    const max = this.checkExtension(KVM_CAP.MAX_VCPUS);
    return max > 0 ? max : this.checkExtension(KVM_CAP.NR_VCPUS);
  }

  supportedCpuid(): CpuidEntry[] {
    const buf = cpuid2Buffer(KVM_MAX_CPUID_ENTRIES);
    libc.ioctl(this.fd, KVM.GET_SUPPORTED_CPUID, buf, 'KVM_GET_SUPPORTED_CPUID');
    return decodeCpuid2(buf);
  }

  createVm(): VmFd {
    // Machine type 0: the default x86 VM.
    const fd = libc.ioctl(this.fd, KVM.CREATE_VM, 0, 'KVM_CREATE_VM');
    return new VmFd(fd, this.vcpuMmapSize());
  }

  close(): void {
    libc.close(this.fd);
  }
}
