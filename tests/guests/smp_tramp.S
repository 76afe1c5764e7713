/*
 * Real-mode AP trampoline for the smp guest. The BSP copies the bytes between
 * smp_tramp_start and smp_tramp_end to TRAMP_BASE and sends INIT/SIPI/SIPI
 * with vector TRAMP_BASE >> 12, so an AP starts here with CS = TRAMP_BASE >> 4,
 * IP = 0 in 16-bit real mode. All data references are offsets in that segment.
 *
 * Each AP: takes a ticket n (lock xadd on TRAMP_ARRIVED, 1-based), reads its
 * initial APIC ID (CPUID.1:EBX[31:24]), prints "AP<n> up apic=<id>" under the
 * UART spinlock, increments TRAMP_DONE, then cli; hlt forever.
 */
#include "smp_tramp.h"

	.section .rodata.smp_tramp, "a"
	.code16
	.balign 16
	.globl smp_tramp_start, smp_tramp_end
smp_tramp_start:
	cli
	cld
	mov	%cs, %ax
	mov	%ax, %ds
	mov	%ax, %ss
	mov	$1, %ax
	lock xaddw %ax, TRAMP_ARRIVED
	inc	%ax				/* n: 1, 2, ... */
	mov	%ax, %bp
	shl	$9, %ax				/* n * TRAMP_STACK_SIZE */
	add	$TRAMP_STACKS, %ax
	mov	%ax, %sp

	mov	$1, %eax
	cpuid
	shr	$24, %ebx
	mov	%bx, %di			/* initial APIC ID */

1:	mov	$1, %al				/* UART spinlock */
	xchgb	%al, TRAMP_LOCK
	test	%al, %al
	jz	2f
	pause
	jmp	1b
2:
	mov	$(msg_ap - smp_tramp_start), %si
	call	puts16
	mov	%bp, %ax
	call	putdec16
	mov	$(msg_up - smp_tramp_start), %si
	call	puts16
	mov	%di, %ax
	call	putdec16
	mov	$'\n', %al
	call	putc16
	movb	$0, TRAMP_LOCK
	lock incw TRAMP_DONE
3:	cli
	hlt
	jmp	3b

/* putc16: AL to COM1 after LSR.THRE. */
putc16:
	push	%dx
	push	%ax
	mov	$0x3fd, %dx
1:	inb	%dx, %al
	test	$0x20, %al
	jz	1b
	pop	%ax
	mov	$0x3f8, %dx
	outb	%al, %dx
	pop	%dx
	ret

/* puts16: NUL-terminated string at DS:SI. */
puts16:
	lodsb
	test	%al, %al
	jz	1f
	call	putc16
	jmp	puts16
1:	ret

/* putdec16: AX in decimal (clobbers AX, BX, CX, DX). */
putdec16:
	xor	%cx, %cx
	mov	$10, %bx
1:	xor	%dx, %dx
	div	%bx
	push	%dx
	inc	%cx
	test	%ax, %ax
	jnz	1b
2:	pop	%ax
	add	$'0', %al
	call	putc16
	loop	2b
	ret

msg_ap:	.asciz "AP"
msg_up:	.asciz " up apic="
smp_tramp_end:

	.code64
	.section .note.GNU-stack, "", @progbits
