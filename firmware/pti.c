/*
 * pti.c - Kernel Page-Table Isolation: what the user page tables map.
 *
 * With pti=on each process gets two PGDs in one 8 KiB-aligned block:
 *
 *   pgd       kernel PGD: user half + the whole kernel half
 *   pgd + 4K  user PGD:   user half + only this, of the kernel:
 *             - the cpu_entry_area: IDT, GDT, TSS + per-CPU entry data,
 *               entry (trampoline) stack, IST stacks;
 *             - the entry text (.entry.text, entry.S).
 *
 * Switching between the two is a matter of CR3 bit 12 (0x1000): that is
 * why the pair is 8 KiB aligned.  The user half is shared below the PGD:
 * both PGDs point at the same PUD pages (mm.c), but the kernel's copy of
 * each user PGD entry has NX set, so that the kernel can never execute
 * user memory even by mistake.
 *
 * The kernel half of every user PGD is copied from a template built
 * here once; it never changes after boot.
 */
#include "defs.h"
#include "cpu.h"
#include "mmu.h"

extern char __entry_text_start[], __entry_text_end[];
u64 pti_user_template_pa;

void pti_init(void)
{
	if (!opt_pti)
		return;
	pte_t *t = alloc_page_zeroed();
	pti_user_template_pa = __pa(t);
	cea_map(t);
	map_range(t, (u64)__entry_text_start, __pa(__entry_text_start),
		  __entry_text_end - __entry_text_start, PAGE_KERNEL_RX | _PAGE_GLOBAL, PAGE_SIZE);
}

void pti_clone_kernel_half(u64 *user_pgd)
{
	u64 *t = __va(pti_user_template_pa);
	memcpy(&user_pgd[256], &t[256], 256 * sizeof(u64));
}
