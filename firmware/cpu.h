/* cpu.h - CPU features, the per-CPU entry page and descriptor tables. */
#ifndef CPU_H
#define CPU_H
#include "types.h"
#include "entry.h"

struct cpu_features {
	int nx, pge, gbpages, pcid, invpcid, la57, rdrand, smep;
};
extern struct cpu_features boot_cpu;   /* what CPUID says */

/* Kernel options (cmdline.c) and what we made of them. */
extern int opt_pti;          /* pti=on|off, default on */
extern int opt_nopcid, opt_noinvpcid;
extern u64 opt_directmap_page; /* directmap=4k|2m|1g, nogbpages; 0 = default */
extern int use_pcid;         /* CR4.PCIDE on */
extern int use_invpcid;      /* INVPCID used for single user pages / globals */
extern int kaslr_enabled;

/* The 64-bit TSS (Intel SDM vol. 3A, 8.7). */
struct tss {
	u32 reserved0;
	u64 sp0, sp1, sp2;   /* stacks for entry from ring 3/2/1; sp2 is our scratch */
	u64 reserved1;
	u64 ist[7];          /* interrupt stack table */
	u64 reserved2;
	u16 reserved3;
	u16 io_bitmap_base;
} __attribute__((packed));

/* The per-CPU page mapped in the cpu_entry_area (layout: entry.h). */
struct entry_percpu {
	struct tss tss;
	u8 io_bitmap[TSS_IOMAP_BYTES];
	u8 io_bitmap_end;            /* must be 0xff (SDM 19.5.2) */
	u8 pad[CPU_TOP_OF_STACK - TSS_IOMAP - TSS_IOMAP_BYTES - 1];
	u64 top_of_stack;
	u64 flags;                   /* CPU_PTI | CPU_PCID */
	u64 user_pcid_flush_mask;
} __attribute__((aligned(4096)));

/* The per-CPU entry page, through its cpu_entry_area address: the same
 * page the trampoline reaches through %gs. */
#define this_cpu ((struct entry_percpu *)(CEA_BASE + CEA_PERCPU))

#endif
