/*
 * first_insn: the smallest guest that signals Firecracker's boot timer.
 * Used by bench/boot to measure "VMM process start -> first guest instruction".
 *
 * Entered like a 64-bit Linux kernel (long mode, first GiB identity mapped,
 * RSI = zero page). The boot timer lives at 0xc0000000, outside that first
 * GiB: 8 instructions point PDPT[3] at a prebuilt page directory whose
 * entry 0 maps 0xc0000000 (2 MiB page, uncached), and the 10th writes the
 * magic byte 123 there (a few us of emulation on kvm_pvm). Then it resets
 * through the i8042 (outb 0xfe, 0x64), which ends the VMM with exit 0.
 * No stack, no .bss, no serial output.
 * Built by tests/helpers/guest_build.ts with sourceDir = bench/guests (whose
 * common/ holds no sources, so this file owns _start).
 */
	.section .text.start, "ax"
	.code64
	.globl _start
_start:
	mov	%cr3, %rax
	mov	$0x000ffffffffff000, %rdx
	and	%rdx, %rax			/* PML4 */
	mov	(%rax), %rbx
	and	%rdx, %rbx			/* PDPT (Firecracker: 0xa000) */
	lea	mmio_pd+3(%rip), %rcx		/* P | RW */
	mov	%rcx, 24(%rbx)			/* PDPT[3] -> [3 GiB, 4 GiB) */
	mov	%rax, %cr3			/* flush any cached walk */
	mov	$0xc0000000, %edx
	movb	$123, (%rdx)			/* boot timer: the VMM logs Guest-boot-time */
	mov	$0xfe, %al
	outb	%al, $0x64			/* i8042 reset: the VMM exits 0 */
1:	cli
	hlt
	jmp	1b

	.data
	.balign 4096
mmio_pd:
	.quad	0xc0000000 | 0x9b		/* P | RW | PWT | PCD | PS (2 MiB) */
	.fill	511, 8, 0

	.section .note.GNU-stack, "", @progbits
