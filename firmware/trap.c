/*
 * trap.c - interrupts and exceptions, after entry.S has saved pt_regs.
 *
 * A fault in user mode kills the process with Linux's message; a fault
 * in the kernel is a bug: print an oops with the registers and stop the
 * machine with a non-zero exit code.
 */
#include "defs.h"
#include "entry.h"
#include "mmu.h"
#include "proc.h"
#include "x86.h"

#define VEC_PF    14
#define VEC_TIMER 0x20

static const char *const exc_name[32] = {
	"divide error", "debug", "NMI", "int3", "overflow", "bounds",
	"invalid opcode", "device not available", "double fault",
	"coprocessor segment overrun", "invalid TSS", "segment not present",
	"stack segment", "general protection fault", "page fault", "reserved",
	"x87 floating point", "alignment check", "machine check", "SIMD floating point",
	"virtualization", "control protection",
};

extern char __user_image_start[], __user_image_end[];

void show_regs(struct pt_regs *r)
{
	printk("RIP: %04lx:%016lx\n", r->cs, r->ip);
	printk("RSP: %04lx:%016lx EFLAGS: %08lx\n", r->ss, r->sp, r->flags);
	printk("RAX: %016lx RBX: %016lx RCX: %016lx\n", r->rax, r->rbx, r->rcx);
	printk("RDX: %016lx RSI: %016lx RDI: %016lx\n", r->rdx, r->rsi, r->rdi);
	printk("RBP: %016lx R08: %016lx R09: %016lx\n", r->rbp, r->r8, r->r9);
	printk("R10: %016lx R11: %016lx R12: %016lx\n", r->r10, r->r11, r->r12);
	printk("R13: %016lx R14: %016lx R15: %016lx\n", r->r13, r->r14, r->r15);
	printk("CR2: %016lx CR3: %016lx CR4: %016lx\n", read_cr2(), read_cr3(), read_cr4());
}

static void user_fault(struct pt_regs *r)
{
	u64 size = __user_image_end - __user_image_start;
	if (r->vector == VEC_PF)
		printk("%s[%d]: segfault at %lx ip %016lx sp %016lx error %lx",
		       current->name, current->pid, read_cr2(), r->ip, r->sp, r->orig_ax);
	else
		printk("traps: %s[%d] %s ip:%lx sp:%lx error:%lx", current->name,
		       current->pid, r->vector < 32 ? exc_name[r->vector] : "trap",
		       r->ip, r->sp, r->orig_ax);
	if (r->ip >= USER_TEXT && r->ip < USER_TEXT + size)
		printk(" in %s[%lx+%lx]", current->name, USER_TEXT, size);
	printk("\n");
	do_exit(-1);
}

static void kernel_oops(struct pt_regs *r)
{
	u64 err = r->orig_ax;
	if (r->vector == VEC_PF) {
		printk("BUG: unable to handle page fault for address: %016lx\n", read_cr2());
		printk("#PF: %s %s access in %s mode\n", err & 4 ? "user" : "supervisor",
		       err & 16 ? "instruction fetch" : err & 2 ? "write" : "read",
		       err & 4 ? "user" : "kernel");
		printk("#PF: error_code(0x%04lx) - %s\n", err,
		       !(err & 1) ? "not-present page" :
		       err & 8 ? "reserved bit violation" : "permissions violation");
	} else {
		printk("BUG: %s (vector %lu) in kernel mode\n",
		       r->vector < 32 && exc_name[r->vector] ? exc_name[r->vector] : "unexpected trap",
		       r->vector);
	}
	printk("Oops: %04lx [#1]\n", err);
	show_regs(r);
	panic("Fatal exception");
}

void trap(struct pt_regs *r)
{
	if (r->vector == VEC_TIMER) {
		timer_interrupt();
		if ((r->cs & 3) == 3)
			schedule();     /* preempt: round robin */
		return;
	}
	if (r->vector >= 0x20 && r->vector < 0x30) {
		if (r->vector != 0x27 && r->vector != 0x2f)   /* not spurious */
			outb(0x20, 0x20);
		return;
	}
	if ((r->cs & 3) == 3)
		user_fault(r);
	kernel_oops(r);
}
