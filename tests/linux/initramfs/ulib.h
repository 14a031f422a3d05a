/*
 * ulib.h - what the measure workloads (measure-*.c) share: raw system calls (no libc: every user-mode
 * instruction is in these files), _start with argc/argv, and parameter parsing. Each program takes its
 * parameters as numbers, separately or joined by ':' ("200 0" or "200:0"), as the measure init passes them.
 */
#ifndef ULIB_H
#define ULIB_H
#include "emu64.h"

#define SYS_read 0
#define SYS_write 1
#define SYS_open 2
#define SYS_close 3
#define SYS_mmap 9
#define SYS_munmap 11
#define SYS_pread64 17
#define SYS_pipe 22
#define SYS_pwrite64 18
#define SYS_sched_yield 24
#define SYS_getpid 39
#define SYS_fork 57
#define SYS_exit 60
#define SYS_wait4 61
#define SYS_unlink 87

typedef unsigned long u64;

static inline long syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
	long r;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	/* SYSCALL saves RIP in RCX and RFLAGS in R11. */
	__asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
	return r;
}
#define syscall3(nr, a, b, c) syscall6(nr, a, b, c, 0, 0, 0)

static inline void sys_exit(long code)
{
	syscall3(SYS_exit, code, 0, 0);
	for (;;)
		;
}

static inline void *mmap_anon(u64 bytes)
{
	/* PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS */
	return (void *)syscall6(SYS_mmap, 0, (long)bytes, 3, 0x22, -1, 0);
}

/* WORK iterations of user-mode work: a register loop that touches no memory (two instructions an
 * iteration, as in the toy kernel's uprogs.c), so it sets the system-call rate without TLB pressure. */
static inline void user_work(u64 work)
{
	for (u64 w = work; w; w--)
		__asm__ volatile("" : "+r"(w));
}

static u64 str_len(const char *s)
{
	u64 n = 0;
	while (s[n]) {
		__asm__("" : "+r"(n));   /* not turned into a call of strlen, which does not exist here */
		n++;
	}
	return n;
}

static void put(const char *s) { syscall3(SYS_write, 1, (long)s, (long)str_len(s)); }

/* "NAME: text N\n" on the console (one write, so lines of several processes do not mix). */
static void report(const char *name, const char *text, u64 n)
{
	char b[128];
	u64 k = 0;
	for (const char *s = name; *s && k < 60; s++) b[k++] = *s;
	b[k++] = ':'; b[k++] = ' ';
	for (const char *s = text; *s && k < 100; s++) b[k++] = *s;
	char d[24];
	int nd = 0;
	do { d[nd++] = (char)('0' + n % 10); n /= 10; } while (n);
	b[k++] = ' ';
	while (nd) b[k++] = d[--nd];
	b[k++] = '\n';
	syscall3(SYS_write, 1, (long)b, (long)k);
}

/* The parameters: every argument after the name, split at ':', as numbers; missing ones keep DEFAULTS. */
static void params(int argc, char **argv, u64 *p, int n)
{
	int k = 0;
	for (int a = 1; a < argc; a++) {
		const char *s = argv[a];
		while (*s && k < n) {
			u64 v = 0;
			int digits = 0;
			while (*s >= '0' && *s <= '9') { v = v * 10 + (u64)(*s++ - '0'); digits++; }
			if (digits) p[k] = v;
			k++;
			if (*s == ':') s++;
			else if (*s) { put("measure: parameters are numbers joined by ':'\n"); sys_exit(2); }
		}
	}
}

int main(int argc, char **argv);

/* The kernel starts a static program with RSP at argc, then argv[]; RSP is 16-byte aligned there. */
__asm__(".globl _start\n_start:\n\tmov (%rsp), %rdi\n\tlea 8(%rsp), %rsi\n\tcall start_c\n\thlt\n");
__attribute__((used)) static void start_c(long argc, char **argv) { sys_exit(main((int)argc, argv)); }

#endif
