/*
 * proc.c - processes and the round-robin scheduler.
 *
 * Every process has its own address space (mm.c) and its own kernel
 * stack.  The kernel runs with interrupts off, so a process is only
 * preempted in user mode: the timer interrupt (trap.c) calls schedule(),
 * which picks the next runnable process, switches address space
 * (switch_mm: CR3 and PCID) and kernel stack (swtch.S).
 */
#include "defs.h"
#include "cpu.h"
#include "mmu.h"
#include "port.h"
#include "proc.h"
#include "x86.h"

#define NPROC 64
static struct proc procs[NPROC];
struct proc *current;
static int next_pid = 1;
static u64 boot_saved_rsp;      /* where the boot stack's RSP goes, forever */

extern char __user_image_start[], __user_image_end[];
extern char ret_from_fork[];
void swtch(u64 *save_rsp, u64 new_rsp);

struct proc *proc_create(const char *name, u64 entry, u64 a0, u64 a1, u64 a2)
{
	struct proc *p = NULL;
	for (int i = 0; i < NPROC && !p; i++)
		if (procs[i].state == P_UNUSED)
			p = &procs[i];
	if (!p)
		panic("proc_create: too many processes");
	memset(p, 0, sizeof(*p));
	p->pid = next_pid++;
	strncpy_z(p->name, name, sizeof(p->name));

	/* Address space: the user programs' text (shared, read-only) at
	 * USER_TEXT, and a stack below USER_STACK_TOP. */
	struct mm *mm = &p->mm;
	if (mm_init(mm))
		panic("proc_create: out of memory");
	for (char *va = __user_image_start; va < __user_image_end; va += PAGE_SIZE)
		mm_map_page(mm, USER_TEXT + (va - __user_image_start), __pa(va), PAGE_USER_RX);
	for (int i = 1; i <= USER_STACK_PAGES; i++) {
		void *page = alloc_page_zeroed();
		if (!page || mm_map_page(mm, USER_STACK_TOP - i * PAGE_SIZE, __pa(page), PAGE_USER_RW))
			panic("proc_create: out of memory");
	}

	/* Kernel stack: the user register frame at the top, as if the
	 * process had entered the kernel; below it a swtch() frame that
	 * "returns" to ret_from_fork, which leaves through the trampoline. */
	u64 kstack = alloc_pages(1);
	if (!kstack)
		panic("proc_create: out of memory");
	p->kstack = (u64)__va(kstack);
	struct pt_regs *regs = (struct pt_regs *)(p->kstack + KSTACK_SIZE) - 1;
	memset(regs, 0, sizeof(*regs));
	regs->ip = entry;
	regs->cs = GDT_USER_CS;
	regs->flags = X86_EFLAGS_IF;
	regs->sp = USER_STACK_TOP - 8;   /* as if called: RSP+8 16-byte aligned */
	regs->ss = GDT_USER_DS;
	regs->rdi = a0;
	regs->rsi = a1;
	regs->rdx = a2;
	u64 *sp = (u64 *)regs;
	*--sp = (u64)ret_from_fork;
	for (int i = 0; i < 6; i++)     /* rbp rbx r12 r13 r14 r15 */
		*--sp = 0;
	p->saved_rsp = (u64)sp;
	p->state = P_RUNNABLE;

	emu_announce(EMU_OP_PROC_NEW, p->pid, __pa(mm->pgd));
	printk("exec: pid %d %s, pgd at phys 0x%lx\n", p->pid, p->name, __pa(mm->pgd));
	return p;
}

int nr_alive(void)
{
	int n = 0;
	for (int i = 0; i < NPROC; i++)
		n += procs[i].state == P_RUNNABLE;
	return n;
}

/* Free what dead processes leave behind: never the kernel stack we are
 * on, nor the page tables CR3 points at.  (Freeing in do_exit() would
 * first need a switch to swapper_pg_dir: an extra CR3 write, with the
 * PCID-0 context the kernel otherwise never uses after boot.) */
static void reap(void)
{
	for (int i = 0; i < NPROC; i++) {
		struct proc *p = &procs[i];
		if (p->state == P_DEAD && p != current) {
			mm_destroy(&p->mm);
			free_pages(__pa(p->kstack), 1);
			p->state = P_UNUSED;
		}
	}
}

static struct proc *pick_next(void)
{
	int start = current ? (int)(current - procs) + 1 : 0;
	for (int i = 0; i < NPROC; i++) {
		struct proc *p = &procs[(start + i) % NPROC];
		if (p->state == P_RUNNABLE)
			return p;
	}
	return NULL;
}

void schedule(void)
{
	struct proc *next = pick_next();
	if (!next) {
		printk("reboot: Power down\n");
		poweroff(0);            /* the last process has exited */
	}
	if (next == current)
		return;
	struct proc *prev = current;
	switch_mm(&next->mm);
	this_cpu->top_of_stack = next->kstack + KSTACK_SIZE;
	current = next;
	swtch(prev ? &prev->saved_rsp : &boot_saved_rsp, next->saved_rsp);
	reap();                         /* back in prev, some time later */
}

void scheduler_start(void)
{
	schedule();
	panic("scheduler_start: no process to run");
}

void do_exit(int code)
{
	struct proc *p = current;
	(void)code;
	p->state = P_DEAD;              /* reap() frees it once we have left */
	outl(EMU_PORT_CMD, (p->pid << 8) | EMU_OP_PROC_EXIT);
	schedule();
	panic("do_exit: dead process scheduled");
}
