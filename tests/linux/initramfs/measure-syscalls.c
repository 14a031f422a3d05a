/*
 * measure-syscalls CALLS:WORK - region 1 ("syscalls"): CALLS getpid() calls with WORK iterations of user work
 * before each (defaults 200 and 0): the cost of crossing the user/kernel boundary against the system-call rate.
 * The Linux twin of the toy kernel's syscalls workload (firmware/uprogs.c); emu64 measure runs it (docs/MEASURE.md).
 */
#include "ulib.h"

int main(int argc, char **argv)
{
	u64 p[2] = { 200, 0 };
	params(argc, argv, p, 2);
	EMU64_REGION_BEGIN(1);
	for (u64 i = 0; i < p[0]; i++) {
		user_work(p[1]);
		syscall3(SYS_getpid, 0, 0, 0);
	}
	EMU64_REGION_END(1);
	report("measure-syscalls", "getpid calls", p[0]);
	return 0;
}
