/*
 * mm.c - user address spaces: PGDs, user mappings, mmap/munmap.
 *
 * A new mm gets a PGD whose kernel half (entries 256..511) is a copy of
 * swapper_pg_dir's: every process shares the kernel's page tables below
 * the PGD.  With PTI the PGD is an 8 KiB-aligned pair (pti.c).
 */
#include "defs.h"
#include "cpu.h"
#include "mmu.h"
#include "proc.h"

#define PROT_WRITE     0x2
#define PROT_EXEC      0x4
#define MAP_PRIVATE    0x02
#define MAP_ANONYMOUS  0x20
#define MMAP_END       (USER_STACK_TOP - 0x1000000)
#define ENOMEM 12
#define EINVAL 22

extern char _text[], _end[];
static u64 next_ctx_id = 1;     /* 0 is the kernel's own (swapper) */

int mm_init(struct mm *mm)
{
	u64 pa = alloc_pages(opt_pti ? 1 : 0);
	if (!pa)
		return -ENOMEM;
	mm->pgd = __va(pa);
	memset(mm->pgd, 0, opt_pti ? 2 * PAGE_SIZE : PAGE_SIZE);
	u64 *k = __va(swapper_pgd_pa);
	memcpy(&mm->pgd[256], &k[256], 256 * sizeof(u64));
	if (opt_pti)
		pti_clone_kernel_half(mm->pgd + 512);
	mm->ctx_id = next_ctx_id++;
	mm->tlb_gen = 0;
	mm->nvma = 0;
	return 0;
}

/* Map one user page.  A new top-level entry goes into both PGDs; the
 * kernel's copy gets NX (pti.c). */
int mm_map_page(struct mm *mm, u64 va, u64 pa, u64 prot)
{
	int i = pgd_index(va);
	if (!(mm->pgd[i] & _PAGE_PRESENT)) {
		pte_t *t = alloc_page_zeroed();
		if (!t)
			return -ENOMEM;
		u64 e = __pa(t) | PAGE_TABLE_U;
		mm->pgd[i] = e | (opt_pti ? _PAGE_NX & __supported_pte_mask : 0);
		if (opt_pti)
			mm->pgd[512 + i] = e;
	}
	pte_t *pte = pt_walk(mm->pgd, va, 1, 1);
	if (!pte)
		return -ENOMEM;
	*pte = pa | (prot & __supported_pte_mask);
	return 0;
}

static int owned(u64 pa)        /* not a page of the kernel image (user text) */
{
	return pa < __pa(_text) || pa >= __pa(_end);
}

/* Unmap one page; free it if we own it.  Returns 1 if it was mapped. */
static int unmap_page(struct mm *mm, u64 va)
{
	pte_t *pte = pt_walk(mm->pgd, va, 1, 0);
	if (!pte || !(*pte & _PAGE_PRESENT))
		return 0;
	u64 pa = *pte & PTE_ADDR_MASK;
	*pte = 0;
	if (owned(pa))
		free_pages(pa, 0);
	return 1;
}

static void free_table(u64 pa, int level)
{
	u64 *t = __va(pa);
	for (int i = 0; i < 512; i++) {
		if (!(t[i] & _PAGE_PRESENT))
			continue;
		u64 child = t[i] & PTE_ADDR_MASK;
		if (level > 1)
			free_table(child, level - 1);
		else if (owned(child))
			free_pages(child, 0);
	}
	free_pages(pa, 0);
}

/* Free the user half and the PGD(s).  The caller has left this mm. */
void mm_destroy(struct mm *mm)
{
	for (int i = 0; i < 256; i++)
		if (mm->pgd[i] & _PAGE_PRESENT)
			free_table(mm->pgd[i] & PTE_ADDR_MASK, paging_levels - 1);
	free_pages(__pa(mm->pgd), opt_pti ? 1 : 0);
	mm->pgd = NULL;
}

/* Anonymous private memory, populated at once; first fit above MMAP_BASE. */
u64 mm_mmap(struct mm *mm, u64 len, u64 prot, u64 flags)
{
	if (!len || len > MMAP_END - MMAP_BASE ||
	    (flags & (MAP_PRIVATE | MAP_ANONYMOUS)) != (MAP_PRIVATE | MAP_ANONYMOUS) ||
	    mm->nvma == MAX_VMAS)
		return -EINVAL;
	len = (len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	u64 start = MMAP_BASE;
	int i = 0;
	for (; i < mm->nvma && mm->vma[i].start < start + len; i++)
		if (mm->vma[i].end > start)
			start = mm->vma[i].end;
	if (start + len > MMAP_END)
		return -ENOMEM;
	u64 pte_prot = _PAGE_PRESENT | _PAGE_USER | (prot & PROT_WRITE ? _PAGE_RW : 0) |
		(prot & PROT_EXEC ? 0 : _PAGE_NX);
	for (u64 a = start; a < start + len; a += PAGE_SIZE) {
		void *page = alloc_page_zeroed();
		if (!page || mm_map_page(mm, a, __pa(page), pte_prot)) {
			if (page)
				free_pages(__pa(page), 0);
			for (u64 b = start; b < a; b += PAGE_SIZE)
				unmap_page(mm, b);      /* never used: no TLB entries */
			return -ENOMEM;
		}
	}
	memmove(&mm->vma[i + 1], &mm->vma[i], (mm->nvma - i) * sizeof(struct vma));
	mm->vma[i].start = start;
	mm->vma[i].end = start + len;
	mm->nvma++;
	return start;
}

int mm_munmap(struct mm *mm, u64 addr, u64 len)
{
	if (!PAGE_ALIGNED(addr) || !len || addr >= USER_TOP || len > USER_TOP - addr)
		return -EINVAL;
	u64 end = addr + ((len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1));
	int removed = 0;
	for (int i = 0; i < mm->nvma; i++) {
		struct vma *v = &mm->vma[i];
		u64 s = v->start > addr ? v->start : addr, e = v->end < end ? v->end : end;
		if (s >= e)
			continue;
		for (u64 a = s; a < e; a += PAGE_SIZE)
			removed += unmap_page(mm, a);
		if (s == v->start && e == v->end) {             /* whole area */
			memmove(v, v + 1, (mm->nvma - i - 1) * sizeof(*v));
			mm->nvma--, i--;
		} else if (s == v->start) {
			v->start = e;
		} else if (e == v->end) {
			v->end = s;
		} else if (mm->nvma < MAX_VMAS) {              /* split in two */
			memmove(v + 1, v, (mm->nvma - i) * sizeof(*v));
			v->end = s;
			v[1].start = e;
			mm->nvma++, i++;
		}
	}
	if (removed)
		flush_tlb_mm_range(mm, addr, end);
	return 0;
}

/* May the kernel read (or write) [addr, addr+len) on behalf of user mm? */
int user_access_ok(struct mm *mm, u64 addr, u64 len, int write)
{
	if (addr >= USER_TOP || len > USER_TOP - addr)
		return 0;
	for (u64 a = addr & ~(PAGE_SIZE - 1); a < addr + len; a += PAGE_SIZE) {
		pte_t *pte = pt_walk(mm->pgd, a, 1, 0);
		u64 need = _PAGE_PRESENT | _PAGE_USER | (write ? _PAGE_RW : 0);
		if (!pte || (*pte & need) != need)
			return 0;
	}
	return 1;
}
