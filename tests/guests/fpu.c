/*
 * fpu: executes an x87 or SSE instruction that KVM's instruction emulator
 * cannot run. On kvm_pvm hosts (every instruction of an ordinary guest is
 * emulated) that stops the guest with KVM_EXIT_INTERNAL_ERROR (emulation
 * failure). On hardware-virtualized KVM the instruction just runs and the
 * guest prints "fpu: <insn> completed" and resets.
 *
 * Command line: fpu=x87 (default: fld1) or fpu=sse (pxor %xmm0, %xmm0).
 *
 * Measured on kvm_pvm: fninit and fxsave do NOT stop the guest (KVM's
 * emulator implements fninit/fnstcw/fnstsw and fxsave/fxrstor), whereas
 * fld1 and pxor end in KVM_EXIT_INTERNAL_ERROR.
 */
#include "common/guest.h"

void guest_main(const uint8_t *zero_page) {
  char buf[16];
  const char *which = cmdline_value(boot_cmdline(zero_page, 0), "fpu", buf, sizeof buf);
  int sse = which && memcmp(which, "sse", 4) == 0;

  idt_init(); /* so that a #NM/#UD on real hardware is reported instead of triple faulting */
  uint64_t cr0, cr4;
  __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
  cr0 &= ~((1UL << 2) | (1UL << 3)); /* clear EM, TS */
  cr0 |= (1UL << 1) | (1UL << 5);    /* set MP, NE */
  __asm__ volatile("mov %0, %%cr0" : : "r"(cr0));
  __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
  cr4 |= (1UL << 9) | (1UL << 10); /* OSFXSR, OSXMMEXCPT: SSE usable */
  __asm__ volatile("mov %0, %%cr4" : : "r"(cr4));

  if (sse) {
    serial_puts("fpu: executing pxor %xmm0, %xmm0 (SSE)\n");
    serial_wait_idle();
    __asm__ volatile("pxor %%xmm0, %%xmm0" ::: "memory");
    serial_puts("fpu: pxor completed\n");
  } else {
    serial_puts("fpu: executing fld1 (x87)\n");
    serial_wait_idle();
    __asm__ volatile("fld1\n\tfstp %%st(0)" ::: "memory");
    serial_puts("fpu: fld1 completed\n");
  }
  guest_reset();
}
