/*
 * irq: interrupts through the in-kernel irqchip (8259 PIC pair, LAPIC LINT0 = ExtINT).
 *
 * The command line selects the test:
 *   irqtest=uart (default): IRQ 4 from the UART's THRE interrupt. With THR empty,
 *     setting IER=0x02 must raise IRQ 4 (8250 semantics, what Linux's driver needs);
 *     the handler reads IIR (expects 0x?2: THRE). Prints "IRQ4 OK iir=0x.. count=n".
 *   irqtest=pit: PIT channel 0 at ~100 Hz on IRQ 0; counts 5 ticks,
 *     prints "PIT OK ticks=5".
 * Then resets through the i8042.
 */
#include "common/guest.h"

static volatile uint32_t irq4_count;
static volatile uint8_t irq4_iir;
static volatile uint32_t pit_ticks;

__attribute__((interrupt)) static void irq4_handler(struct interrupt_frame *f) {
  (void)f;
  uint8_t iir = inb(COM1 + UART_IIR);
  if (irq4_count == 0) irq4_iir = iir;
  irq4_count++;
  outb(COM1 + UART_IER, 0); /* no further THRE interrupts */
  pic_eoi(4);
}

__attribute__((interrupt)) static void pit_handler(struct interrupt_frame *f) {
  (void)f;
  pit_ticks++;
  pic_eoi(0);
}

static void uart_irq_test(void) {
  idt_set(PIC_VECTOR_BASE + 4, irq4_handler);
  pic_init((uint8_t)~(1u << 4), 0xff);
  outb(COM1 + UART_IER, 0);
  serial_puts("irq: PIC remapped to 0x20, IRQ 4 unmasked; setting IER=0x02 with THR empty\n");
  serial_wait_idle();
  outb(COM1 + UART_IER, 0x02);
  while (irq4_count == 0) __asm__ volatile("sti; hlt; cli" ::: "memory");
  outb(COM1 + UART_IER, 0);
  serial_puts("IRQ4 OK iir=");
  serial_put_hex(irq4_iir);
  serial_puts(" count=");
  serial_put_dec(irq4_count);
  serial_puts("\n");
}

static void pit_irq_test(void) {
  idt_set(PIC_VECTOR_BASE + 0, pit_handler);
  pic_init((uint8_t)~1u, 0xff);
  const uint16_t divisor = 11932; /* 1193182 Hz / 11932 ~= 100 Hz */
  outb(0x43, 0x34);               /* channel 0, lobyte/hibyte, mode 2 (rate generator) */
  outb(0x40, (uint8_t)divisor);
  outb(0x40, (uint8_t)(divisor >> 8));
  serial_puts("irq: PIT channel 0 at 100 Hz, IRQ 0 unmasked, waiting for 5 ticks\n");
  while (pit_ticks < 5) __asm__ volatile("sti; hlt; cli" ::: "memory");
  outb(PIC1_DATA, 0xff);
  serial_puts("PIT OK ticks=");
  serial_put_dec(pit_ticks);
  serial_puts("\n");
}

void guest_main(const uint8_t *zero_page) {
  char buf[16];
  const char *cmdline = boot_cmdline(zero_page, 0);
  const char *which = cmdline_value(cmdline, "irqtest", buf, sizeof buf);
  idt_init();
  if (which && memcmp(which, "pit", 4) == 0)
    pit_irq_test();
  else
    uart_irq_test();
  guest_reset();
}
