/* x86.h - thin inline wrappers around the x86 instructions the kernel uses. */
#ifndef X86_H
#define X86_H
#include "types.h"

static inline void outb(u16 port, u8 v)  { asm volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { asm volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port)
{
	u8 v;
	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline u64 rdmsr(u32 msr)
{
	u32 lo, hi;
	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((u64)hi << 32) | lo;
}
static inline void wrmsr(u32 msr, u64 v)
{
	asm volatile("wrmsr" :: "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)) : "memory");
}

static inline void cpuid(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d)
{
	asm volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

#define DEFINE_CR(n)                                                              \
	static inline u64 read_cr##n(void)                                        \
	{ u64 v; asm volatile("mov %%cr" #n ", %0" : "=r"(v)); return v; }        \
	static inline void write_cr##n(u64 v)                                     \
	{ asm volatile("mov %0, %%cr" #n :: "r"(v) : "memory"); }
DEFINE_CR(0)
DEFINE_CR(3)
DEFINE_CR(4)
static inline u64 read_cr2(void) { u64 v; asm volatile("mov %%cr2, %0" : "=r"(v)); return v; }

static inline void invlpg(u64 va) { asm volatile("invlpg (%0)" :: "r"(va) : "memory"); }

/* INVPCID: the 16-byte descriptor holds the PCID (bits 11:0) and an address. */
static inline void invpcid(u64 type, u64 pcid, u64 addr)
{
	struct { u64 pcid, addr; } desc = { pcid, addr };
	asm volatile("invpcid %0, %1" :: "m"(desc), "r"(type) : "memory");
}

static inline u64 rdtsc(void)
{
	u32 lo, hi;
	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static inline void cli(void) { asm volatile("cli" ::: "memory"); }
static inline void sti(void) { asm volatile("sti" ::: "memory"); }
static inline void hlt(void) { asm volatile("hlt" ::: "memory"); }

/* MSRs */
#define MSR_EFER           0xc0000080
#define MSR_STAR           0xc0000081
#define MSR_LSTAR          0xc0000082
#define MSR_SYSCALL_MASK   0xc0000084
#define MSR_FS_BASE        0xc0000100
#define MSR_GS_BASE        0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102
#define EFER_SCE  BIT(0)
#define EFER_LME  BIT(8)
#define EFER_NXE  BIT(11)

/* Control-register bits */
#define CR0_WP     BIT(16)
#define CR4_PAE    BIT(5)
#define CR4_PGE    BIT(7)
#define CR4_LA57   BIT(12)
#define CR4_PCIDE  BIT(17)

/* RFLAGS bits */
#define X86_EFLAGS_IF  0x200UL
#endif
