/* sysnum.h - system call numbers (Linux x86-64), shared with user code. */
#ifndef SYSNUM_H
#define SYSNUM_H
#define __NR_read        0
#define __NR_write       1
#define __NR_mmap        9
#define __NR_munmap      11
#define __NR_pread64     17
#define __NR_pwrite64    18
#define __NR_sched_yield 24
#define __NR_getpid      39
#define __NR_exit        60
#define __NR_exit_group  231
#define __NR_fallocate   285
/* Not Linux: print this process's page tables (ptdump.c). */
#define __NR_toy_ptdump  1000
#endif
