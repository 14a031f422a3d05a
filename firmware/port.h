/*
 * port.h - the toy kernel <-> emulator port protocol (see docs/KERNEL.md).
 *
 * Port 0xEA takes 32-bit writes: (arg << 8) | op.
 *   op 1  REGION_BEGIN  arg = region id (0..255): a measured region starts
 *   op 2  REGION_END    arg = region id: it ends
 *   op 3  PROC_NEW      arg = pid; followed by two 32-bit writes to 0xEB:
 *                       low then high dword of the physical address of the
 *                       new process's kernel PGD (user PGD = +4096 with PTI)
 *   op 4  PROC_EXIT     arg = pid; the process is gone (its PGD is freed)
 *   op 5  ANNOUNCE      arg = key; followed by low, high dword to 0xEB:
 *                       key 0 = runtime virtual address of _text
 *                             (ELF symbol + (this - ELF _text) = runtime)
 *                       key 1 = PAGE_OFFSET (direct map base)
 *                       key 2 = physical address of swapper_pg_dir
 * User programs write regions themselves (the TSS I/O bitmap lets ring 3
 * use 0xEA only), so a region contains no extra kernel entry.
 */
#ifndef PORT_H
#define PORT_H

#define EMU_PORT_CMD   0xEA
#define EMU_PORT_DATA  0xEB

#define EMU_OP_REGION_BEGIN 1
#define EMU_OP_REGION_END   2
#define EMU_OP_PROC_NEW     3
#define EMU_OP_PROC_EXIT    4
#define EMU_OP_ANNOUNCE     5

#define EMU_KEY_TEXT        0
#define EMU_KEY_PAGE_OFFSET 1
#define EMU_KEY_SWAPPER_PGD 2

/* Measured-region ids used by the workloads */
#define REGION_SYSCALLS  1
#define REGION_TOUCH     2
#define REGION_PINGPONG  3
#define REGION_MMAP      4
#define REGION_PAGECACHE 5

#define ISA_DEBUG_EXIT_PORT 0xF4

#endif
