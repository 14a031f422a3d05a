/*
 * tsc_getpid: a user program that times its own system calls, as published KPTI benchmarks do. It reads the TSC
 * (RDTSC, allowed in user mode: Linux leaves CR4.TSD clear) around CALLS getpid system calls and prints the ticks,
 * after a few untimed calls that warm the caches and TLBs. Under `--clock instructions` (the default) a tick is a
 * retired instruction, so the figure is the instructions of a call; under `--clock cycles` it is the cost model's
 * cycles, so PTI's CR3 writes and the TLB refills after them show in it, and PCID's saving too
 * (docs/MEASURE.md, "Guest time"). No libc, as getpid.c.
 */
#define SYS_write 1
#define SYS_getpid 39
#define SYS_exit 60
#define WARMUP 16
#define CALLS 256

static long syscall3(long nr, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}

static unsigned long rdtsc(void)
{
	unsigned int lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((unsigned long)hi << 32) | lo;
}

/* Writes v in decimal ending at *end (backwards); returns the first digit. */
static char *decimal(char *end, unsigned long v)
{
	do
		*--end = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	return end;
}

void _start(void)
{
	for (int i = 0; i < WARMUP; i++)
		syscall3(SYS_getpid, 0, 0, 0);
	unsigned long t0 = rdtsc();
	for (int i = 0; i < CALLS; i++)
		syscall3(SYS_getpid, 0, 0, 0);
	unsigned long t1 = rdtsc();
	/* "EMU64-TSC: getpid calls 256 ticks N per-call M\n" */
	char buf[96];
	char *end = buf + sizeof buf;
	char *p = end;
	*--p = '\n';
	p = decimal(p, (t1 - t0) / CALLS);
	static const char c[] = " per-call ";
	for (int i = sizeof c - 2; i >= 0; i--)
		*--p = c[i];
	p = decimal(p, t1 - t0);
	static const char b[] = "EMU64-TSC: getpid calls 256 ticks ";
	for (int i = sizeof b - 2; i >= 0; i--)
		*--p = b[i];
	syscall3(SYS_write, 1, (long)p, end - p);
	syscall3(SYS_exit, 0, 0, 0);
	for (;;)
		;
}
