/*
 * ptdump.c - print page tables in the style of Linux's
 * /sys/kernel/debug/page_tables/current_kernel and current_user:
 *
 *   0xffff888000000000-0xffff888040000000           1G     RW         PSE GLB NX pud
 *
 * one line per run of addresses mapped at the same level with the same
 * flags (or not mapped), with "---[ name ]---" markers at the start of
 * the known regions.
 */
#include "defs.h"
#include "cpu.h"
#include "mmu.h"
#include "proc.h"
#include "x86.h"

struct marker { u64 addr; const char *name; };

struct pg_state {
	u64 start, prot;
	int level, started, next_marker, nmarkers;
	struct marker marker[6];
};

#define PRINT_BITS (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_PWT | _PAGE_PCD | \
		    _PAGE_PSE | _PAGE_GLOBAL | _PAGE_NX)

static const char *level_name(int level)
{
	static const char *const names[] = { "", "pte", "pmd", "pud", "p4d" };
	return level == paging_levels ? "pgd" : names[level];
}

static void print_range(struct pg_state *st, u64 end)
{
	u64 delta = end - st->start, pr = st->prot;
	const char *unit = "BKMGTPE";
	while (!(delta & 1023) && unit[1]) {
		delta >>= 10;
		unit++;
	}
	printk("0x%016lx-0x%016lx   %9lu%c ", st->start, end, delta, *unit);
	if (!(pr & _PAGE_PRESENT)) {
		printk("%30s", "");
	} else {
		printk("%s", pr & _PAGE_USER ? "USR " : "    ");
		printk("%s", pr & _PAGE_RW ? "RW " : "ro ");
		printk("%s", pr & _PAGE_PWT ? "PWT " : "    ");
		printk("%s", pr & _PAGE_PCD ? "PCD " : "    ");
		printk("%s", st->level > 1 && (pr & _PAGE_PSE) ? "PSE " : "    ");
		printk("%s", (st->level == 1 && (pr & _PAGE_PAT)) ? "PAT " : "    ");
		printk("%s", pr & _PAGE_GLOBAL ? "GLB " : "    ");
		printk("%s", pr & _PAGE_NX ? "NX " : "x  ");
	}
	printk("%s\n", level_name(st->level));
}

static void note_page(struct pg_state *st, u64 addr, int level, u64 prot)
{
	prot = (prot & _PAGE_PRESENT) ? prot & PRINT_BITS : 0;
	int at_marker = st->next_marker < st->nmarkers && addr >= st->marker[st->next_marker].addr;
	if (!st->started) {
		st->started = 1;
		printk("---[ %s ]---\n", st->marker[0].name);
		st->next_marker = 1;
	} else if (prot != st->prot || level != st->level || at_marker) {
		/*
		 * A run never spans the non-canonical hole: like Linux, end it at
		 * the top of the lower half (0x0000800000000000 with 4 levels).
		 */
		u64 lower_top = 1UL << (11 + 9 * paging_levels);
		print_range(st, st->start < lower_top && addr > lower_top ? lower_top : addr);
		while (st->next_marker < st->nmarkers && addr >= st->marker[st->next_marker].addr)
			printk("---[ %s ]---\n", st->marker[st->next_marker++].name);
	} else {
		return;
	}
	st->start = addr;
	st->prot = prot;
	st->level = level;
}

static void walk(struct pg_state *st, u64 *table, int level, u64 base)
{
	int shift = 12 + 9 * (level - 1), bits = 12 + 9 * paging_levels;
	for (int i = 0; i < 512; i++) {
		u64 va = base + ((u64)i << shift);
		if (level == paging_levels)     /* sign-extend: canonical address */
			va = (u64)((s64)(va << (64 - bits)) >> (64 - bits));
		u64 e = table[i];
		if (!(e & _PAGE_PRESENT))
			note_page(st, va, level, 0);
		else if (level == 1 || (e & _PAGE_PSE))
			note_page(st, va, level, e);
		else
			walk(st, __va(e & PTE_ADDR_MASK), level - 1, va);
	}
}

static void dump_pgd(u64 *pgd)
{
	struct pg_state st = {
		.nmarkers = 5,
		.marker = {
			{ 0, "User Space" },
			{ paging_levels == 5 ? 0xff00000000000000UL : 0xffff800000000000UL, "Kernel Space" },
			{ page_offset_base, "Low Kernel Mapping" },
			{ CEA_BASE, "CPU entry Area" },
			{ __START_KERNEL_map, "High Kernel Mapping" },
		},
	};
	walk(&st, pgd, paging_levels, 0);
	print_range(&st, 0);    /* the last run ends at 2^64 */
}

void ptdump_mm(struct mm *mm, const char *who)
{
	printk("ptdump: %s[%d] kernel PGD at phys 0x%lx (CR3 0x%lx)\n", who,
	       current->pid, __pa(mm->pgd), read_cr3());
	dump_pgd(mm->pgd);
	if (!opt_pti) {
		printk("ptdump: pti off: no user PGD, user mode runs on the kernel PGD\n");
		return;
	}
	printk("ptdump: %s[%d] user PGD at phys 0x%lx\n", who, current->pid,
	       __pa(mm->pgd) + PAGE_SIZE);
	dump_pgd(mm->pgd + 512);
}
