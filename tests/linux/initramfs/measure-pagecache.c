/*
 * measure-pagecache PAGES:ROUNDS:BYTES - region 5 ("pagecache"): a file of PAGES pages (default 256) in the page
 * cache (created in the initramfs's root, a tmpfs: the file is nothing but page-cache pages), then ROUNDS rounds
 * (default 2) of pread64() BYTES (default 4096) from every page into one user buffer and pwrite64() them back.
 * The kernel copies each through the direct map (copy_to_user/copy_from_user from/to the page's direct-map
 * address), so its working set there is PAGES pages: one TLB entry each with a 4 KiB direct map, one per 2 MiB
 * or 1 GiB otherwise. The file is written once before the region (its pages allocated) and removed after.
 */
#include "ulib.h"

int main(int argc, char **argv)
{
	u64 p[3] = { 256, 2, 4096 };
	params(argc, argv, p, 3);
	if (p[2] == 0 || p[2] > 4096) { put("measure-pagecache: BYTES is 1 to 4096\n"); return 1; }
	static char buf[4096] __attribute__((aligned(4096)));
	const char *name = "/measure-pagecache.tmp";
	/* O_RDWR|O_CREAT|O_TRUNC */
	long fd = syscall3(SYS_open, (long)name, 02 | 0100 | 01000, 0600);
	if (fd < 0) { put("measure-pagecache: cannot create the file\n"); return 1; }
	for (u64 i = 0; i < 4096; i++)
		buf[i] = (char)i;
	for (u64 i = 0; i < p[0]; i++)
		if (syscall6(SYS_pwrite64, fd, (long)buf, 4096, (long)(i * 4096), 0, 0) != 4096) { put("measure-pagecache: write failed\n"); return 1; }
	EMU64_REGION_BEGIN(5);
	for (u64 r = 0; r < p[1]; r++) {
		for (u64 i = 0; i < p[0]; i++)
			syscall6(SYS_pread64, fd, (long)buf, (long)p[2], (long)(i * 4096), 0, 0);
		for (u64 i = 0; i < p[0]; i++)
			syscall6(SYS_pwrite64, fd, (long)buf, (long)p[2], (long)(i * 4096), 0, 0);
	}
	EMU64_REGION_END(5);
	syscall3(SYS_close, fd, 0, 0);
	syscall3(SYS_unlink, (long)name, 0, 0);
	report("measure-pagecache", "rounds, pages", p[0]);
	return 0;
}
