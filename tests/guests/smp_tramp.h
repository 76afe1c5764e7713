/* Layout of the SMP trampoline page, shared by smp.c and smp_tramp.S. */
#ifndef SPARKLER_SMP_TRAMP_H
#define SPARKLER_SMP_TRAMP_H

/* Physical address of the real-mode trampoline (page aligned, below 1 MiB,
 * clear of Firecracker's boot structures: 0x500-0xbfff and 0x20000+). */
#define TRAMP_BASE 0x10000
#define TRAMP_SIPI_VECTOR (TRAMP_BASE >> 12)

/* Offsets inside the trampoline segment (CS = DS = SS = TRAMP_BASE >> 4). */
#define TRAMP_CODE_MAX 0xf00   /* the code must end before the shared words */
#define TRAMP_ARRIVED 0xf00    /* u16: APs that started (lock xadd) */
#define TRAMP_DONE 0xf02       /* u16: APs that finished printing */
#define TRAMP_LOCK 0xf04       /* u8: UART spinlock (xchg) */
#define TRAMP_STACKS 0x1000    /* AP n's stack top: TRAMP_STACKS + n * TRAMP_STACK_SIZE */
#define TRAMP_STACK_SIZE 0x200

#endif
