/*
 * mmio_exits: the guest of bench/mmio_exits. Times nothing itself: it prints a
 * marker line on COM1 before and after each phase, and the host timestamps the
 * markers as they arrive.
 *
 *   reads   N 32-bit reads of InterruptStatus (0x60) of the first virtio-mmio
 *           device (0xc0001000: the VM is given one device, the entropy one)
 *   writes  N 32-bit writes of 0 to its InterruptACK (0x64)
 *   floor   N 32-bit reads of an address no device claims (0xc0000800): the
 *           cost of an MMIO exit without a device behind it
 *
 * N comes from the command line (mmio_exits.n=N, default 200000). Then it
 * resets through the i8042, which ends the VMM with exit 0.
 *
 * Entered like a 64-bit Linux kernel (long mode, first GiB identity mapped,
 * RSI = zero page). Owns its entry (bench/guests/common has no sources): sets
 * a stack and maps [3 GiB, 4 GiB) with one uncached 2 MiB page at 3 GiB.
 * Built by tests/helpers/guest_build.ts with sourceDir = bench/guests; no
 * x87/SSE (kvm_pvm cannot emulate them).
 */
typedef unsigned char uint8_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;

#define COM1 0x3f8
#define UART_LSR 5
#define UART_LSR_THRE 0x20
#define ZP_CMD_LINE_PTR 0x228
#define CMDLINE_MAX 2048
#define DEFAULT_N 200000

#define MMIO_GIB 0xc0000000UL
#define VIRTIO0 0xc0001000UL /* Firecracker's first virtio-mmio window */
#define INTERRUPT_STATUS 0x60
#define INTERRUPT_ACK 0x64
#define UNCLAIMED (MMIO_GIB + 0x800) /* between the boot timer (off here) and the first device */

/* PD entry: present, writable, write-through, cache-disabled, 2 MiB page. */
#define PDE_2M_UC 0x9bUL
#define PTE_ADDR_MASK 0x000ffffffffff000UL

static uint64_t mmio_pd[512] __attribute__((aligned(4096)));

static inline void outb(uint32_t port, uint8_t v) { __asm__ volatile("outb %0, %w1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint32_t port) {
  uint8_t v;
  __asm__ volatile("inb %w1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

static void puts_(const char *s) {
  for (; *s; s++) {
    while (!(inb(COM1 + UART_LSR) & UART_LSR_THRE)) {
    }
    outb(COM1, (uint8_t)*s);
  }
}

/* The value of " mmio_exits.n=" on the command line, or DEFAULT_N. */
static uint64_t count_from_cmdline(const uint8_t *zero_page) {
  static const char key[] = "mmio_exits.n=";
  uint32_t ptr = *(const volatile uint32_t *)(zero_page + ZP_CMD_LINE_PTR);
  if (ptr == 0 || ptr >= 0x40000000u) return DEFAULT_N;
  const char *s = (const char *)(uint64_t)ptr;
  for (uint32_t i = 0; i < CMDLINE_MAX && s[i]; i++) {
    if (i > 0 && s[i - 1] != ' ') continue;
    uint32_t k = 0;
    while (key[k] && s[i + k] == key[k]) k++;
    if (key[k]) continue;
    uint64_t v = 0;
    for (const char *p = s + i + k; *p >= '0' && *p <= '9'; p++) v = v * 10 + (uint64_t)(*p - '0');
    return v;
  }
  return DEFAULT_N;
}

static void map_mmio_gib(void) {
  uint64_t cr3;
  __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
  uint64_t *pml4 = (uint64_t *)(cr3 & PTE_ADDR_MASK);
  uint64_t *pdpt = (uint64_t *)(pml4[0] & PTE_ADDR_MASK);
  mmio_pd[0] = MMIO_GIB | PDE_2M_UC;
  pdpt[3] = (uint64_t)mmio_pd | 3; /* present, writable */
  __asm__ volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
}

void guest_main(const uint8_t *zero_page) {
  uint64_t n = count_from_cmdline(zero_page);
  map_mmio_gib();
  volatile uint32_t *status = (volatile uint32_t *)(VIRTIO0 + INTERRUPT_STATUS);
  volatile uint32_t *ack = (volatile uint32_t *)(VIRTIO0 + INTERRUPT_ACK);
  volatile uint32_t *unclaimed = (volatile uint32_t *)UNCLAIMED;
  uint32_t sink = 0;

  puts_("mmio_exits: reads\n");
  for (uint64_t i = 0; i < n; i++) sink |= *status;
  puts_("mmio_exits: writes\n");
  for (uint64_t i = 0; i < n; i++) *ack = 0;
  puts_("mmio_exits: floor\n");
  for (uint64_t i = 0; i < n; i++) sink |= *unclaimed;
  puts_(sink ? "mmio_exits: end (status was not 0)\n" : "mmio_exits: end\n");

  while (!(inb(COM1 + UART_LSR) & UART_LSR_THRE)) {
  }
  outb(0x64, 0xfe); /* i8042 reset: the VMM exits 0 */
  for (;;) __asm__ volatile("cli; hlt");
}

/* Entry: a stack (the link script reserves 16 KiB after .bss), then guest_main(zero page). */
__asm__(
    "  .section .text.start, \"ax\"\n"
    "  .globl _start\n"
    "_start:\n"
    "  cli\n"
    "  cld\n"
    "  lea __stack_top(%rip), %rsp\n"
    "  mov %rsi, %rdi\n"
    "  call guest_main\n"
    "1: cli\n"
    "  hlt\n"
    "  jmp 1b\n"
    "  .text\n");
