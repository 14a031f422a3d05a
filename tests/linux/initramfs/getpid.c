/*
 * getpid: the user program of docs/LINUX.md's "Stepping a system call on Linux". It makes the getpid system
 * call (number 39 on x86-64) a few times with the SYSCALL instruction, then maps, touches and unmaps 64 pages:
 * more than Linux's tlb_single_page_flush_ceiling (33), so the munmap flushes the whole TLB of the process,
 * and under PTI with PCID the flush of the user PCID is deferred to the return to user mode
 * (user_pcid_flush_mask: SWITCH_TO_USER_CR3 then writes CR3 without NOFLUSH). Then it prints its pid and exits.
 * No libc: built by tests/linux/fetch-linux.sh with gcc -static -nostdlib, so every instruction that runs in
 * user mode is in this file.
 */
#define SYS_write 1
#define SYS_mmap 9
#define SYS_munmap 11
#define SYS_getpid 39
#define SYS_exit 60
#define PAGES 64

static long syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
	long r;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	/* SYSCALL saves RIP in RCX and RFLAGS in R11. */
	__asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
	return r;
}

void _start(void)
{
	long pid = 0;
	for (int i = 0; i < 4; i++)
		pid = syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
	/* PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS */
	volatile char *m = (volatile char *)syscall6(SYS_mmap, 0, PAGES * 4096, 3, 0x22, -1, 0);
	for (int i = 0; i < PAGES; i++)
		m[i * 4096] = 1;
	syscall6(SYS_munmap, (long)m, PAGES * 4096, 0, 0, 0, 0);
	char msg[] = "EMU64-GETPID: pid 0000000000\n";
	char *p = msg + 28;
	for (long v = pid; p > msg + 18; v /= 10)
		*--p = (char)('0' + v % 10);
	syscall6(SYS_write, 1, (long)msg, sizeof msg - 1, 0, 0, 0);
	syscall6(SYS_exit, 0, 0, 0, 0, 0, 0);
	for (;;)
		;
}
