/*
 * Shared declarations for sparkler's freestanding test guests.
 *
 * The guests are entered in 64-bit long mode with the first GiB identity
 * mapped (Linux 64-bit boot protocol as Firecracker sets it up), RSI pointing
 * at the zero page. They talk to the outside world only through COM1 (polled
 * output), the i8042 reset line and, for some, the boot timer.
 *
 * Everything here must compile without SSE/x87: the host these tests run on
 * (kvm_pvm) emulates every guest instruction and has no x87/SSE emulation.
 */
#ifndef SPARKLER_GUEST_H
#define SPARKLER_GUEST_H

typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
typedef unsigned long size_t;
typedef long int64_t;

#define COM1 0x3f8
#define UART_THR 0
#define UART_IER 1
#define UART_IIR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define PIC_VECTOR_BASE 0x20

#define BOOT_TIMER_ADDR 0xc0000000UL
#define BOOT_TIMER_MAGIC 123
#define IOAPIC_ADDR 0xfec00000UL
#define LAPIC_ADDR 0xfee00000UL

/* Offsets in the Linux boot_params ("zero page"). */
#define ZP_CMD_LINE_PTR 0x228
#define ZP_CMDLINE_SIZE 0x238
#define CMDLINE_MAX 2048

struct interrupt_frame;

static inline void outb(uint16_t port, uint8_t v) {
  __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint32_t mmio_read32(uint64_t addr) {
  return *(volatile uint32_t *)addr;
}
static inline void mmio_write32(uint64_t addr, uint32_t v) {
  *(volatile uint32_t *)addr = v;
}
static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

/* Entry point every guest provides; zero_page is what RSI held at entry. */
void guest_main(const uint8_t *zero_page);

/* Serial output (polled: waits for LSR.THRE before each byte). */
void serial_putc(char c);
void serial_puts(const char *s);
void serial_put_dec(uint64_t v);
void serial_put_hex(uint64_t v);
void serial_wait_idle(void);

/* Reset through the i8042 (port 0x64 <- 0xfe); halts if the reset does not happen. */
__attribute__((noreturn)) void guest_reset(void);
/* cli; hlt forever. */
__attribute__((noreturn)) void halt_forever(void);

/* The NUL-terminated kernel command line found through the zero page, or 0. */
const char *boot_cmdline(const uint8_t *zero_page, uint32_t *ptr_out);
/* Value of "key=value" in a command line (copied into buf), or 0 if absent. */
const char *cmdline_value(const char *cmdline, const char *key, char *buf, size_t len);
uint64_t parse_dec(const char *s);

/* Map [3 GiB, 4 GiB) with 2 MiB uncached pages for the boot timer, IOAPIC and LAPIC. */
void map_mmio_gib(void);
/* Write 123 to the boot timer (calls map_mmio_gib first if needed). */
void boot_timer_signal(void);

/* IDT: vectors 0-31 report the exception and reset; others print "unexpected interrupt". */
void idt_init(void);
void idt_set(int vector, void (*handler)(struct interrupt_frame *));

/* Legacy 8259 pair remapped to vectors 0x20-0x2f; masks are IMR values (1 = masked). */
void pic_init(uint8_t master_mask, uint8_t slave_mask);
void pic_eoi(int irq);

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
