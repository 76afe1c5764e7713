/*
 * smp: the BSP starts the APs through the in-kernel LAPIC (INIT, SIPI, SIPI)
 * into a real-mode trampoline (smp_tramp.S) and waits for all of them.
 *
 * Command line: cpus=N (the vcpu_count the VMM was given; default 1).
 * Output:
 *   smp: BSP up, apic id 0, starting N-1 APs
 *   AP<n> up apic=<id>     (one per AP, n = arrival order 1..N-1)
 *   SMP OK <N> ...          or   SMP TIMEOUT arrived=<a> done=<d> expected=<N-1>
 * Then resets through the i8042.
 */
#include "common/guest.h"
#include "smp_tramp.h"

extern const uint8_t smp_tramp_start[], smp_tramp_end[];

#define LAPIC_ID 0x20
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_DELIVERY_PENDING (1u << 12)

/* Cycles to wait for the APs: ~7.7 s at this host's 2.6 GHz TSC, more on slower ones. */
#define WAIT_TSC_CYCLES 20000000000UL

static uint32_t lapic_read(uint32_t reg) { return mmio_read32(LAPIC_ADDR + reg); }
static void lapic_write(uint32_t reg, uint32_t v) { mmio_write32(LAPIC_ADDR + reg, v); }

static int lapic_wait_idle(void) {
  for (int i = 0; i < 100000; i++) {
    if (!(lapic_read(LAPIC_ICR_LO) & ICR_DELIVERY_PENDING)) return 1;
    cpu_relax();
  }
  return 0;
}

static void send_ipi(uint32_t apic_id, uint32_t icr_lo) {
  lapic_write(LAPIC_ICR_HI, apic_id << 24);
  lapic_write(LAPIC_ICR_LO, icr_lo);
  if (!lapic_wait_idle()) {
    serial_puts("smp: ICR delivery still pending for apic ");
    serial_put_dec(apic_id);
    serial_puts("\n");
  }
}

void guest_main(const uint8_t *zero_page) {
  char buf[16];
  const char *cmdline = boot_cmdline(zero_page, 0);
  const char *cpus_arg = cmdline_value(cmdline, "cpus", buf, sizeof buf);
  uint64_t ncpus = cpus_arg ? parse_dec(cpus_arg) : 1;
  if (ncpus < 1) ncpus = 1;
  if (ncpus > 64) ncpus = 64;

  idt_init();
  map_mmio_gib();
  uint32_t bsp_id = lapic_read(LAPIC_ID) >> 24;
  serial_puts("smp: BSP up, apic id ");
  serial_put_dec(bsp_id);
  serial_puts(", starting ");
  serial_put_dec(ncpus - 1);
  serial_puts(" APs\n");

  size_t tramp_len = (size_t)(smp_tramp_end - smp_tramp_start);
  if (tramp_len > TRAMP_CODE_MAX) {
    serial_puts("smp: trampoline too large\n");
    guest_reset();
  }
  volatile uint8_t *tramp = (volatile uint8_t *)TRAMP_BASE;
  memcpy((void *)TRAMP_BASE, smp_tramp_start, tramp_len);
  volatile uint16_t *arrived = (volatile uint16_t *)(TRAMP_BASE + TRAMP_ARRIVED);
  volatile uint16_t *done = (volatile uint16_t *)(TRAMP_BASE + TRAMP_DONE);
  *arrived = 0;
  *done = 0;
  tramp[TRAMP_LOCK] = 0;
  __asm__ volatile("mfence" ::: "memory");

  /* Software-enable the LAPIC (spurious vector 0xff). */
  lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | 0x1ff);

  for (uint32_t id = 0; id < ncpus; id++) {
    if (id == bsp_id) continue;
    send_ipi(id, 0x0000c500); /* INIT, level triggered, assert */
    send_ipi(id, 0x00008500); /* INIT de-assert */
    send_ipi(id, 0x00000600 | TRAMP_SIPI_VECTOR); /* STARTUP */
    send_ipi(id, 0x00000600 | TRAMP_SIPI_VECTOR); /* STARTUP again, as the MP spec says */
  }

  uint64_t expected = ncpus - 1;
  uint64_t t0 = rdtsc(), waited;
  while (*done < expected && rdtsc() - t0 <= WAIT_TSC_CYCLES) cpu_relax();
  waited = rdtsc() - t0;

  if (*done == expected && *arrived == expected) {
    serial_puts("SMP OK ");
    serial_put_dec(ncpus);
    serial_puts(" (waited ");
    serial_put_dec(waited / 1000000);
    serial_puts(" Mcycles)\n");
  } else {
    serial_puts("SMP TIMEOUT arrived=");
    serial_put_dec(*arrived);
    serial_puts(" done=");
    serial_put_dec(*done);
    serial_puts(" expected=");
    serial_put_dec(expected);
    serial_puts("\n");
  }
  guest_reset();
}
