/*
 * cpu_entry_area.c - the GDT, TSS, IDT and entry stacks, and the
 * cpu_entry_area that maps them at a fixed address (CEA_BASE).
 *
 * These are what the CPU itself reads when it crosses from user to
 * kernel mode (the IDT gate, the GDT descriptors, TSS.sp0 / IST), and
 * what the first trampoline instructions touch (the per-CPU entry page
 * through GS, the entry stack).  So with KPTI they must be mapped in the
 * user page tables as well: pti.c maps this same area there.  The
 * backing pages are ordinary kernel .bss; the cpu_entry_area is a second
 * mapping of them, and the only one the CPU is told about.
 */
#include "defs.h"
#include "cpu.h"
#include "mmu.h"
#include "port.h"
#include "x86.h"

#define PAGE_ALIGNED_BSS __attribute__((aligned(4096)))
static u64 idt_table[512] PAGE_ALIGNED_BSS;        /* 256 gates x 16 bytes */
static u64 gdt_page[512] PAGE_ALIGNED_BSS;
struct entry_percpu cpu_entry_page;
static u8 entry_stack[PAGE_SIZE] PAGE_ALIGNED_BSS;
static u8 df_stack[2 * PAGE_SIZE] PAGE_ALIGNED_BSS;
static u8 nmi_stack[2 * PAGE_SIZE] PAGE_ALIGNED_BSS;

_Static_assert(sizeof(struct tss) == TSS_SIZE, "TSS layout");
_Static_assert(__builtin_offsetof(struct entry_percpu, top_of_stack) == CPU_TOP_OF_STACK, "percpu");
_Static_assert(__builtin_offsetof(struct entry_percpu, flags) == CPU_FLAGS, "percpu");
_Static_assert(__builtin_offsetof(struct entry_percpu, user_pcid_flush_mask) ==
	       CPU_USER_PCID_FLUSH_MASK, "percpu");
_Static_assert(__builtin_offsetof(struct tss, sp2) == TSS_sp2, "tss");

extern char irq_entries_start[];
extern char entry_SYSCALL_64[];

/* Map the cpu_entry_area into a PGD (swapper_pg_dir, or PTI's template).
 * Global: it is identical in both page tables. */
void cea_map(pte_t *pgd)
{
	static const struct { u64 off; void *page; u64 len, prot; } cea[] = {
		{ CEA_IDT,         idt_table,       PAGE_SIZE,     PAGE_KERNEL_RO },
		{ CEA_GDT,         gdt_page,        PAGE_SIZE,     PAGE_KERNEL_RO },
		{ CEA_PERCPU,      &cpu_entry_page, PAGE_SIZE,     PAGE_KERNEL },
		{ CEA_ENTRY_STACK, entry_stack,     PAGE_SIZE,     PAGE_KERNEL },
		{ CEA_DF_STACK,    df_stack,        2 * PAGE_SIZE, PAGE_KERNEL },
		{ CEA_NMI_STACK,   nmi_stack,       2 * PAGE_SIZE, PAGE_KERNEL },
	};
	for (u64 i = 0; i < ARRAY_SIZE(cea); i++)
		map_range(pgd, CEA_BASE + cea[i].off, __pa(cea[i].page), cea[i].len,
			  cea[i].prot | _PAGE_GLOBAL, PAGE_SIZE);
}

static void set_gate(int vec, u64 handler, int ist)
{
	/* 64-bit interrupt gate, DPL 0, kernel CS (SDM vol. 3A, 6.14.1) */
	idt_table[2 * vec] = (handler & 0xffff) | ((u64)GDT_KERNEL_CS << 16) |
		((u64)ist << 32) | (0x8eUL << 40) | ((handler >> 16) & 0xffff) << 48;
	idt_table[2 * vec + 1] = handler >> 32;
}

struct desc_ptr { u16 limit; u64 base; } __attribute__((packed));

void cpu_init_tables(void)
{
	/* Descriptors with the accessed bit preset: the CPU would otherwise
	 * write it, and the cpu_entry_area GDT is read-only. */
	gdt_page[1] = 0x00cf9b000000ffff;   /* 0x08 kernel 32-bit code */
	gdt_page[2] = 0x00af9b000000ffff;   /* 0x10 kernel code (L=1) */
	gdt_page[3] = 0x00cf93000000ffff;   /* 0x18 kernel data */
	gdt_page[4] = 0x00cffb000000ffff;   /* 0x23 user 32-bit code */
	gdt_page[5] = 0x00cff3000000ffff;   /* 0x2b user data */
	gdt_page[6] = 0x00affb000000ffff;   /* 0x33 user code (L=1) */
	u64 tss = CEA_BASE + CEA_PERCPU, limit = TSS_IOMAP + TSS_IOMAP_BYTES;
	gdt_page[8] = (limit & 0xffff) | (tss & 0xffffff) << 16 | 0x89UL << 40 |
		((limit >> 16) & 0xf) << 48 | ((tss >> 24) & 0xff) << 56;
	gdt_page[9] = tss >> 32;

	struct tss *t = &cpu_entry_page.tss;
	t->sp0 = CEA_BASE + CEA_ENTRY_STACK + PAGE_SIZE;   /* trampoline stack */
	t->ist[0] = CEA_BASE + CEA_DF_STACK + 2 * PAGE_SIZE;
	t->ist[1] = CEA_BASE + CEA_NMI_STACK + 2 * PAGE_SIZE;
	t->io_bitmap_base = TSS_IOMAP;
	/* I/O bitmap: ring 3 may use only the measurement port (port.h);
	 * a 32-bit OUT to 0xEA covers ports 0xEA..0xED. */
	memset(cpu_entry_page.io_bitmap, 0xff, sizeof(cpu_entry_page.io_bitmap));
	for (int p = EMU_PORT_CMD; p < EMU_PORT_CMD + 4; p++)
		cpu_entry_page.io_bitmap[p / 8] &= ~(1 << (p % 8));
	cpu_entry_page.io_bitmap_end = 0xff;

	for (int v = 0; v < 48; v++)
		set_gate(v, (u64)irq_entries_start + 16 * v, v == 8 ? 1 : v == 2 ? 2 : 0);

	/* Load the GDT through its writable kernel alias first: LTR marks the
	 * TSS descriptor busy, a write.  Then switch to the cpu_entry_area. */
	struct desc_ptr gdtr = { GDT_ENTRIES * 8 - 1, (u64)gdt_page };
	asm volatile("lgdt %0" :: "m"(gdtr));
	asm volatile("pushq %0; leaq 1f(%%rip), %%rax; pushq %%rax; lretq; 1:"
		     :: "i"(GDT_KERNEL_CS) : "rax", "memory");
	asm volatile("movl %0, %%ds; movl %0, %%es; movl %0, %%ss" :: "r"(GDT_KERNEL_DS));
	asm volatile("movl %0, %%fs; movl %0, %%gs" :: "r"(0));
	asm volatile("ltr %w0" :: "r"(GDT_TSS));
	gdtr.base = CEA_BASE + CEA_GDT;
	asm volatile("lgdt %0" :: "m"(gdtr));
	struct desc_ptr idtr = { 256 * 16 - 1, CEA_BASE + CEA_IDT };
	asm volatile("lidt %0" :: "m"(idtr));

	/* GS base = the per-CPU entry page, through the cpu_entry_area. */
	wrmsr(MSR_GS_BASE, CEA_BASE + CEA_PERCPU);
	wrmsr(MSR_KERNEL_GS_BASE, 0);
}

/* SYSCALL/SYSRET: where SYSCALL goes (LSTAR), which selectors (STAR),
 * which RFLAGS bits it clears (IF among them: no interrupts in the
 * trampoline). */
void syscall_init(void)
{
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	wrmsr(MSR_STAR, ((u64)(GDT_USER32_CS) << 48) | ((u64)GDT_KERNEL_CS << 32));
	wrmsr(MSR_LSTAR, (u64)entry_SYSCALL_64);
	wrmsr(MSR_SYSCALL_MASK, 0x257fd5);  /* CF PF AF ZF SF TF IF DF OF IOPL NT RF AC ID */
}
