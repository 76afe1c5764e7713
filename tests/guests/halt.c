/* halt: prints "halting" then cli; hlt forever (the vCPU blocks in KVM_RUN). */
#include "common/guest.h"

void guest_main(const uint8_t *zero_page) {
  (void)zero_page;
  serial_puts("halting\n");
  serial_wait_idle();
  halt_forever();
}
