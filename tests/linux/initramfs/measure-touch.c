/*
 * measure-touch PAGES:ROUNDS:WORK - region 2 ("touch"): ROUNDS rounds (default 10) of writing PAGES distinct pages
 * (default 64), WORK iterations of user work (default 1000), one getpid(). Under PTI without PCID each system call
 * flushes the TLB, so every round misses again on every page; with PCID the user entries survive. The pages are
 * written once before the region, so no page fault falls inside it.
 */
#include "ulib.h"

int main(int argc, char **argv)
{
	u64 p[3] = { 64, 10, 1000 };
	params(argc, argv, p, 3);
	volatile char *m = mmap_anon(p[0] * 4096);
	if ((long)m < 0) { put("measure-touch: mmap failed\n"); return 1; }
	for (u64 j = 0; j < p[0]; j++)
		m[j * 4096] = 1;
	EMU64_REGION_BEGIN(2);
	for (u64 r = 0; r < p[1]; r++) {
		for (u64 j = 0; j < p[0]; j++)
			m[j * 4096] = (char)r;
		user_work(p[2]);
		syscall3(SYS_getpid, 0, 0, 0);
	}
	EMU64_REGION_END(2);
	report("measure-touch", "rounds done, pages", p[0]);
	return 0;
}
