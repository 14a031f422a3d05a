/*
 * syscall.c - system calls, with Linux x86-64 numbers and conventions:
 * number in RAX, arguments in RDI, RSI, RDX, R10, R8, R9, result in RAX
 * (a negative errno on failure).
 */
#include "defs.h"
#include "proc.h"
#include "sysnum.h"
#include "x86.h"

#define EBADF  9
#define EFAULT 14
#define ENOSYS 38

static s64 sys_write(u64 fd, u64 buf, u64 len)
{
	if (fd != 1 && fd != 2)
		return -EBADF;
	if (!user_access_ok(&current->mm, buf, len, 0))
		return -EFAULT;
	for (u64 i = 0; i < len; i++)
		console_putc(((const char *)buf)[i]);
	return len;
}

/* Block until the UART has at least one byte, then return what is there. */
static s64 sys_read(u64 fd, u64 buf, u64 len)
{
	if (fd != 0)
		return -EBADF;
	if (!len)
		return 0;
	if (!user_access_ok(&current->mm, buf, len, 1))
		return -EFAULT;
	int c;
	while ((c = console_getc()) < 0) {
		if (nr_alive() > 1) {
			schedule();             /* let the others run meanwhile */
		} else {
			sti();                  /* nothing else to do: wait for a tick */
			hlt();
			cli();
		}
	}
	u64 n = 0;
	do
		((char *)buf)[n++] = (char)c;
	while (n < len && (c = console_getc()) >= 0);
	return n;
}

void do_syscall_64(struct pt_regs *regs)
{
	s64 ret;
	switch (regs->orig_ax) {
	case __NR_read:        ret = sys_read(regs->rdi, regs->rsi, regs->rdx); break;
	case __NR_write:       ret = sys_write(regs->rdi, regs->rsi, regs->rdx); break;
	case __NR_mmap:        ret = mm_mmap(&current->mm, regs->rsi, regs->rdx, regs->r10); break;
	case __NR_munmap:      ret = mm_munmap(&current->mm, regs->rdi, regs->rsi); break;
	case __NR_pread64:     ret = sys_pagecache_rw(regs->rdi, regs->rsi, regs->rdx, regs->r10, 0); break;
	case __NR_pwrite64:    ret = sys_pagecache_rw(regs->rdi, regs->rsi, regs->rdx, regs->r10, 1); break;
	case __NR_fallocate:   ret = sys_fallocate(regs->rdi, regs->rsi, regs->rdx, regs->r10); break;
	case __NR_sched_yield: schedule(); ret = 0; break;
	case __NR_getpid:      ret = current->pid; break;
	case __NR_exit:
	case __NR_exit_group:  do_exit((int)regs->rdi);
	case __NR_toy_ptdump:  ptdump_mm(&current->mm, current->name); ret = 0; break;
	default:               ret = -ENOSYS; break;
	}
	regs->rax = ret;
}
