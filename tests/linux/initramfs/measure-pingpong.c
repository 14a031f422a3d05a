/*
 * measure-pingpong YIELDS:PROCS - region 3 ("pingpong"): PROCS processes (default 2) calling sched_yield() YIELDS
 * times each (default 100): context switches between processes, each a CR3 write (and a PCID change). The first
 * process forks the others, then marks the region around its own yields and waits for the rest; the region
 * counts everything the machine does meanwhile, the other processes' work included.
 */
#include "ulib.h"

int main(int argc, char **argv)
{
	u64 p[2] = { 100, 2 };
	params(argc, argv, p, 2);
	for (u64 k = 1; k < p[1]; k++) {
		long pid = syscall3(SYS_fork, 0, 0, 0);
		if (pid < 0) { put("measure-pingpong: fork failed\n"); return 1; }
		if (pid == 0) {
			for (u64 i = 0; i < p[0]; i++)
				syscall3(SYS_sched_yield, 0, 0, 0);
			sys_exit(0);
		}
	}
	EMU64_REGION_BEGIN(3);
	for (u64 i = 0; i < p[0]; i++)
		syscall3(SYS_sched_yield, 0, 0, 0);
	EMU64_REGION_END(3);
	for (u64 k = 1; k < p[1]; k++)
		syscall6(SYS_wait4, -1, 0, 0, 0, 0, 0);
	report("measure-pingpong", "yields of each process, processes", p[1]);
	return 0;
}
