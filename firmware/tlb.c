/*
 * tlb.c - address-space switches and TLB flushes, with Linux's PCID
 * (ASID) scheme.
 *
 * A PCID (process-context identifier, CR3 bits 11:0 when CR4.PCIDE=1)
 * tags every TLB entry, so translations of several address spaces can
 * live in the TLB at once and a CR3 write need not flush them.  We have
 * 6 dynamic ASIDs (TLB_NR_DYN_ASIDS), recycled round-robin:
 *
 *   kernel PCID = ASID + 1            1..6    (PCID 0: code unaware of PCIDs)
 *   user PCID   = kernel PCID | 0x800 2049..2054  (KPTI's user page tables)
 *
 * Each slot remembers which mm it last held (ctx_id) and how up to date
 * that mm's entries are (tlb_gen).  Switching to an mm still in its slot
 * with nothing changed: write CR3 with NOFLUSH (bit 63) and keep its TLB
 * entries.  Otherwise flush that PCID: write CR3 without NOFLUSH (kernel
 * PCID) and mark the user PCID in user_pcid_flush_mask, so the exit
 * trampoline (entry.S) flushes it when it switches to the user CR3.
 *
 * Without PCID every CR3 write flushes all non-global entries: ASID 0.
 */
#include "defs.h"
#include "cpu.h"
#include "mmu.h"
#include "proc.h"
#include "x86.h"

#define TLB_NR_DYN_ASIDS 6
#define TLB_SINGLE_PAGE_FLUSH_CEILING 33
#define CR3_NOFLUSH BIT(63)

static struct { u64 ctx_id, tlb_gen; } ctxs[TLB_NR_DYN_ASIDS];
static u16 next_asid = 1, loaded_asid;
static struct mm *loaded_mm;

static u64 kern_pcid(u16 asid) { return asid + 1; }
static u64 user_pcid(u16 asid) { return kern_pcid(asid) | (1 << PTI_USER_PCID_BIT); }

/* Ask the exit trampoline to flush this ASID's user PCID. */
static void invalidate_user_asid(u16 asid)
{
	if (!use_pcid || !opt_pti)
		return;
	this_cpu->user_pcid_flush_mask |= BIT(kern_pcid(asid));
}

static void choose_new_asid(struct mm *next, u16 *asid, int *need_flush)
{
	for (u16 a = 0; a < TLB_NR_DYN_ASIDS; a++) {
		if (ctxs[a].ctx_id != next->ctx_id)
			continue;
		*asid = a;
		*need_flush = ctxs[a].tlb_gen < next->tlb_gen;
		return;
	}
	*asid = next_asid++;            /* not found: take the next slot */
	if (*asid >= TLB_NR_DYN_ASIDS) {
		*asid = 0;
		next_asid = 1;
	}
	*need_flush = 1;
}

void switch_mm(struct mm *next)
{
	if (next == loaded_mm)
		return;
	loaded_mm = next;
	if (!use_pcid) {
		loaded_asid = 0;
		write_cr3(__pa(next->pgd));         /* flushes non-global entries */
		return;
	}
	u16 asid;
	int need_flush;
	choose_new_asid(next, &asid, &need_flush);
	loaded_asid = asid;
	if (need_flush) {
		invalidate_user_asid(asid);
		ctxs[asid].ctx_id = next->ctx_id;
		ctxs[asid].tlb_gen = next->tlb_gen;
		write_cr3(__pa(next->pgd) | kern_pcid(asid));
	} else {
		write_cr3(__pa(next->pgd) | kern_pcid(asid) | CR3_NOFLUSH);
	}
}

/* One user page: INVLPG drops it from the current (kernel) PCID.  Its
 * copy in the user PCID needs INVPCID, or a deferred flush of the whole
 * user PCID at the next exit to user space. */
static void flush_tlb_one_user(u64 addr)
{
	invlpg(addr);
	if (!opt_pti || !use_pcid)
		return;         /* without PCID the exit's CR3 write flushes anyway */
	if (use_invpcid)
		invpcid(0, user_pcid(loaded_asid), addr);
	else
		invalidate_user_asid(loaded_asid);
}

static void flush_tlb_local(void)
{
	invalidate_user_asid(loaded_asid);
	write_cr3(read_cr3());          /* bit 63 reads as 0: flushes this PCID */
}

/* The kernel removed user mappings [start, end) of mm (munmap). */
void flush_tlb_mm_range(struct mm *mm, u64 start, u64 end)
{
	mm->tlb_gen++;
	if (mm != loaded_mm)
		return;         /* switch_mm will see the stale tlb_gen */
	if ((end - start) / PAGE_SIZE <= TLB_SINGLE_PAGE_FLUSH_CEILING) {
		for (u64 a = start; a < end; a += PAGE_SIZE)
			flush_tlb_one_user(a);
	} else {
		flush_tlb_local();
	}
	if (use_pcid)
		ctxs[loaded_asid].tlb_gen = mm->tlb_gen;
}

/* Everything, global entries included. */
void flush_tlb_global(void)
{
	if (use_invpcid) {
		invpcid(2, 0, 0);
	} else {
		u64 cr4 = read_cr4();
		write_cr4(cr4 ^ CR4_PGE);
		write_cr4(cr4);
	}
}
