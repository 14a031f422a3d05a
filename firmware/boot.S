/*
 * boot.S - from the multiboot loader's 32-bit protected mode to 64-bit
 * long mode.
 *
 * The loader (QEMU -kernel, emu64, GRUB) puts this image at physical
 * LOAD_PHYS, using the address fields of the multiboot header below, and
 * jumps to mb_entry with paging off, EAX = 0x2BADB002 and EBX = the
 * physical address of the multiboot information structure.
 *
 * The image is linked at its final virtual address (0xffffffff81000000),
 * so this 32-bit code must name every symbol by its PHYSICAL address:
 * PA(sym) = sym - __START_KERNEL_map.  Nothing here may be relocated by
 * KASLR (relocs.c only relocates 64-bit and sign-extended references).
 *
 * Early page tables (thrown away later by vm.c):
 *   identity map of the first 4 GiB (so we can read multiboot data and
 *     run the next few instructions at their physical address), and
 *   __START_KERNEL_map .. +1 GiB -> physical 0 .. 1 GiB (so the kernel
 *     can run at its linked address),
 * all with 2 MiB pages, which every x86-64 CPU has.
 */
#include "memlayout.h"

#define PA(x)           ((x) - __START_KERNEL_map)
#define MB_MAGIC        0x1BADB002
#define MB_FLAGS        0x00010002      /* bit 1: memory map, bit 16: address fields */
#define MB_BOOT_MAGIC   0x2BADB002
#define PTE_LARGE       0x83            /* present, writable, 2 MiB page */
#define PTE_TABLE       0x03            /* present, writable */

	.section .head.text, "ax"
	.code32
	.balign 4
mb_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
	.long PA(mb_header)             /* header_addr */
	.long PA(_text)                 /* load_addr: start of the image */
	.long PA(_edata)                /* load_end_addr: end of initialised data */
	.long PA(_end)                  /* bss_end_addr: loader zeroes up to here */
	.long PA(mb_entry)              /* entry_addr */

	.globl mb_entry
mb_entry:
	cli
	cld
	movl $PA(msg_magic), %esi
	cmpl $MB_BOOT_MAGIC, %eax
	jne boot_fail
	movl %ebx, %ebp                 /* multiboot info, physical */

	/* Zero .bss ourselves: loaders differ in whether they do. */
	movl $PA(__bss_start), %edi
	movl $PA(_end), %ecx
	subl %edi, %ecx
	shrl $2, %ecx
	xorl %eax, %eax
	rep stosl
	movl %ebp, PA(mb_info_phys)
	movl $PA(boot_stack_top), %esp

	/* Long mode needs CPUID 0x80000001 EDX[29]. */
	movl $PA(msg_nolm), %esi
	movl $0x80000000, %eax
	cpuid
	cmpl $0x80000001, %eax
	jb boot_fail
	movl $0x80000001, %eax
	cpuid
	btl $29, %edx
	jnc boot_fail
	movl %edx, %ebx                 /* EDX[20] = NX, used below */

	/* 5-level paging when "la57" is on the command line AND CPUID.7.ECX[16]. */
	xorl %edi, %edi                 /* EDI = 1: use 5-level paging */
	testl $4, (%ebp)                /* multiboot flags bit 2: cmdline valid */
	jz 1f
	pushl %edi
	movl 16(%ebp), %edi
	call has_la57_token
	popl %edi
	testl %eax, %eax
	jz 1f
	pushl %ebx
	xorl %eax, %eax
	cpuid
	cmpl $7, %eax
	jb 7f
	movl $7, %eax
	xorl %ecx, %ecx
	cpuid
	btl $16, %ecx
	jnc 7f
	movl $1, %edi
7:	popl %ebx
1:
	/* Identity map: 2048 x 2 MiB = 4 GiB. */
	movl $PA(early_pd_ident), %edx
	movl $PTE_LARGE, %eax
	movl $2048, %ecx
2:	movl %eax, (%edx)
	addl $0x200000, %eax
	addl $8, %edx
	loop 2b
	/* Kernel map: 512 x 2 MiB from physical 0 at __START_KERNEL_map. */
	movl $PA(early_pd_k), %edx
	movl $PTE_LARGE, %eax
	movl $512, %ecx
3:	movl %eax, (%edx)
	addl $0x200000, %eax
	addl $8, %edx
	loop 3b
	/* Upper levels. */
	movl $PA(early_pd_ident) + PTE_TABLE, %eax
	movl %eax, PA(early_pud_ident)
	addl $0x1000, %eax
	movl %eax, PA(early_pud_ident) + 8
	addl $0x1000, %eax
	movl %eax, PA(early_pud_ident) + 16
	addl $0x1000, %eax
	movl %eax, PA(early_pud_ident) + 24
	movl $PA(early_pd_k) + PTE_TABLE, PA(early_pud_k) + 510*8
	movl $PA(early_pud_ident) + PTE_TABLE, PA(early_pml4)
	movl $PA(early_pud_k) + PTE_TABLE, PA(early_pml4) + 511*8
	movl $PA(early_pml4) + PTE_TABLE, PA(early_pml5)
	movl $PA(early_pml4) + PTE_TABLE, PA(early_pml5) + 511*8

	/* CR4.PAE (and CR4.LA57: it must be set while paging is still off). */
	movl %cr4, %eax
	orl $0x20, %eax
	testl %edi, %edi
	jz 4f
	orl $0x1000, %eax
4:	movl %eax, %cr4
	movl $PA(early_pml4), %eax
	testl %edi, %edi
	jz 5f
	movl $PA(early_pml5), %eax
5:	movl %eax, %cr3

	/* EFER.LME (long mode enable) and EFER.NXE (no-execute bit) if present. */
	movl $0xc0000080, %ecx
	rdmsr
	orl $0x100, %eax
	btl $20, %ebx
	jnc 6f
	orl $0x800, %eax
6:	wrmsr

	/* Paging on (with PE, and WP so the kernel honours read-only pages):
	 * with EFER.LME set this activates long mode (EFER.LMA = 1), in
	 * compatibility mode until we load a 64-bit code segment. */
	movl %cr0, %eax
	orl $0x80010001, %eax
	movl %eax, %cr0
	lgdt PA(boot_gdt_desc)
	ljmp $0x08, $PA(start64_low)

/* has_la57_token(EDI = C string) -> EAX = 1 if the word "la57" occurs. */
has_la57_token:
	movl %edi, %edx
1:	movb (%edi), %al
	testb %al, %al
	jz 3f
	cmpl %edx, %edi
	je 2f
	cmpb $' ', -1(%edi)
	jne 4f
2:	cmpl $0x3735616c, (%edi)        /* "la57" */
	jne 4f
	movb 4(%edi), %al
	testb %al, %al
	jz 5f
	cmpb $' ', %al
	je 5f
4:	incl %edi
	jmp 1b
3:	xorl %eax, %eax
	ret
5:	movl $1, %eax
	ret

/* boot_fail(ESI = message): print it on COM1 and exit QEMU/emu64 with 2. */
boot_fail:
	movw $0x3fd, %dx
1:	inb %dx, %al
	testb $0x20, %al
	jz 1b
	movb (%esi), %al
	testb %al, %al
	jz 2f
	movw $0x3f8, %dx
	outb %al, %dx
	incl %esi
	movw $0x3fd, %dx
	jmp 1b
2:	movw $0xf4, %dx
	movl $2, %eax
	outl %eax, %dx
3:	hlt
	jmp 3b

	.balign 8
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff        /* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff        /* 0x10: data */
boot_gdt_desc:
	.word boot_gdt_desc - boot_gdt - 1
	.long PA(boot_gdt)
msg_magic:
	.asciz "toykernel: not started by a multiboot loader\n"
msg_nolm:
	.asciz "toykernel: this CPU has no long mode\n"

	.code64
/* Now in 64-bit mode, still running at the physical (identity) address.
 * Jump to the linked, high address. */
start64_low:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movabsq $start64_high, %rax
	jmp *%rax

	.section .bss
	.balign 4096
	.globl early_pd_k
early_pml5:      .skip 4096
early_pml4:      .skip 4096
early_pud_ident: .skip 4096
early_pd_ident:  .skip 4 * 4096
early_pud_k:     .skip 4096
early_pd_k:      .skip 4096
boot_stack:      .skip 4 * 4096
	.globl boot_stack_top
boot_stack_top:
	.globl mb_info_phys
	.balign 8
mb_info_phys:    .quad 0
