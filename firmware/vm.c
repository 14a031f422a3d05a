/*
 * vm.c - the kernel's page tables.
 *
 * paging_init() builds swapper_pg_dir, the kernel page tables that the
 * kernel half (PGD entries 256..511) of every process copies:
 *   - the direct map: all RAM at PAGE_OFFSET, RW, NX, with 1 GiB pages
 *     when the CPU has them, else 2 MiB, as Linux does; `directmap=4k|2m|1g`
 *     (or Linux's `nogbpages`) chooses.  The page size decides how many TLB
 *     entries the kernel needs to reach RAM through it: 4 KiB pages is
 *     what Linux falls back to with debug_pagealloc, and what the kernel
 *     pays for in TLB misses when it copies page-cache pages (pagecache.c);
 *   - the kernel image at its (possibly randomised) address, 4 KiB pages,
 *     W^X: text RX, rodata R NX, data and bss RW NX;
 *   - the cpu_entry_area (cpu_entry_area.c).
 * Global pages: with PTI off, all kernel mappings are global (they are
 * the same in every address space, so they can survive CR3 switches).
 * With PTI on, only what both the kernel and the user page tables map
 * identically is global: the entry text and the cpu_entry_area.  (Linux
 * with PTI also drops _PAGE_GLOBAL from the rest of the kernel.)
 *
 * Before the switch to swapper_pg_dir we run on boot.S's identity map,
 * with page_offset_base = 0, so __va(pa) = pa there too.
 */
#include "defs.h"
#include "cpu.h"
#include "mmu.h"
#include "x86.h"

u64 page_offset_base;   /* 0 until the direct map is live */
u64 phys_base;          /* set by kaslr_early() */
int paging_levels = 4;
u64 __supported_pte_mask = ~0UL;
u64 swapper_pgd_pa;

extern char _text[], _etext[], __entry_text_start[], __entry_text_end[];
extern char __start_rodata[], _erodata[], _sdata[], _end[];

static int pt_shift(int level) { return 12 + 9 * (level - 1); }   /* 1 = PTE */
int pgd_index(u64 va) { return (va >> pt_shift(paging_levels)) & 511; }

/* Entry for va at `level` (1 = PTE, 2 = PMD, 3 = PUD), creating the
 * tables above it when alloc is set.  NULL if missing or if a large page
 * is in the way. */
pte_t *pt_walk(pte_t *pgd, u64 va, int level, int alloc)
{
	pte_t *table = pgd;
	for (int l = paging_levels; l > level; l--) {
		pte_t *e = &table[(va >> pt_shift(l)) & 511];
		if (!(*e & _PAGE_PRESENT)) {
			if (!alloc)
				return NULL;
			pte_t *t = alloc_page_zeroed();
			if (!t)
				return NULL;
			*e = __pa(t) | (va < USER_TOP ? PAGE_TABLE_U : PAGE_TABLE_K);
		} else if (*e & _PAGE_PSE) {
			return NULL;
		}
		table = __va(*e & PTE_ADDR_MASK);
	}
	return &table[(va >> pt_shift(level)) & 511];
}

/* Map [va, va+len) to [pa, ...) with the largest pages allowed. */
void map_range(pte_t *pgd, u64 va, u64 pa, u64 len, u64 prot, u64 max_page)
{
	while (len) {
		u64 size = PAGE_SIZE;
		int level = 1;
		if (max_page >= PUD_SIZE && !((va | pa) & (PUD_SIZE - 1)) && len >= PUD_SIZE)
			size = PUD_SIZE, level = 3;
		else if (max_page >= PMD_SIZE && !((va | pa) & (PMD_SIZE - 1)) && len >= PMD_SIZE)
			size = PMD_SIZE, level = 2;
		pte_t *e = pt_walk(pgd, va, level, 1);
		if (!e)
			panic("map_range: cannot map %lx", va);
		*e = pa | (prot & __supported_pte_mask) | (level > 1 ? _PAGE_PSE : 0);
		va += size, pa += size, len -= size;
	}
}

static void map_kernel_section(pte_t *pgd, char *start, char *end, u64 prot)
{
	map_range(pgd, (u64)start, __pa(start), end - start, prot, PAGE_SIZE);
}

void paging_init(void)
{
	u64 glb = opt_pti ? 0 : _PAGE_GLOBAL;
	paging_levels = (read_cr4() & CR4_LA57) ? 5 : 4;
	if (!boot_cpu.pge)
		__supported_pte_mask &= ~_PAGE_GLOBAL;
	if (!boot_cpu.nx)
		__supported_pte_mask &= ~_PAGE_NX;

	u64 page = boot_cpu.gbpages ? PUD_SIZE : PMD_SIZE;
	if (opt_directmap_page == PUD_SIZE && !boot_cpu.gbpages)
		printk("directmap: the CPU has no 1 GiB pages: 2M pages\n");
	else if (opt_directmap_page)
		page = opt_directmap_page;
	u64 top = ram_end();
	u64 dm_size = (top + page - 1) & ~(page - 1);
	u64 base = kaslr_memory_base(top);

	pte_t *pgd = alloc_page_zeroed();
	swapper_pgd_pa = __pa(pgd);
	map_range(pgd, base, 0, dm_size, PAGE_KERNEL | glb, page);

	map_kernel_section(pgd, _text, __entry_text_start, PAGE_KERNEL_RX | glb);
	map_kernel_section(pgd, __entry_text_start, __entry_text_end, PAGE_KERNEL_RX | _PAGE_GLOBAL);
	map_kernel_section(pgd, __entry_text_end, _etext, PAGE_KERNEL_RX | glb);
	map_kernel_section(pgd, __start_rodata, _erodata, PAGE_KERNEL_RO | glb);
	map_kernel_section(pgd, _sdata, _end, PAGE_KERNEL | glb);
	cea_map(pgd);

	/* Switch.  The code and stack we run on are in the kernel image,
	 * mapped in both the old and the new page tables. */
	write_cr3(swapper_pgd_pa);
	page_offset_base = base;
	if (boot_cpu.pge)
		write_cr4(read_cr4() | CR4_PGE);

	printk("mm: PAGE_OFFSET=0x%016lx paging=%d-level\n", page_offset_base, paging_levels);
	printk("mm: kernel text at 0x%016lx\n", (u64)_text);
	printk("mm: direct map 0x%016lx-0x%016lx (%lu MiB, %s pages, NX%s)\n",
	       base, base + dm_size - 1, dm_size >> 20,
	       page == PUD_SIZE ? "1G" : page == PMD_SIZE ? "2M" : "4K", glb ? ", global" : "");
	printk("mm: kernel image: text 0x%lx-0x%lx RX, rodata 0x%lx-0x%lx R NX, data+bss 0x%lx-0x%lx RW NX\n",
	       (u64)_text, (u64)_etext, (u64)__start_rodata, (u64)_erodata, (u64)_sdata, (u64)_end);
	printk("mm: phys_base=0x%016lx swapper_pg_dir at phys 0x%lx\n", phys_base, swapper_pgd_pa);
}
