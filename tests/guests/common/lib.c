/* Common runtime of sparkler's test guests: serial, reset, command line, paging, IDT, PIC. */
#include "guest.h"

/* ---- memory/string helpers (gcc may emit calls to these even freestanding) ---- */

void *memset(void *d, int c, size_t n) {
  uint8_t *p = d;
  while (n--) *p++ = (uint8_t)c;
  return d;
}

void *memcpy(void *d, const void *s, size_t n) {
  uint8_t *dp = d;
  const uint8_t *sp = s;
  while (n--) *dp++ = *sp++;
  return d;
}

void *memmove(void *d, const void *s, size_t n) {
  uint8_t *dp = d;
  const uint8_t *sp = s;
  if (dp < sp) {
    while (n--) *dp++ = *sp++;
  } else {
    while (n) {
      n--;
      dp[n] = sp[n];
    }
  }
  return d;
}

int memcmp(const void *a, const void *b, size_t n) {
  const uint8_t *x = a, *y = b;
  for (; n; n--, x++, y++)
    if (*x != *y) return *x < *y ? -1 : 1;
  return 0;
}

size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

/* ---- serial (8250 at COM1, polled) ---- */

void serial_putc(char c) {
  /* Bounded wait: a UART that never reports THRE must not hang the guest forever. */
  for (int i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & UART_LSR_THRE); i++) cpu_relax();
  outb(COM1 + UART_THR, (uint8_t)c);
}

void serial_puts(const char *s) {
  while (*s) serial_putc(*s++);
}

void serial_put_dec(uint64_t v) {
  char buf[21];
  int i = sizeof buf - 1;
  buf[i] = 0;
  do {
    buf[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  serial_puts(&buf[i]);
}

void serial_put_hex(uint64_t v) {
  char buf[19];
  int i = sizeof buf - 1;
  buf[i] = 0;
  do {
    buf[--i] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  buf[--i] = 'x';
  buf[--i] = '0';
  serial_puts(&buf[i]);
}

void serial_wait_idle(void) {
  for (int i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & UART_LSR_TEMT); i++) cpu_relax();
}

/* ---- reset / halt ---- */

void halt_forever(void) {
  for (;;) __asm__ volatile("cli; hlt");
}

void guest_reset(void) {
  serial_wait_idle();
  outb(0x64, 0xfe);
  /* Should not get here: the VMM exits on the reset request. */
  halt_forever();
}

/* ---- command line ---- */

const char *boot_cmdline(const uint8_t *zero_page, uint32_t *ptr_out) {
  uint32_t ptr = *(const volatile uint32_t *)(zero_page + ZP_CMD_LINE_PTR);
  if (ptr_out) *ptr_out = ptr;
  if (ptr == 0 || ptr >= 0x40000000u) return 0;
  const char *s = (const char *)(uint64_t)ptr;
  /* Make sure it is terminated within the architectural maximum. */
  for (uint32_t i = 0; i < CMDLINE_MAX; i++)
    if (s[i] == 0) return s;
  return 0;
}

const char *cmdline_value(const char *cmdline, const char *key, char *buf, size_t len) {
  if (!cmdline || len == 0) return 0;
  size_t klen = strlen(key);
  const char *p = cmdline;
  while (*p) {
    while (*p == ' ') p++;
    const char *word = p;
    while (*p && *p != ' ') p++;
    size_t wlen = (size_t)(p - word);
    if (wlen > klen && word[klen] == '=' && memcmp(word, key, klen) == 0) {
      size_t vlen = wlen - klen - 1;
      if (vlen >= len) vlen = len - 1;
      memcpy(buf, word + klen + 1, vlen);
      buf[vlen] = 0;
      return buf;
    }
  }
  return 0;
}

uint64_t parse_dec(const char *s) {
  uint64_t v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (uint64_t)(*s++ - '0');
  return v;
}

/* ---- paging: the VMM maps only the first GiB; map the MMIO GiB ourselves ---- */

static uint64_t mmio_pd[512] __attribute__((aligned(4096)));
static int mmio_mapped;

#define PTE_P 0x1UL
#define PTE_RW 0x2UL
#define PTE_PWT 0x8UL
#define PTE_PCD 0x10UL
#define PTE_PS 0x80UL
#define PTE_ADDR 0x000ffffffffff000UL

void map_mmio_gib(void) {
  if (mmio_mapped) return;
  uint64_t cr3;
  __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
  uint64_t *pml4 = (uint64_t *)(cr3 & PTE_ADDR);
  uint64_t *pdpt = (uint64_t *)(pml4[0] & PTE_ADDR);
  uint64_t flags = PTE_P | PTE_RW | PTE_PWT | PTE_PCD | PTE_PS;
  for (int i = 0; i < 512; i++) mmio_pd[i] = (0xc0000000UL + ((uint64_t)i << 21)) | flags;
  /* Our own code and data are below 1 GiB, so the identity map of mmio_pd is fine. */
  pdpt[3] = (uint64_t)mmio_pd | PTE_P | PTE_RW;
  __asm__ volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
  mmio_mapped = 1;
}

void boot_timer_signal(void) {
  map_mmio_gib();
  *(volatile uint8_t *)BOOT_TIMER_ADDR = BOOT_TIMER_MAGIC;
}

/* ---- IDT ---- */

struct idt_entry {
  uint16_t off0;
  uint16_t sel;
  uint8_t ist;
  uint8_t type;
  uint16_t off1;
  uint32_t off2;
  uint32_t zero;
} __attribute__((packed));

static struct idt_entry idt[256] __attribute__((aligned(16)));
extern void (*const exception_stubs[32])(void);

void idt_set(int vector, void (*handler)(struct interrupt_frame *)) {
  uint64_t a = (uint64_t)handler;
  uint16_t cs;
  __asm__ volatile("mov %%cs, %0" : "=r"(cs));
  idt[vector].off0 = (uint16_t)a;
  idt[vector].sel = cs;
  idt[vector].ist = 0;
  idt[vector].type = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
  idt[vector].off1 = (uint16_t)(a >> 16);
  idt[vector].off2 = (uint32_t)(a >> 32);
  idt[vector].zero = 0;
}

__attribute__((interrupt)) static void unexpected_interrupt(struct interrupt_frame *f) {
  (void)f;
  serial_puts("unexpected interrupt\n");
  outb(PIC2_CMD, 0x20);
  outb(PIC1_CMD, 0x20);
}

/* Called (never returns) by the exception stubs in start.S. */
__attribute__((noreturn)) void exception_report(uint64_t vector, uint64_t error, uint64_t rip) {
  serial_puts("EXCEPTION vector=");
  serial_put_dec(vector);
  serial_puts(" error=");
  serial_put_hex(error);
  serial_puts(" rip=");
  serial_put_hex(rip);
  serial_puts("\n");
  guest_reset();
}

void idt_init(void) {
  for (int i = 0; i < 32; i++) idt_set(i, (void (*)(struct interrupt_frame *))exception_stubs[i]);
  for (int i = 32; i < 256; i++) idt_set(i, unexpected_interrupt);
  struct {
    uint16_t limit;
    uint64_t base;
  } __attribute__((packed)) idtr = {sizeof idt - 1, (uint64_t)idt};
  __asm__ volatile("lidt %0" : : "m"(idtr));
}

/* ---- 8259 PIC ---- */

void pic_init(uint8_t master_mask, uint8_t slave_mask) {
  outb(PIC1_CMD, 0x11); /* ICW1: edge triggered, cascade, ICW4 follows */
  outb(PIC2_CMD, 0x11);
  outb(PIC1_DATA, PIC_VECTOR_BASE); /* ICW2: vector base */
  outb(PIC2_DATA, PIC_VECTOR_BASE + 8);
  outb(PIC1_DATA, 0x04); /* ICW3: slave on IRQ 2 */
  outb(PIC2_DATA, 0x02); /* ICW3: cascade identity */
  outb(PIC1_DATA, 0x01); /* ICW4: 8086 mode, normal EOI */
  outb(PIC2_DATA, 0x01);
  outb(PIC1_DATA, master_mask);
  outb(PIC2_DATA, slave_mask);
}

void pic_eoi(int irq) {
  if (irq >= 8) outb(PIC2_CMD, 0x20);
  outb(PIC1_CMD, 0x20);
}
