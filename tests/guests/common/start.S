/*
 * 64-bit entry of every test guest, plus the exception stubs.
 *
 * Entered as the Linux 64-bit boot protocol (Firecracker's setup): long mode,
 * first GiB identity mapped, RSI = zero page, interrupts off, no IDT.
 * Only one CPU may come in here: secondary vCPUs must wait for INIT/SIPI.
 * A second CPU arriving here reports it on COM1 and halts.
 */
	.section .text.start, "ax"
	.code64
	.globl _start
_start:
	cli
	cld
	mov	$1, %eax
	lock xadd %eax, entry_count(%rip)
	test	%eax, %eax
	jnz	.Lsecond_cpu

	mov	%rsi, %r12			/* zero page pointer */

	/* Zero .bss (the VMM should have, but a fresh guest must not rely on it). */
	lea	__bss_start(%rip), %rdi
	lea	__bss_end(%rip), %rcx
1:	cmp	%rcx, %rdi
	jae	2f
	movq	$0, (%rdi)
	add	$8, %rdi
	jmp	1b
2:
	lea	__stack_top(%rip), %rsp
	xor	%ebp, %ebp
	mov	%r12, %rdi
	call	guest_main
	call	guest_reset
3:	cli
	hlt
	jmp	3b

.Lsecond_cpu:
	lea	second_cpu_msg(%rip), %rsi
4:	lodsb
	test	%al, %al
	jz	6f
	mov	%al, %ah
	mov	$0x3fd, %dx
5:	inb	%dx, %al
	test	$0x20, %al
	jz	5b
	mov	%ah, %al
	mov	$0x3f8, %dx
	outb	%al, %dx
	jmp	4b
6:	cli
	hlt
	jmp	6b

/* Exception stubs: push (error code, vector) in a uniform frame and report. */
	.macro EXC_NOERR n
exc_\n:
	pushq	$0
	pushq	$\n
	jmp	exception_common
	.endm
	.macro EXC_ERR n
exc_\n:
	pushq	$\n
	jmp	exception_common
	.endm

	EXC_NOERR 0
	EXC_NOERR 1
	EXC_NOERR 2
	EXC_NOERR 3
	EXC_NOERR 4
	EXC_NOERR 5
	EXC_NOERR 6
	EXC_NOERR 7
	EXC_ERR 8
	EXC_NOERR 9
	EXC_ERR 10
	EXC_ERR 11
	EXC_ERR 12
	EXC_ERR 13
	EXC_ERR 14
	EXC_NOERR 15
	EXC_NOERR 16
	EXC_ERR 17
	EXC_NOERR 18
	EXC_NOERR 19
	EXC_NOERR 20
	EXC_ERR 21
	EXC_NOERR 22
	EXC_NOERR 23
	EXC_NOERR 24
	EXC_NOERR 25
	EXC_NOERR 26
	EXC_NOERR 27
	EXC_NOERR 28
	EXC_ERR 29
	EXC_ERR 30
	EXC_NOERR 31

exception_common:
	mov	(%rsp), %rdi			/* vector */
	mov	8(%rsp), %rsi			/* error code */
	mov	16(%rsp), %rdx			/* faulting RIP */
	and	$-16, %rsp
	call	exception_report
	jmp	3b

	.section .rodata
	.balign 8
	.globl exception_stubs
exception_stubs:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad exc_\n
	.endr
second_cpu_msg:
	.asciz "ERROR: a second CPU entered at the ELF entry point (APs must wait for INIT/SIPI)\n"

	.data
	.balign 4
entry_count:
	.long 0

	.section .note.GNU-stack, "", @progbits
