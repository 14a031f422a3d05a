/* ulib.h - the user-space side: system calls and a few helpers. */
#ifndef ULIB_H
#define ULIB_H
#include "types.h"
#include "port.h"
#include "sysnum.h"

static inline long syscall3(long nr, long a, long b, long c)
{
	long ret;
	asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c)
		     : "rcx", "r11", "memory");
	return ret;
}

static inline long syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 asm("r10") = d, r8 asm("r8") = e, r9 asm("r9") = f;
	asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c),
		     "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
	return ret;
}

#define PROT_READ     1
#define PROT_WRITE    2
#define MAP_PRIVATE   0x02
#define MAP_ANONYMOUS 0x20

static inline long write(int fd, const void *buf, u64 n) { return syscall3(__NR_write, fd, (long)buf, n); }
static inline long read(int fd, void *buf, u64 n) { return syscall3(__NR_read, fd, (long)buf, n); }
static inline long getpid(void) { return syscall3(__NR_getpid, 0, 0, 0); }
static inline long sched_yield(void) { return syscall3(__NR_sched_yield, 0, 0, 0); }
static inline long munmap(void *p, u64 n) { return syscall3(__NR_munmap, (long)p, n, 0); }
static inline long pread64(int fd, void *buf, u64 n, u64 pos) { return syscall6(__NR_pread64, fd, (long)buf, n, pos, 0, 0); }
static inline long pwrite64(int fd, const void *buf, u64 n, u64 pos) { return syscall6(__NR_pwrite64, fd, (long)buf, n, pos, 0, 0); }
static inline long fallocate(int fd, int mode, u64 off, u64 len) { return syscall6(__NR_fallocate, fd, mode, off, len, 0, 0); }
static inline void *mmap_anon(u64 n)
{
	return (void *)syscall6(__NR_mmap, 0, n, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}
static inline void __attribute__((noreturn)) exit(int code)
{
	syscall3(__NR_exit, code, 0, 0);
	__builtin_unreachable();
}

/* Measured regions (port.h): allowed in ring 3 by the TSS I/O bitmap. */
static inline void region(u32 id, u32 op)
{
	asm volatile("outl %0, %1" :: "a"((id << 8) | op), "Nd"((u16)EMU_PORT_CMD));
}

/* A line buffer on the stack, written with one write() call. */
struct line { char buf[160]; int n; };
void put_str(struct line *l, const char *s);
void put_num(struct line *l, u64 v);
void put_hex(struct line *l, u64 v);
void put_line(struct line *l);      /* write(1, ...) and reset */

#endif
