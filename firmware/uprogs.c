/*
 * uprogs.c - the user programs built into the image (init=NAME:ARGS).
 * Each gets its arguments in RDI/RSI/RDX and must end with exit().
 * The workloads mark their measured region through port 0xEA (port.h).
 */
#include "ulib.h"

/* hello: a greeting. */
static void hello_main(u64 a0, u64 a1, u64 a2)
{
	struct line l = { .n = 0 };
	(void)a0, (void)a1, (void)a2;
	put_str(&l, "hello: Hello from user space, I am pid ");
	put_num(&l, getpid());
	put_str(&l, "\n");
	put_line(&l);
	exit(0);
}

/* WORK iterations of user-mode work: a register loop that touches no
 * memory (two instructions an iteration), so it changes how often system
 * calls happen without adding TLB pressure. */
static inline void user_work(u64 work)
{
	for (u64 w = work; w; w--)
		asm volatile("" : "+r"(w));
}

/* syscalls:N:WORK - N getpid() calls, WORK iterations of user work
 * before each (default 0): the cost of crossing the boundary, at a
 * system-call rate set by WORK. */
static void syscalls_main(u64 n, u64 work, u64 a2)
{
	struct line l = { .n = 0 };
	(void)a2;
	region(REGION_SYSCALLS, EMU_OP_REGION_BEGIN);
	for (u64 i = 0; i < n; i++) {
		user_work(work);
		getpid();
	}
	region(REGION_SYSCALLS, EMU_OP_REGION_END);
	put_str(&l, "syscalls: ");
	put_num(&l, n);
	put_str(&l, " getpid calls done\n");
	put_line(&l);
	exit(0);
}

/* touch:PAGES:N:WORK - N rounds of: write to PAGES distinct pages, WORK
 * iterations of user work (default 0), then one system call.  Under PTI
 * without PCID the system call flushes the TLB, so every round misses
 * again on every page.  WORK keeps the system-call rate about the same
 * while PAGES varies. */
static void touch_main(u64 pages, u64 rounds, u64 work)
{
	struct line l = { .n = 0 };
	volatile char *p = mmap_anon(pages * 4096);
	if ((long)p < 0) {
		put_str(&l, "touch: mmap failed\n");
		put_line(&l);
		exit(1);
	}
	region(REGION_TOUCH, EMU_OP_REGION_BEGIN);
	for (u64 r = 0; r < rounds; r++) {
		for (u64 i = 0; i < pages; i++)
			p[i * 4096] = (char)r;
		user_work(work);
		getpid();
	}
	region(REGION_TOUCH, EMU_OP_REGION_END);
	munmap((void *)p, pages * 4096);
	put_str(&l, "touch: ");
	put_num(&l, rounds);
	put_str(&l, " rounds over ");
	put_num(&l, pages);
	put_str(&l, " pages done\n");
	put_line(&l);
	exit(0);
}

/* pingpong:N:PROCS - PROCS processes (default 2: "ping" and one "pong")
 * yielding to each other N times each: context switches (CR3 and PCID
 * changes; more than 6 processes run out of ASIDs).  The "ping" one,
 * started first, marks the region. */
static void pingpong_main(u64 n, u64 ping, u64 a2)
{
	struct line l = { .n = 0 };
	(void)a2;
	if (ping)
		region(REGION_PINGPONG, EMU_OP_REGION_BEGIN);
	for (u64 i = 0; i < n; i++)
		sched_yield();
	if (ping)
		region(REGION_PINGPONG, EMU_OP_REGION_END);
	put_str(&l, ping ? "pingpong: ping" : "pingpong: pong");
	put_str(&l, " yielded ");
	put_num(&l, n);
	put_str(&l, " times\n");
	put_line(&l);
	exit(0);
}

/* mmap:N:PAGES - N times: map PAGES pages (default 4), touch them, unmap
 * them (the kernel must flush the stale translations: INVLPG, INVPCID,
 * deferred flush; above 33 pages a full flush instead). */
static void mmap_main(u64 n, u64 pages, u64 a2)
{
	struct line l = { .n = 0 };
	(void)a2;
	region(REGION_MMAP, EMU_OP_REGION_BEGIN);
	for (u64 i = 0; i < n; i++) {
		volatile char *p = mmap_anon(pages * 4096);
		if ((long)p < 0) {
			put_str(&l, "mmap: mmap failed\n");
			put_line(&l);
			exit(1);
		}
		for (u64 j = 0; j < pages; j++)
			p[j * 4096] = (char)i;
		munmap((void *)p, pages * 4096);
	}
	region(REGION_MMAP, EMU_OP_REGION_END);
	put_str(&l, "mmap: ");
	put_num(&l, n);
	put_str(&l, " map/touch/unmap cycles done\n");
	put_line(&l);
	exit(0);
}

/* pagecache:PAGES:ROUNDS:BYTES - a file of PAGES pages in the page cache
 * (fd 3, pagecache.c), its frames spread across RAM by fallocate(); then
 * ROUNDS rounds (default 2) of: pread64() BYTES (default 4096) from every
 * page into one user buffer, then pwrite64() them back to every page.
 * Every call makes the kernel copy through the direct map, so the
 * kernel's working set is PAGES direct-map pages: PAGES TLB entries with a
 * 4 KiB direct map, a few with 2 MiB pages, one with 1 GiB pages. */
static void pagecache_main(u64 pages, u64 rounds, u64 bytes)
{
	struct line l = { .n = 0 };
	char *buf = mmap_anon(4096);
	if ((long)buf < 0 || bytes > 4096 || fallocate(3, 0, 0, pages * 4096) < 0) {
		put_str(&l, "pagecache: setup failed (BYTES is at most 4096)\n");
		put_line(&l);
		exit(1);
	}
	for (u64 i = 0; i < bytes; i++)
		buf[i] = (char)i;
	region(REGION_PAGECACHE, EMU_OP_REGION_BEGIN);
	for (u64 r = 0; r < rounds; r++) {
		for (u64 i = 0; i < pages; i++)
			pread64(3, buf, bytes, i * 4096);
		for (u64 i = 0; i < pages; i++)
			pwrite64(3, buf, bytes, i * 4096);
	}
	region(REGION_PAGECACHE, EMU_OP_REGION_END);
	put_str(&l, "pagecache: ");
	put_num(&l, rounds);
	put_str(&l, " rounds of reading and writing ");
	put_num(&l, pages);
	put_str(&l, " pages done\n");
	put_line(&l);
	exit(0);
}

/* probe: read a kernel (direct-map) address from user mode.  Without
 * PTI the page is mapped but supervisor-only: #PF error 5 (present,
 * user, read).  With PTI it is not mapped at all in the user page
 * tables: error 4 (not present, user, read).  Either way: killed. */
static void probe_main(u64 addr, u64 a1, u64 a2)
{
	struct line l = { .n = 0 };
	(void)a1, (void)a2;
	put_str(&l, "probe: reading kernel address ");
	put_hex(&l, addr);
	put_str(&l, " from user mode\n");
	put_line(&l);
	char c = *(volatile char *)addr;
	put_str(&l, "probe: read succeeded (value ");
	put_num(&l, (u8)c);
	put_str(&l, "): kernel memory is readable!\n");
	put_line(&l);
	exit(1);
}

/* echo: read one line from the console (read(0, ...)) and write it back. */
static void echo_main(u64 a0, u64 a1, u64 a2)
{
	struct line l = { .n = 0 };
	char c = 0;
	(void)a0, (void)a1, (void)a2;
	put_str(&l, "echo: ");
	while (l.n < (int)sizeof(l.buf) - 1 && read(0, &c, 1) == 1 && c != '\n' && c != '\r')
		l.buf[l.n++] = c;
	put_str(&l, "\n");
	put_line(&l);
	exit(0);
}

/* ptdump: ask the kernel to print this process's page tables. */
static void ptdump_main(u64 a0, u64 a1, u64 a2)
{
	(void)a0, (void)a1, (void)a2;
	syscall3(__NR_toy_ptdump, 0, 0, 0);
	exit(0);
}

struct uprog { char name[16]; void (*entry)(u64, u64, u64); };

__attribute__((section(".utable"), used))
const struct uprog uprog_table[] = {
	{ "hello", hello_main },
	{ "syscalls", syscalls_main },
	{ "touch", touch_main },
	{ "pingpong", pingpong_main },
	{ "mmap", mmap_main },
	{ "probe", probe_main },
	{ "ptdump", ptdump_main },
	{ "echo", echo_main },
	{ "pagecache", pagecache_main },
	{ "", 0 },
};
