/*
 * main.c - start_kernel: the boot sequence after head64.S.
 *
 *   boot.S      multiboot, 32-bit -> long mode, early page tables
 *   head64.S    KASLR: relocate the kernel, jump to its new address
 *   start_kernel (here): console, memory map, page tables and direct
 *               map, PTI, descriptor tables, PCID, timer, processes
 */
#include "defs.h"
#include "cpu.h"
#include "mmu.h"
#include "port.h"
#include "x86.h"

extern char _text[];

void start_kernel(void)
{
	console_init();
	printk("Emu64 toy kernel (x86-64, Linux-style memory layout and KPTI)\n");
	printk("Command line: %s\n", boot_command_line);
	parse_early_options();
	use_pcid = boot_cpu.pcid && !opt_nopcid;
	use_invpcid = boot_cpu.invpcid && !opt_noinvpcid;

	printk("cpu: nx=%d pge=%d 1g-pages=%d pcid=%d invpcid=%d la57=%d rdrand=%d\n",
	       boot_cpu.nx, boot_cpu.pge, boot_cpu.gbpages, boot_cpu.pcid, boot_cpu.invpcid,
	       boot_cpu.la57, boot_cpu.rdrand);
	multiboot_mmap_init();
	paging_init();                  /* from here on: the direct map */
	printk("kaslr: %s\n", kaslr_enabled ? "on" : "off");
	pti_init();
	printk("pti: %s\n", opt_pti ? "on" : "off");

	cpu_init_tables();
	syscall_init();
	if (use_pcid)                   /* CR3 holds PCID 0 now: allowed */
		write_cr4(read_cr4() | CR4_PCIDE);
	this_cpu->flags = (opt_pti ? CPU_PTI : 0) | (use_pcid ? CPU_PCID : 0);
	flush_tlb_global();
	printk("pcid: %s\n", use_pcid ? (use_invpcid ? "on (invpcid)" : "on") : "off");
	printk("mm: %lu pages free (%lu KiB), RAM ends at 0x%lx\n", free_page_count(),
	       free_page_count() * 4, ram_end());

	emu_announce(EMU_OP_ANNOUNCE, EMU_KEY_TEXT, (u64)_text);
	emu_announce(EMU_OP_ANNOUNCE, EMU_KEY_PAGE_OFFSET, page_offset_base);
	emu_announce(EMU_OP_ANNOUNCE, EMU_KEY_SWAPPER_PGD, swapper_pgd_pa);

	spawn_init_programs();
	timer_init();                   /* last: the first tick is a full period away */
	scheduler_start();
}
