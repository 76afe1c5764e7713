/**
 * The `boot-source` section / `PUT /boot-source` body (yaml: BootSource).
 */
import { CMDLINE_MAX_SIZE } from '../arch/x86_64/layout.js';
import { checkReadableFile, Fields, fail } from './validate.js';

/**
 * Firecracker's default guest command line (DEFAULT_KERNEL_CMDLINE), used
 * when `boot_args` is not given:
 * - `reboot=k` make a guest reboot shut the VM down;
 * - `panic=1` reboot (so: stop) one second after a panic;
 * - `nomodule` no loadable modules;
 * - `8250.nr_uarts=0` no 8250 serial ports, so no serial console;
 * - `i8042.noaux i8042.nomux i8042.dumbkbd` skip slow i8042 probing;
 * - `swiotlb=noforce` no software bounce buffers.
 *
 * Note there is no `console=`: as in Firecracker, a user who wants the
 * serial console passes boot_args such as `console=ttyS0 reboot=k panic=1`,
 * and boot_args *replaces* this default wholesale (nothing is merged or
 * appended to it here; root= for a root drive is added when devices are).
 */
export const DEFAULT_KERNEL_CMDLINE =
  'reboot=k panic=1 nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd swiotlb=noforce';

export interface BootSource {
  /** Host path of the kernel image (ELF vmlinux or bzImage). */
  kernel_image_path: string;
  /** Host path of the initrd, or null for none. */
  initrd_path: string | null;
  /**
   * Kernel command line as given, or null when not given. Kept null (not
   * defaulted) so the configuration reads back as the user wrote it, as
   * Firecracker's GET /vm/config does; use kernelCmdline() to boot.
   */
  boot_args: string | null;
}

const FIELDS = ['kernel_image_path', 'initrd_path', 'boot_args'] as const;

/** The command line to boot with: boot_args, or Firecracker's default. */
export function kernelCmdline(bs: BootSource): string {
  return bs.boot_args ?? DEFAULT_KERNEL_CMDLINE;
}

/**
 * Mirrors linux-loader's Cmdline checks that Firecracker applies at PUT
 * time: printable ASCII only, and it must fit in the guest's command line
 * buffer with its terminating NUL.
 */
function checkCmdline(s: string, at: string): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) {
      fail(at, `the kernel command line is invalid: non-printable or non-ASCII character at position ${i}`);
    }
  }
  if (s.length + 1 > CMDLINE_MAX_SIZE) {
    fail(at, `the kernel command line is invalid: ${s.length} bytes is too long (max ${CMDLINE_MAX_SIZE - 1})`);
  }
}

/**
 * Validates a BootSource body. The kernel and initrd must be readable regular
 * files now, as Firecracker opens them when the boot source is PUT.
 */
export function validateBootSource(input: unknown, at = 'boot-source'): BootSource {
  const f = Fields.of(input, at, FIELDS);
  const kernel_image_path = f.str('kernel_image_path');
  const initrd_path = f.optStr('initrd_path');
  const boot_args = f.optStr('boot_args');
  if (boot_args !== null) checkCmdline(boot_args, f.path('boot_args'));
  checkReadableFile(kernel_image_path, f.path('kernel_image_path'), 'kernel');
  if (initrd_path !== null) checkReadableFile(initrd_path, f.path('initrd_path'), 'initrd');
  return { kernel_image_path, initrd_path, boot_args };
}
