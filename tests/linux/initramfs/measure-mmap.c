/*
 * measure-mmap CYCLES:PAGES - region 4 ("mmap"): CYCLES times (default 10) map PAGES pages (default 4), write each,
 * unmap them. The munmap makes the kernel flush the stale translations: INVLPG per page up to
 * tlb_single_page_flush_ceiling (33 pages), a full flush of the address space above it; under PTI the user
 * PCID's entries too (INVPCID, or a deferred flush at the return to user mode without INVPCID).
 */
#include "ulib.h"

int main(int argc, char **argv)
{
	u64 p[2] = { 10, 4 };
	params(argc, argv, p, 2);
	EMU64_REGION_BEGIN(4);
	for (u64 i = 0; i < p[0]; i++) {
		volatile char *m = mmap_anon(p[1] * 4096);
		if ((long)m < 0) { put("measure-mmap: mmap failed\n"); return 1; }
		for (u64 j = 0; j < p[1]; j++)
			m[j * 4096] = (char)i;
		syscall3(SYS_munmap, (long)m, (long)(p[1] * 4096), 0);
	}
	EMU64_REGION_END(4);
	report("measure-mmap", "map/touch/unmap cycles", p[0]);
	return 0;
}
