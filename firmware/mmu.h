/* mmu.h - page-table entry bits and page-table helpers (vm.c). */
#ifndef MMU_H
#define MMU_H
#include "types.h"
#include "memlayout.h"

#define _PAGE_PRESENT  BIT(0)
#define _PAGE_RW       BIT(1)
#define _PAGE_USER     BIT(2)
#define _PAGE_PWT      BIT(3)
#define _PAGE_PCD      BIT(4)
#define _PAGE_ACCESSED BIT(5)
#define _PAGE_DIRTY    BIT(6)
#define _PAGE_PSE      BIT(7)   /* leaf at PMD/PUD level (2 MiB / 1 GiB page) */
#define _PAGE_PAT      BIT(7)   /* ... but PAT in a PTE */
#define _PAGE_GLOBAL   BIT(8)
#define _PAGE_PAT_LARGE BIT(12)
#define _PAGE_NX       BIT(63)
#define PTE_ADDR_MASK  0x000ffffffffff000UL

/* Leaf permission sets (A and D preset for kernel pages, as Linux does). */
#define PAGE_KERNEL_RX  (_PAGE_PRESENT | _PAGE_ACCESSED)
#define PAGE_KERNEL_RO  (_PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_NX)
#define PAGE_KERNEL     (_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_NX)
#define PAGE_USER_RX    (_PAGE_PRESENT | _PAGE_USER)
#define PAGE_USER_RW    (_PAGE_PRESENT | _PAGE_USER | _PAGE_RW | _PAGE_NX)
/* Non-leaf entries: permissions are decided at the leaf. */
#define PAGE_TABLE_K    (_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED)
#define PAGE_TABLE_U    (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED)

#define PAGE_ALIGNED(x) (((x) & (PAGE_SIZE - 1)) == 0)

/* Set up by boot code (vm.c, kaslr.c); see memlayout.h. */
extern u64 page_offset_base;   /* PAGE_OFFSET: where the direct map starts */
extern u64 phys_base;          /* __pa fix-up for kernel-image addresses */
extern int paging_levels;      /* 4 or 5 */
extern u64 __supported_pte_mask; /* _PAGE_GLOBAL is dropped from it with PTI */

/* __pa/__va, with Linux's definitions: an address in the kernel image
 * (>= __START_KERNEL_map) is translated with phys_base, anything else
 * must be in the direct map. */
static inline u64 __phys_addr(u64 x)
{
	if (x >= __START_KERNEL_map)
		return x - __START_KERNEL_map + phys_base;
	return x - page_offset_base;
}
#define __pa(x) __phys_addr((u64)(x))
#define __va(x) ((void *)((u64)(x) + page_offset_base))

/* vm.c */
pte_t *pt_walk(pte_t *pgd, u64 va, int level, int alloc);
void map_range(pte_t *pgd, u64 va, u64 pa, u64 len, u64 prot, u64 max_page);
int pgd_index(u64 va);
u64 pte_table_flags(u64 va);

#endif
