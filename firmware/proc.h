/* proc.h - processes, address spaces, registers saved on kernel entry. */
#ifndef PROC_H
#define PROC_H
#include "types.h"

/* The registers saved on the kernel stack at every entry (entry.S), in
 * Linux's pt_regs order, plus the vector of the door we came through. */
struct pt_regs {
	u64 r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	u64 rax, rcx, rdx, rsi, rdi;
	u64 vector;     /* 0..31 exception, 0x20.. IRQ, VEC_SYSCALL */
	u64 orig_ax;    /* error code, or the system call number */
	u64 ip, cs, flags, sp, ss;  /* the hardware interrupt frame */
};

#define MAX_VMAS 16
struct vma { u64 start, end; };

/* An address space (Linux: mm_struct). */
struct mm {
	pte_t *pgd;        /* kernel PGD; with PTI the user PGD is pgd + 512 */
	u64 ctx_id;        /* unique, never reused: names this mm in the ASID slots */
	u64 tlb_gen;       /* bumped whenever a user mapping is removed */
	int nvma;
	struct vma vma[MAX_VMAS];   /* mmap() areas, sorted */
};

enum proc_state { P_UNUSED, P_RUNNABLE, P_DEAD };

struct proc {
	int pid;
	enum proc_state state;
	char name[16];
	struct mm mm;
	u64 kstack;        /* base of the kernel stack (direct map) */
	u64 saved_rsp;     /* kernel RSP while switched out (swtch) */
};

extern struct proc *current;

#endif
