/**
 * Forcing a vCPU out of KVM_RUN.
 *
 * KVM_RUN runs on a libuv thread-pool thread (see Vcpu), so the VMM does not
 * hold a pthread handle for it. The kernel does tell us which thread is
 * inside which syscall: /proc/self/task/<tid>/syscall reads
 * "16 0x<fd> 0xae80 …" (ioctl, vCPU fd, KVM_RUN) for exactly the thread to
 * signal. The kick sets kvm_run.immediate_exit first, so a thread that is
 * between two KVM_RUN calls returns at once on its next entry (KVM's
 * documented race-free kick), then sends SIGUSR2 to the thread in the call.
 * A signal that lands on a thread which already left KVM_RUN is harmless:
 * the handler does nothing and libuv restarts interrupted file operations.
 */
import fs from 'node:fs';
import { SIGUSR2 } from '../../generated/libc.js';
import * as libc from '../../sys/libc.js';

/** x86_64 syscall number of ioctl(2). */
const SYS_ioctl = 16;

let handlerInstalled = false;

/** KVM only returns EINTR for a signal the process handles; installing a no-op handler makes SIGUSR2 harmless. */
export function installKickHandler(): void {
  if (handlerInstalled) return;
  process.on('SIGUSR2', () => undefined);
  handlerInstalled = true;
}

/** Thread ids currently blocked in ioctl(fd, req). */
export function threadsInIoctl(fd: number, req: number): number[] {
  const want = `${SYS_ioctl} 0x${fd.toString(16)} 0x${req.toString(16)} `;
  const tids: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc/self/task');
  } catch {
    return tids;
  }
  for (const tid of entries) {
    try {
      if (fs.readFileSync(`/proc/self/task/${tid}/syscall`, 'latin1').startsWith(want)) tids.push(Number(tid));
    } catch {
      // The thread exited while we looked.
    }
  }
  return tids;
}

export function signalThreads(tids: readonly number[]): void {
  for (const tid of tids) {
    try {
      libc.tgkill(tid, SIGUSR2);
    } catch {
      // ESRCH: it exited.
    }
  }
}
