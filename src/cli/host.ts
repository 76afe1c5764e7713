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

/**
 * The first "flags" line of /proc/cpuinfo, or '' without /proc. Reads only
 * as far as that line: the file has a record per CPU, and on a big host
 * generating all of them takes milliseconds of start-up.
 */
function firstCpuFlags(): string {
  let fd: number;
  try {
    fd = fs.openSync('/proc/cpuinfo', 'r');
  } catch {
    return ''; // No /proc: assume nothing.
  }
  try {
    const buf = Buffer.allocUnsafe(16384);
    let text = '';
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) {
      text += buf.toString('latin1', 0, n);
      const line = /^flags\s*:(.*)\n/m.exec(text);
      if (line) return line[1]!;
    }
    return /^flags\s*:(.*)$/m.exec(text)?.[1] ?? '';
  } catch {
    return '';
  } finally {
    fs.closeSync(fd);
  }
}

export function detectHostVirtualization(): HostVirtualization {
  const kvm = fs.existsSync('/dev/kvm');
  const flags = firstCpuFlags();
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
