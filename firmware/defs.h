/* defs.h - functions shared between kernel files, by file. */
#ifndef DEFS_H
#define DEFS_H
#include "types.h"
#include <stdarg.h>

struct pt_regs;
struct mm;
struct proc;

/* console.c */
void console_init(void);
void console_putc(char c);
int console_getc(void);

/* printf.c */
int printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintk(const char *fmt, va_list ap);
void __attribute__((noreturn, format(printf, 1, 2))) panic(const char *fmt, ...);
void __attribute__((noreturn)) poweroff(u32 code);

/* string.c */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strncpy_z(char *d, const char *s, size_t n);
u64 parse_u64(const char *s, const char **end);

/* cmdline.c */
extern char boot_command_line[];
void cmdline_init(u32 mb_cmdline_pa);
int cmdline_has(const char *word);
int cmdline_get(const char *key, char *buf, size_t n);
void parse_early_options(void);

/* cpu.c */
void cpu_detect(void);

/* kaslr.c */
u64 kaslr_get_random(void);
u64 kaslr_memory_base(u64 ram_end);

/* kalloc.c */
void multiboot_mmap_init(void);
void kalloc_init(void);
u64 alloc_pages(int order);          /* physical address, or 0 */
void free_pages(u64 pa, int order);
void *alloc_page_zeroed(void);
u64 alloc_pages_spread(u64 n, void (*take)(u64 pa, void *arg), void *arg);
u64 ram_end(void);
u64 free_page_count(void);

/* vm.c */
extern u64 swapper_pgd_pa;
void paging_init(void);

/* pti.c */
extern u64 pti_user_template_pa;
void pti_init(void);
void pti_clone_kernel_half(u64 *user_pgd);

/* cpu_entry_area.c */
void cea_map(u64 *pgd);
void cpu_init_tables(void);
void syscall_init(void);

/* tlb.c */
void switch_mm(struct mm *next);
void flush_tlb_mm_range(struct mm *mm, u64 start, u64 end);
void flush_tlb_global(void);
void tlb_print_config(void);

/* timer.c */
void timer_init(void);
void timer_interrupt(void);

/* trap.c */
void trap(struct pt_regs *regs);
void show_regs(struct pt_regs *regs);

/* mm.c */
int mm_init(struct mm *mm);
void mm_destroy(struct mm *mm);
int mm_map_page(struct mm *mm, u64 va, u64 pa, u64 prot);
u64 mm_mmap(struct mm *mm, u64 len, u64 prot, u64 flags);
int mm_munmap(struct mm *mm, u64 addr, u64 len);
int user_access_ok(struct mm *mm, u64 addr, u64 len, int write);

/* proc.c */
struct proc *proc_create(const char *name, u64 entry, u64 a0, u64 a1, u64 a2);
void schedule(void);
void scheduler_start(void) __attribute__((noreturn));
void do_exit(int code) __attribute__((noreturn));
int nr_alive(void);

/* programs.c */
void spawn_init_programs(void);

/* pagecache.c */
s64 sys_fallocate(u64 fd, u64 mode, u64 offset, u64 len);
s64 sys_pagecache_rw(u64 fd, u64 buf, u64 count, u64 pos, int write);

/* syscall.c */
void do_syscall_64(struct pt_regs *regs);

/* ptdump.c */
void ptdump_mm(struct mm *mm, const char *who);

/* emu port (port.h) */
void emu_announce(u32 op, u32 arg, u64 value);

#endif
