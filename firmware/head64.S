/*
 * head64.S - first 64-bit code at the kernel's linked address.
 *
 * Kernel-text KASLR: kaslr_early() (kaslr.c) picks a random offset in
 * 2 MiB steps and maps the image there too (in the early page tables).
 * The image is linked at one address; moving it means patching every
 * absolute address in it.  The build (relocs.c) lists those places in
 * the __relocs table; relocate_kernel adds the offset to each, then we
 * jump to the same code at its new address and never come back.
 */
	.text
	.globl start64_high
start64_high:
	leaq boot_stack_top(%rip), %rsp
	xorl %ebp, %ebp
	call kaslr_early                /* RAX = offset (0 with nokaslr) */
	movq %rax, %r12
	movq %rax, %rdi
	call relocate_kernel
	movq %cr3, %rax                 /* flush: new early mappings */
	movq %rax, %cr3
	leaq 1f(%rip), %rax
	addq %r12, %rax
	jmp *%rax                       /* continue at the new address */
1:	leaq boot_stack_top(%rip), %rsp /* RIP-relative: the new stack */
	call start_kernel
2:	hlt
	jmp 2b

/*
 * relocate_kernel(RDI = offset).  Each __relocs entry is a 32-bit offset
 * from _text; bit 31 set means a 64-bit field, else a 32-bit
 * sign-extended one.  Only RIP-relative addressing here: this code must
 * not depend on the very immediates it is patching.
 */
	.globl relocate_kernel
relocate_kernel:
	testq %rdi, %rdi
	jz 3f
	leaq __relocs_start(%rip), %rsi
	leaq __relocs_end(%rip), %rcx
	leaq _text(%rip), %r8
1:	cmpq %rcx, %rsi
	jae 3f
	movl (%rsi), %eax
	addq $4, %rsi
	btrl $31, %eax
	jc 2f
	addl %edi, (%r8, %rax)
	jmp 1b
2:	addq %rdi, (%r8, %rax)
	jmp 1b
3:	ret
