/*
 * triplefault: zero-limit IDT + ud2 -> #UD -> (no gate) #GP -> #DF -> triple
 * fault: KVM_EXIT_SHUTDOWN.
 *
 * ud2 rather than int3: on kvm_pvm KVM's instruction emulator cannot emulate
 * a software interrupt (INT n / INT3) outside real mode and stops the guest
 * with KVM_EXIT_INTERNAL_ERROR instead; an exception it raises itself (#UD)
 * goes through KVM's normal delivery and escalates to a triple fault.
 */
#include "common/guest.h"

void guest_main(const uint8_t *zero_page) {
  (void)zero_page;
  serial_puts("triplefault: loading a zero-limit IDT and executing ud2\n");
  serial_wait_idle();
  struct {
    uint16_t limit;
    uint64_t base;
  } __attribute__((packed)) idtr = {0, 0};
  __asm__ volatile("lidt %0\n\tud2" : : "m"(idtr) : "memory");
  serial_puts("ERROR: still running after the triple fault\n");
  halt_forever();
}
