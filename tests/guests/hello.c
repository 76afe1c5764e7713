/*
 * hello: serial output, the command line through the zero page, the boot
 * timer (123 -> 0xc0000000) and the i8042 reset.
 *
 * Output:
 *   Hello from a sparkler test guest
 *   zero page: 0x7000 cmd_line_ptr: 0x20000
 *   cmdline: <the boot_args the VMM passed>
 *   boot timer: wrote 123 to 0xc0000000
 *   resetting through the i8042
 */
#include "common/guest.h"

void guest_main(const uint8_t *zero_page) {
  serial_puts("Hello from a sparkler test guest\n");

  uint32_t ptr = 0;
  const char *cmdline = boot_cmdline(zero_page, &ptr);
  serial_puts("zero page: ");
  serial_put_hex((uint64_t)zero_page);
  serial_puts(" cmd_line_ptr: ");
  serial_put_hex(ptr);
  serial_puts("\n");
  serial_puts("cmdline: ");
  serial_puts(cmdline ? cmdline : "(none)");
  serial_puts("\n");

  boot_timer_signal();
  serial_puts("boot timer: wrote 123 to 0xc0000000\n");

  serial_puts("resetting through the i8042\n");
  guest_reset();
}
