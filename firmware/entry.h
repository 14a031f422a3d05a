/*
 * entry.h - constants shared by the assembly entry code and C.
 *
 * The per-CPU entry page lives in the cpu_entry_area, so it is mapped in
 * BOTH page tables (kernel PGD and, with PTI, user PGD).  GS points at it
 * while in the kernel.  The trampoline code in entry.S can therefore read
 * and write it at the very first instructions after SYSCALL or an
 * interrupt, before CR3 has been switched to the kernel page tables.
 *
 *   offset 0    the TSS (104 bytes; sp0 = trampoline stack, sp2 = scratch)
 *   offset 104  I/O permission bitmap for ports 0x00..0xff (32 bytes)
 *   offset 256  top_of_stack: kernel stack top of the running process
 *   offset 264  flags: CPU_PTI (KPTI on), CPU_PCID (CR4.PCIDE is on)
 *   offset 272  user_pcid_flush_mask: bit n set = flush PCID (n | 0x800)
 *               at the next return to user space
 */
#ifndef ENTRY_H
#define ENTRY_H

/* GDT selectors, in Linux's layout (SYSCALL/SYSRET depend on the order). */
#define GDT_KERNEL_CS   0x10
#define GDT_KERNEL_DS   0x18
#define GDT_USER32_CS   0x23
#define GDT_USER_DS     0x2b
#define GDT_USER_CS     0x33
#define GDT_TSS         0x40
#define GDT_ENTRIES     10

#define TSS_sp0             4
#define TSS_sp2             20
#define TSS_ist1            36
#define TSS_iomap_base      102
#define TSS_SIZE            104
#define TSS_IOMAP           104
#define TSS_IOMAP_BYTES     32
#define CPU_TOP_OF_STACK    256
#define CPU_FLAGS           264
#define CPU_USER_PCID_FLUSH_MASK 272

#define CPU_PTI   1
#define CPU_PCID  2

/* PTI/PCID bits of CR3 (Linux names) */
#define PTI_USER_PGTABLE_BIT 12
#define PTI_USER_PCID_BIT    11
#define PTI_USER_PGTABLE_AND_PCID_MASK 0x1800
#define X86_CR3_PCID_NOFLUSH_BIT 63
#define X86_CR3_PCID_MASK    0xfff

/* pt_regs layout (see trap.h); offsets in bytes */
#define PTREGS_RDI     (14*8)
#define PTREGS_VECTOR  (15*8)
#define PTREGS_ORIG_AX (16*8)
#define PTREGS_IP      (17*8)
#define PTREGS_CS      (18*8)
#define PTREGS_FLAGS   (19*8)
#define PTREGS_SP      (20*8)
#define PTREGS_SS      (21*8)
#define PTREGS_SIZE    (22*8)

#define VEC_SYSCALL    0x100   /* pt_regs.vector for a SYSCALL entry */

#endif
