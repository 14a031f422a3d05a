/*
 * kalloc.c - physical memory: the multiboot memory map and a page
 * allocator.
 *
 * Usable RAM from 1 MiB up, minus the kernel image, is handed out by a
 * bump pointer; freed pages go on free lists (one for single pages, one
 * for 8 KiB-aligned pairs, which KPTI's PGD pairs and kernel stacks
 * need).  The lists are linked through the free pages themselves, by
 * PHYSICAL address, so they survive the switch from the early identity
 * map to the direct map.  Everything is deterministic.
 */
#include "defs.h"
#include "mmu.h"

struct mb_mmap_entry {
	u32 size;          /* of the rest of this entry */
	u64 addr, len;
	u32 type;          /* 1 = usable RAM */
} __attribute__((packed));

extern u64 mb_info_phys;
extern char _text[], _end[];

#define MAX_REGIONS 32
static struct { u64 start, end; } region[MAX_REGIONS];
static int nregions, bump_region;
static u64 bump_pa, ram_top, free_list[2], nfree;

static void add_region(u64 start, u64 end)
{
	start = (start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	end &= ~(PAGE_SIZE - 1);
	if (start >= end || nregions == MAX_REGIONS)
		return;
	region[nregions].start = start;
	region[nregions++].end = end;
	nfree += (end - start) / PAGE_SIZE;
}

void multiboot_mmap_init(void)
{
	u32 *mbi = (u32 *)__va(mb_info_phys);
	u64 kstart = __pa(_text), kend = __pa(_end);

	if (!(mbi[0] & (1 << 6)))
		panic("multiboot: no memory map");
	printk("BIOS-provided physical RAM map:\n");
	u64 p = mbi[12], end = p + mbi[11];     /* mmap_addr, mmap_length */
	while (p < end) {
		struct mb_mmap_entry *e = __va(p);
		u64 s = e->addr, t = e->addr + e->len;
		printk("multiboot: [mem 0x%016lx-0x%016lx] %s\n", s, t - 1,
		       e->type == 1 ? "usable" : "reserved");
		if (e->type == 1) {
			if (t > ram_top)
				ram_top = t;
			if (s < 0x100000)          /* leave the first MiB alone */
				s = 0x100000;
			if (s < kstart && t > kend) {   /* carve out the kernel */
				add_region(s, kstart);
				add_region(kend, t);
			} else if (t <= kstart || s >= kend) {
				add_region(s, t);
			} else if (s < kstart) {
				add_region(s, kstart);
			} else if (t > kend) {
				add_region(kend, t);
			}
		}
		p += e->size + 4;
	}
	if (!nregions)
		panic("multiboot: no usable memory");
	bump_pa = region[0].start;
}

u64 ram_end(void) { return ram_top; }
u64 free_page_count(void) { return nfree; }

void free_pages(u64 pa, int order)
{
	*(u64 *)__va(pa) = free_list[order];
	free_list[order] = pa;
	nfree += 1 << order;
}

/* order 0: one 4 KiB page; order 1: two, 8 KiB aligned.  0 = no memory. */
u64 alloc_pages(int order)
{
	u64 size = PAGE_SIZE << order;
	if (free_list[order]) {
		u64 pa = free_list[order];
		free_list[order] = *(u64 *)__va(pa);
		nfree -= 1 << order;
		return pa;
	}
	while (bump_region < nregions) {
		u64 pa = (bump_pa + size - 1) & ~(size - 1);
		if (pa + size <= region[bump_region].end) {
			for (; bump_pa < pa; bump_pa += PAGE_SIZE)  /* alignment gap */
				free_pages(bump_pa, 0), nfree--;
			bump_pa = pa + size;
			nfree -= 1 << order;
			return pa;
		}
		if (++bump_region < nregions)
			bump_pa = region[bump_region].start;
	}
	return 0;
}

void *alloc_page_zeroed(void)
{
	u64 pa = alloc_pages(0);
	if (!pa)
		return NULL;
	memset(__va(pa), 0, PAGE_SIZE);
	return __va(pa);
}

/*
 * n page frames spread evenly over the free RAM at the top of the last
 * region (never handed out yet), highest first, each given to take().  The
 * pages between them go on the free list, so later allocations interleave
 * with them, as in a system that has run a while.  Returns how many it
 * gave: fewer when that part of RAM is short (the caller takes the rest
 * from alloc_pages()).
 */
u64 alloc_pages_spread(u64 n, void (*take)(u64 pa, void *arg), void *arg)
{
	int last = nregions - 1;
	if (!n || bump_region > last)
		return 0;
	u64 lo = bump_region == last ? bump_pa : region[last].start, hi = region[last].end;
	u64 avail = (hi - lo) / PAGE_SIZE;
	if (n > avail)
		n = avail;
	if (!n)
		return 0;
	u64 stride = avail / n;
	for (u64 k = 0; k < n; k++) {
		u64 top = hi - k * stride * PAGE_SIZE, pa = top - PAGE_SIZE;
		for (u64 g = top - stride * PAGE_SIZE; g < pa; g += PAGE_SIZE)
			free_pages(g, 0), nfree--;      /* already counted as free */
		nfree--;
		take(pa, arg);
	}
	region[last].end = hi - n * stride * PAGE_SIZE;
	return n;
}
