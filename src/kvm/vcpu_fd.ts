/** A KVM vCPU file descriptor and its mmap'ed kvm_run page (kvm-ioctls' `VcpuFd`). */
import { KVM, KVM_RUN_OFFSET, SIZEOF } from '../generated/kvm.js';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../generated/libc.js';
import {
  decodeCpuid2, decodeMsrs, decodeRegs, decodeSregs, encodeCpuid2, encodeMsrs, encodeRegs, encodeSregs,
  cpuid2Buffer, type CpuidEntry, type KvmRegs, type KvmSregs, type MsrEntry,
} from '../generated/kvm_structs.js';
import * as libc from '../sys/libc.js';

export class VcpuFd {
  /** Zero-copy view of struct kvm_run, shared with the kernel. */
  readonly run: DataView;
  readonly runBytes: Uint8Array;
  private readonly runAddr: bigint;

  /** `runAddr`: an existing mapping of this vCPU's kvm_run (another thread's view); otherwise it is mapped here. */
  constructor(readonly fd: number, readonly id: number, private readonly runMmapSize: number, runAddr?: bigint) {
    this.runAddr = runAddr ?? libc.mmap(runMmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const ab = libc.view(this.runAddr, runMmapSize);
    this.run = new DataView(ab);
    this.runBytes = new Uint8Array(ab);
  }

  /** Where kvm_run is mapped, so another thread can build its own view with the same fd. */
  get runMapping(): { addr: bigint; size: number } {
    return { addr: this.runAddr, size: this.runMmapSize };
  }

  /** Synchronous KVM_RUN on the calling thread: 0, or -errno (never throws). */
  runSync(): number {
    return libc.ioctlRaw(this.fd, KVM.RUN, 0);
  }

  getRegs(): KvmRegs {
    const b = new Uint8Array(SIZEOF.kvm_regs);
    libc.ioctl(this.fd, KVM.GET_REGS, b, 'KVM_GET_REGS');
    return decodeRegs(b);
  }
  setRegs(r: KvmRegs): void {
    libc.ioctl(this.fd, KVM.SET_REGS, encodeRegs(r), 'KVM_SET_REGS');
  }
  getSregs(): KvmSregs {
    const b = new Uint8Array(SIZEOF.kvm_sregs);
    libc.ioctl(this.fd, KVM.GET_SREGS, b, 'KVM_GET_SREGS');
    return decodeSregs(b);
  }
  setSregs(s: KvmSregs): void {
    libc.ioctl(this.fd, KVM.SET_SREGS, encodeSregs(s), 'KVM_SET_SREGS');
  }
  getFpu(): Uint8Array {
    const b = new Uint8Array(SIZEOF.kvm_fpu);
    libc.ioctl(this.fd, KVM.GET_FPU, b, 'KVM_GET_FPU');
    return b;
  }
  setFpu(fpu: Uint8Array): void {
    libc.ioctl(this.fd, KVM.SET_FPU, fpu, 'KVM_SET_FPU');
  }
  setCpuid2(entries: readonly CpuidEntry[]): void {
    libc.ioctl(this.fd, KVM.SET_CPUID2, encodeCpuid2(entries), 'KVM_SET_CPUID2');
  }
  getCpuid2(capacity = 256): CpuidEntry[] {
    const b = cpuid2Buffer(capacity);
    libc.ioctl(this.fd, KVM.GET_CPUID2, b, 'KVM_GET_CPUID2');
    return decodeCpuid2(b);
  }
  /** Sets MSRs; KVM returns how many it accepted, and a short count means a rejected MSR. */
  setMsrs(entries: readonly MsrEntry[]): void {
    const n = libc.ioctl(this.fd, KVM.SET_MSRS, encodeMsrs(entries), 'KVM_SET_MSRS');
    if (n !== entries.length) {
      throw new Error(`KVM_SET_MSRS: KVM rejected MSR 0x${entries[n]!.index.toString(16)} (set ${n} of ${entries.length})`);
    }
  }
  getMsrs(indices: readonly number[]): MsrEntry[] {
    const b = encodeMsrs(indices.map((index) => ({ index, data: 0n })));
    const n = libc.ioctl(this.fd, KVM.GET_MSRS, b, 'KVM_GET_MSRS');
    return decodeMsrs(b).slice(0, n);
  }
  getLapic(): Uint8Array {
    const b = new Uint8Array(SIZEOF.kvm_lapic_state);
    libc.ioctl(this.fd, KVM.GET_LAPIC, b, 'KVM_GET_LAPIC');
    return b;
  }
  setLapic(b: Uint8Array): void {
    libc.ioctl(this.fd, KVM.SET_LAPIC, b, 'KVM_SET_LAPIC');
  }
  getMpState(): number {
    const b = new Uint8Array(SIZEOF.kvm_mp_state);
    libc.ioctl(this.fd, KVM.GET_MP_STATE, b, 'KVM_GET_MP_STATE');
    return new DataView(b.buffer).getUint32(0, true);
  }
  /** Tell the guest's kvmclock it was paused, so its soft-lockup watchdog doesn't fire on resume. */
  kvmclockCtrl(): void {
    libc.ioctl(this.fd, KVM.KVMCLOCK_CTRL, 0, 'KVM_KVMCLOCK_CTRL');
  }


  get exitReason(): number {
    return this.run.getUint32(KVM_RUN_OFFSET.exit_reason, true);
  }
  set immediateExit(v: boolean) {
    this.run.setUint8(KVM_RUN_OFFSET.immediate_exit, v ? 1 : 0);
  }
  get immediateExit(): boolean {
    return this.run.getUint8(KVM_RUN_OFFSET.immediate_exit) !== 0;
  }

  close(): void {
    libc.munmap(this.runAddr, this.runMmapSize);
    libc.close(this.fd);
  }
}
