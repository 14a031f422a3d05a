/*
 * kaslr.c - Kernel Address Space Layout Randomisation.
 *
 * Two things move (unless "nokaslr"):
 *  - the kernel image, in 2 MiB steps inside the 1 GiB at
 *    __START_KERNEL_map (Linux: CONFIG_PHYSICAL_ALIGN, KERNEL_IMAGE_SIZE).
 *    Only the virtual address moves; the image stays at physical
 *    LOAD_PHYS, and phys_base absorbs the difference so that
 *    __pa(x) = x - __START_KERNEL_map + phys_base still holds.
 *  - the direct map (PAGE_OFFSET), in 1 GiB steps, as Linux's
 *    kernel_randomize_memory() places page_offset_base.
 * Entropy: RDRAND when CPUID has it (emu64 seeds it with --seed),
 * otherwise the time-stamp counter.
 */
#include "defs.h"
#include "cpu.h"
#include "mmu.h"
#include "x86.h"

struct multiboot_info;
extern u64 mb_info_phys;
extern u64 early_pd_k[512];
extern char _text[], _end[];

int kaslr_enabled;
u64 kernel_text_offset;

u64 kaslr_get_random(void)
{
	if (boot_cpu.rdrand) {
		for (int i = 0; i < 10; i++) {
			u64 v;
			u8 ok;
			asm volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok));
			if (ok)
				return v;
		}
	}
	u64 t = rdtsc();            /* fallback: mix the TSC */
	t ^= t >> 33;
	t *= 0xff51afd7ed558ccdUL;
	t ^= t >> 33;
	return t;
}

/*
 * Called by head64.S, still at the linked address, before the kernel is
 * relocated: store only numbers (no pointers) in globals here.  Returns
 * the offset by which the kernel image will move.
 */
u64 kaslr_early(void)
{
	u32 *mbi = (u32 *)__va(mb_info_phys);   /* identity map */
	if (mbi[0] & (1 << 2))                         /* flags: cmdline present */
		cmdline_init(mbi[4]);
	cpu_detect();
	kaslr_enabled = !cmdline_has("nokaslr");
	if (!kaslr_enabled)
		return 0;

	u64 image = ((u64)(_end - _text) + PMD_SIZE - 1) & ~(PMD_SIZE - 1);
	u64 slots = (KERNEL_IMAGE_SIZE - LOAD_PHYS - image) / PMD_SIZE + 1;
	u64 off = (kaslr_get_random() % slots) * PMD_SIZE;

	/* Map the new address range onto the same physical pages (the old
	 * range stays mapped: we are running there).  kernel.ld keeps the
	 * image under 2 MiB, so the two ranges never overlap. */
	for (u64 i = 0; i < image / PMD_SIZE; i++)
		early_pd_k[(LOAD_PHYS + off) / PMD_SIZE + i] = (LOAD_PHYS + i * PMD_SIZE) | 0x83;
	kernel_text_offset = off;
	phys_base = -off;
	return off;
}

/* Where the direct map starts; Linux's kernel_randomize_memory(). */
u64 kaslr_memory_base(u64 ram_end)
{
	u64 base = paging_levels == 5 ? PAGE_OFFSET_L5 : PAGE_OFFSET_L4;
	if (!kaslr_enabled)
		return base;
	const u64 TB = 1UL << 40;
	/* Region sizes in TiB: direct map (RAM + 10 TiB padding), vmalloc,
	 * vmemmap.  What is left between base and the cpu_entry_area is
	 * shared out as entropy; the direct map, first, gets a third. */
	u64 dm_tb = (ram_end + TB - 1) / TB + 10;
	u64 vmalloc_tb = paging_levels == 5 ? 12800 : 32;
	u64 vmemmap_tb = 1;
	u64 remain = CEA_BASE - base - (dm_tb + vmalloc_tb + vmemmap_tb) * TB;
	u64 entropy = remain / 3;
	u64 rand = (kaslr_get_random() % entropy) & ~(PUD_SIZE - 1);
	return base + rand;
}
