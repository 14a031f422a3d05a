/*
 * memlayout.h - where everything lives, physically and virtually.
 *
 * Physical memory (what multiboot reports; the default is 128 MiB):
 *
 *   0x00000000 +----------------------+
 *              | low RAM, BIOS, VGA   |  not used by the kernel
 *   0x00100000 +----------------------+
 *              | free pages           |  page allocator (kalloc.c)
 *   0x01000000 +----------------------+  LOAD_PHYS: multiboot loads the image here
 *              | toykernel image      |  text, rodata, data, bss
 *   _end       +----------------------+
 *              | free pages           |  page allocator
 *   RAM end    +----------------------+
 *
 * Virtual memory, 4-level paging (48-bit addresses), in Linux's layout:
 *
 *   0x0000000000000000 +------------------------+  PGD entries 0..255: user half,
 *                      | (unmapped)             |  different in every process
 *   0x0000000000400000 | user program text      |  USER_TEXT, shared RX pages
 *   0x00007f0000000000 | mmap() area            |  MMAP_BASE, grows up
 *   0x00007fffffffb000 | user stack (16 KiB)    |
 *   0x00007ffffffff000 +------------------------+  USER_STACK_TOP
 *                      |  non-canonical hole    |
 *   0xffff800000000000 +------------------------+  PGD entries 256..511: kernel half,
 *                      | (unmapped)             |  the same in every process
 *   0xffff888000000000 | direct map of all RAM  |  PAGE_OFFSET (+ KASLR, 1 GiB steps)
 *                      | (1 GiB, 2 MiB or 4 KiB |  __va(pa) = pa + PAGE_OFFSET
 *                      |  pages, RW, NX)        |  page size: directmap=
 *   0xfffffe0000000000 | cpu_entry_area         |  CEA_BASE: IDT, GDT, TSS+per-cpu,
 *                      |                        |  entry stack, IST stacks
 *   0xffffffff80000000 | __START_KERNEL_map     |  maps physical 0 (+ phys_base)
 *   0xffffffff81000000 | _text: kernel image    |  (+ KASLR, 2 MiB steps);
 *                      |  text RX, rodata R NX, |  __pa(x) = x - __START_KERNEL_map
 *                      |  data/bss RW NX        |           + phys_base
 *   0xffffffffffffffff +------------------------+
 *
 * 5-level paging (57-bit addresses, `la57`) keeps every kernel address
 * above except the direct map, which moves to 0xff11000000000000; the user
 * half grows to 0x00ffffffffffffff (we still put user memory low).
 *
 * With KPTI, every process has a second, "user" PGD (4 KiB after its
 * kernel PGD).  Its user half is the same as the kernel PGD's; its kernel
 * half maps only the cpu_entry_area and the entry text (see pti.c).
 */
#ifndef MEMLAYOUT_H
#define MEMLAYOUT_H

/* Constants are shared with assembly, which has no UL suffix. */
#ifdef __ASSEMBLER__
#define _UL(x) x
#else
#define _UL(x) x##UL
#endif

#define PAGE_SIZE          _UL(0x1000)
#define PMD_SIZE           _UL(0x200000)          /* 2 MiB */
#define PUD_SIZE           _UL(0x40000000)        /* 1 GiB */

#define LOAD_PHYS          _UL(0x1000000)         /* where multiboot loads us (16 MiB) */
#define __START_KERNEL_map _UL(0xffffffff80000000)
#define KERNEL_IMAGE_SIZE  _UL(0x40000000)        /* kernel text KASLR range: 1 GiB */

#define PAGE_OFFSET_L4     _UL(0xffff888000000000)
#define PAGE_OFFSET_L5     _UL(0xff11000000000000)
#define CEA_BASE           _UL(0xfffffe0000000000) /* -4UL << 39 */

/* cpu_entry_area pages, one CPU (offsets from CEA_BASE) */
#define CEA_IDT            _UL(0x0000)   /* read-only IDT */
#define CEA_GDT            _UL(0x1000)   /* read-only GDT */
#define CEA_PERCPU         _UL(0x2000)   /* TSS + per-cpu entry data (GS base) */
#define CEA_ENTRY_STACK    _UL(0x4000)   /* trampoline stack, 1 page; 0x3000 is a guard */
#define CEA_DF_STACK       _UL(0x6000)   /* IST1 for #DF, 2 pages; guard below */
#define CEA_NMI_STACK      _UL(0x9000)   /* IST2 for NMI, 2 pages; guard below */
#define CEA_SIZE           _UL(0xb000)

#define USER_TEXT          _UL(0x400000)
#define MMAP_BASE          _UL(0x7f0000000000)
#define USER_STACK_TOP     _UL(0x7ffffffff000)
#define USER_STACK_PAGES   4
#define USER_TOP           _UL(0x800000000000)    /* first non-user address we allow */

#define KSTACK_SIZE        (2 * PAGE_SIZE)     /* per-process kernel stack */

#endif
