/*
 * entry.S - the doors between user space and the kernel: SYSCALL,
 * interrupts and exceptions, and the way back.  This is the KPTI
 * trampoline.
 *
 * Why a trampoline?  With KPTI (pti=on) user code runs on the USER page
 * tables, which map the user half of the address space plus, of the
 * kernel, only this section (.entry.text) and the cpu_entry_area (GDT,
 * IDT, TSS + per-CPU entry data, entry stack).  A Meltdown-style attack
 * cannot read kernel memory that simply is not mapped.  But then the
 * first kernel instructions after SYSCALL or an interrupt run on the
 * user page tables too: they must switch CR3 to the kernel page tables
 * before touching anything else (the kernel stack, C code, the direct
 * map), and the last instructions before SYSRET/IRET must switch back
 * after the kernel stack has been left.  Everything those instructions
 * touch is in the cpu_entry_area or right here.
 *
 * CR3 values (see tlb.c):  kernel CR3 = PGD | kernel PCID (1..6)
 *                          user CR3   = kernel CR3 | 0x1800
 *   bit 12 (0x1000) selects the user PGD, 4 KiB above the kernel PGD;
 *   bit 11 (0x800) selects the user PCID, so user and kernel
 *   translations live side by side in the TLB.  Without PCID, only
 *   bit 12 is used and every CR3 write flushes the TLB.
 * GS: in the kernel, GS base = the per-CPU entry page (entry.h); SWAPGS
 * exchanges it with the user's GS base at each crossing.
 */
#include "entry.h"

#define ENOSYS 38

/* SWITCH_TO_KERNEL_CR3: user PGD -> kernel PGD.  The kernel PCID's TLB
 * entries are still valid (nothing changed them while we were in user
 * space), so with PCID we set NOFLUSH (bit 63): keep them. */
.macro SWITCH_TO_KERNEL_CR3 scratch
	testb $CPU_PTI, %gs:CPU_FLAGS
	jz .Lend_\@
	movq %cr3, \scratch
	testb $CPU_PCID, %gs:CPU_FLAGS
	jz .Lclear_\@
	btsq $X86_CR3_PCID_NOFLUSH_BIT, \scratch
.Lclear_\@:
	andq $(~PTI_USER_PGTABLE_AND_PCID_MASK), \scratch
	movq \scratch, %cr3
.Lend_\@:
.endm

/* SWITCH_TO_USER_CR3: kernel PGD -> user PGD.  With PCID, keep the user
 * PCID's TLB entries (NOFLUSH) unless the kernel changed a user mapping
 * meanwhile and asked, in user_pcid_flush_mask, for this user PCID to be
 * flushed: then write CR3 without NOFLUSH, which flushes it. */
.macro SWITCH_TO_USER_CR3 scratch, scratch2
	testb $CPU_PTI, %gs:CPU_FLAGS
	jz .Lend_\@
	movq %cr3, \scratch
	testb $CPU_PCID, %gs:CPU_FLAGS
	jz .Lpgd_\@
	movq \scratch, \scratch2
	andq $0x7ff, \scratch2                  /* kernel PCID = ASID + 1 */
	btq \scratch2, %gs:CPU_USER_PCID_FLUSH_MASK
	jnc .Lnoflush_\@
	btrq \scratch2, %gs:CPU_USER_PCID_FLUSH_MASK
	jmp .Lpcid_\@
.Lnoflush_\@:
	btsq $X86_CR3_PCID_NOFLUSH_BIT, \scratch
.Lpcid_\@:
	orq $(1 << PTI_USER_PCID_BIT), \scratch
.Lpgd_\@:
	orq $(1 << PTI_USER_PGTABLE_BIT), \scratch
	movq \scratch, %cr3
.Lend_\@:
.endm

/* pt_regs: the general registers below the hardware frame (entry.h). */
.macro PUSH_REGS
	pushq %rdi
	pushq %rsi
	pushq %rdx
	pushq %rcx
	pushq %rax
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
.endm
.macro POP_REGS_EXCEPT_RDI
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rax
	popq %rcx
	popq %rdx
	popq %rsi
.endm

	.section .entry.text, "ax"

/*
 * SYSCALL from user space.  The CPU has put the user RIP in RCX and
 * RFLAGS in R11, cleared IF (MSR_SYSCALL_MASK) and loaded the kernel CS.
 * It has NOT switched stacks: RSP is still the user's, and CR3 still
 * points at the user page tables.
 */
	.globl entry_SYSCALL_64
entry_SYSCALL_64:
	swapgs                                  /* GS -> per-CPU entry page */
	movq %rsp, %gs:TSS_sp2                  /* user RSP -> scratch slot */
	SWITCH_TO_KERNEL_CR3 scratch=%rsp       /* RSP is free to use now */
	movq %gs:CPU_TOP_OF_STACK, %rsp         /* this process's kernel stack */
	/* Build pt_regs: first what the hardware would have pushed ... */
	pushq $GDT_USER_DS                      /* ss */
	pushq %gs:TSS_sp2                       /* sp */
	pushq %r11                              /* flags */
	pushq $GDT_USER_CS                      /* cs */
	pushq %rcx                              /* ip */
	pushq %rax                              /* orig_ax: system call number */
	pushq $VEC_SYSCALL                      /* vector */
	PUSH_REGS                               /* ... then the registers */
	movq %rsp, %rdi
	call do_syscall_64
	/* fall through */

	.globl syscall_return_via_sysret
syscall_return_via_sysret:
	/* SYSRET takes RIP from RCX and RFLAGS from R11. */
	movq PTREGS_IP(%rsp), %rcx
	movq %rcx, 11*8(%rsp)
	movq PTREGS_FLAGS(%rsp), %r11
	movq %r11, 6*8(%rsp)
	POP_REGS_EXCEPT_RDI
	/* Leave the kernel stack for the trampoline stack (TSS.sp0), which
	 * the user page tables map: after the CR3 switch the kernel stack
	 * is gone. */
	movq %rsp, %rdi                         /* -> rdi vector orig_ax ip cs flags sp ss */
	movq %gs:TSS_sp0, %rsp
	pushq 6*8(%rdi)                         /* user RSP */
	pushq (%rdi)                            /* user RDI */
	pushq %rax
	SWITCH_TO_USER_CR3 %rdi, %rax
	popq %rax
	popq %rdi
	popq %rsp
	swapgs
	sysretq
	.globl entry_SYSCALL_64_end
entry_SYSCALL_64_end:

/*
 * Interrupts and exceptions.  One stub per vector (16 bytes apart)
 * pushes a dummy error code when the CPU pushes none, then the vector.
 * From user space the CPU has switched to TSS.sp0 = the trampoline stack
 * (in the cpu_entry_area), still on the user page tables.
 */
	.balign 16
	.globl irq_entries_start
irq_entries_start:
	.set vec, 0
	.rept 48
	.balign 16
	.if !((vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30))
	pushq $0                                /* no error code from the CPU */
	.endif
	pushq $vec
	jmp common_entry
	.set vec, vec + 1
	.endr

	.globl common_entry
common_entry:                                   /* vector error ip cs flags sp ss */
	testb $3, 24(%rsp)                      /* interrupted CPL (CS.RPL) */
	jz from_kernel
	swapgs
	pushq %rdi
	SWITCH_TO_KERNEL_CR3 %rdi
	/* Copy the frame from the trampoline stack to the kernel stack. */
	movq %rsp, %rdi                         /* rdi vector error ip cs flags sp ss */
	movq %gs:CPU_TOP_OF_STACK, %rsp
	pushq 7*8(%rdi)                         /* ss */
	pushq 6*8(%rdi)                         /* sp */
	pushq 5*8(%rdi)                         /* flags */
	pushq 4*8(%rdi)                         /* cs */
	pushq 3*8(%rdi)                         /* ip */
	pushq 2*8(%rdi)                         /* error code -> orig_ax */
	pushq 1*8(%rdi)                         /* vector */
	movq (%rdi), %rdi
	PUSH_REGS
	movq %rsp, %rdi
	call trap
	jmp restore_regs_and_return_to_usermode

from_kernel:                                    /* no stack or CR3 switch needed */
	PUSH_REGS
	movq %rsp, %rdi
	call trap
	POP_REGS_EXCEPT_RDI
	popq %rdi
	addq $16, %rsp                          /* vector, error code */
	iretq

/* Return to user space with IRET (after an interrupt, an exception, or
 * the first time a process runs).  RSP = pt_regs on the kernel stack. */
	.globl restore_regs_and_return_to_usermode
restore_regs_and_return_to_usermode:
	POP_REGS_EXCEPT_RDI
	movq %rsp, %rdi                         /* rdi vector orig_ax ip cs flags sp ss */
	movq %gs:TSS_sp0, %rsp                  /* to the trampoline stack */
	pushq 7*8(%rdi)                         /* ss */
	pushq 6*8(%rdi)                         /* sp */
	pushq 5*8(%rdi)                         /* flags */
	pushq 4*8(%rdi)                         /* cs */
	pushq 3*8(%rdi)                         /* ip */
	pushq (%rdi)                            /* rdi */
	pushq %rax
	SWITCH_TO_USER_CR3 %rdi, %rax
	popq %rax
	popq %rdi
	swapgs
	iretq

/* A new process starts here (swtch "returns" to it), with RSP at the
 * pt_regs that proc.c prepared. */
	.globl ret_from_fork
ret_from_fork:
	jmp restore_regs_and_return_to_usermode
