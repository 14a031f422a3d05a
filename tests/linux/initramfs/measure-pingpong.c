/*
 * measure-pingpong PASSES:PROCS - region 3 ("pingpong"): PROCS processes (default 2) in a ring, passing one byte
 * around through pipes PASSES times each (default 100): every pass wakes the next process and blocks the sender, a
 * context switch between address spaces (a CR3 write, a PCID change). The toy kernel's pingpong has its processes
 * call sched_yield(); Linux's CFS does not switch on sched_yield() when the other process's virtual runtime is ahead
 * (the yielding one stays the leftmost), so the Linux twin blocks on a pipe as lmbench's lat_ctx and
 * `perf bench sched pipe` do. Process 0 forks the others, then marks the region around its own passes; the region
 * counts everything the machine does meanwhile, the other processes' work included.
 */
#include "ulib.h"

#define MAXPROCS 32

int main(int argc, char **argv)
{
	u64 p[2] = { 100, 2 };
	params(argc, argv, p, 2);
	if (p[1] < 2 || p[1] > MAXPROCS) { put("measure-pingpong: PROCS is 2 to 32\n"); return 1; }
	int fds[MAXPROCS][2];   /* pipe k: process k reads, process k-1 writes */
	for (u64 k = 0; k < p[1]; k++)
		if (syscall3(SYS_pipe, (long)fds[k], 0, 0) < 0) { put("measure-pingpong: pipe failed\n"); return 1; }
	u64 me = 0;
	for (u64 k = 1; k < p[1] && me == 0; k++) {
		long pid = syscall3(SYS_fork, 0, 0, 0);
		if (pid < 0) { put("measure-pingpong: fork failed\n"); return 1; }
		if (pid == 0)
			me = k;
	}
	int in = fds[me][0], out = fds[(me + 1) % p[1]][1];
	char b = 0;
	if (me != 0) {
		for (u64 i = 0; i < p[0]; i++) {
			syscall3(SYS_read, in, (long)&b, 1);
			syscall3(SYS_write, out, (long)&b, 1);
		}
		sys_exit(0);
	}
	EMU64_REGION_BEGIN(3);
	for (u64 i = 0; i < p[0]; i++) {
		syscall3(SYS_write, out, (long)&b, 1);
		syscall3(SYS_read, in, (long)&b, 1);
	}
	EMU64_REGION_END(3);
	for (u64 k = 1; k < p[1]; k++)
		syscall6(SYS_wait4, -1, 0, 0, 0, 0, 0);
	report("measure-pingpong", "passes of each process, processes", p[1]);
	return 0;
}
