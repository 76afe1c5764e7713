/**
 * What kind of KVM this host offers. Hardware virtualization shows as the
 * vmx/svm CPU flag; kvm_pvm (a paravirtual KVM used when the host is itself a
 * VM) runs ordinary guests through KVM's instruction emulator instead, which
 * cannot boot stock Linux (no FPU/SSE emulation).
 */
import fs from 'node:fs';

export interface HostVirtualization {
  /** /dev/kvm exists. */
  kvm: boolean;
  /** The CPU advertises VMX or SVM, so KVM runs guests natively. */
  hardware: boolean;
  /** The KVM vendor module that is loaded (kvm_intel, kvm_amd, kvm_pvm), if any. */
  module: string | undefined;
  detail: string;
}

export function detectHostVirtualization(): HostVirtualization {
  const kvm = fs.existsSync('/dev/kvm');
  let flags = '';
  try {
    const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'latin1');
    flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '';
  } catch {
    // No /proc: assume nothing.
  }
  const hasFlag = (f: string): boolean => new RegExp(`\\b${f}\\b`).test(flags);
  const hardware = hasFlag('vmx') || hasFlag('svm');
  const module = ['kvm_intel', 'kvm_amd', 'kvm_pvm'].find((m) => fs.existsSync(`/sys/module/${m}`));
  const detail = [
    kvm ? '/dev/kvm present' : 'no /dev/kvm',
    module ? `${module} loaded` : 'no KVM vendor module',
    hardware ? 'CPU has vmx/svm' : 'CPU has neither vmx nor svm',
  ].join(', ');
  return { kvm, hardware, module, detail };
}
