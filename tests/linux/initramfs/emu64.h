/*
 * emu64.h - mark a measured region from an ordinary (unprivileged) program running under Emu64.
 *
 *     #include "emu64.h"
 *     EMU64_REGION_BEGIN(1);
 *     ... the code to measure ...
 *     EMU64_REGION_END(1);
 *
 * `emu64 run/boot --stats` then prints region.<name>.* counters for what ran between the two (every CPU
 * mode, the kernel's work for this program included), exactly as for a region the toy kernel marks through
 * its I/O port; `emu64 measure` reads the same regions (docs/MEASURE.md, "Marking a region from a user program").
 *
 * Each macro is one instruction, the multi-byte NOP 0F 1F 80 disp32 (nopl disp32(%rax)), whose displacement
 * is 0xE64 << 20 | id << 8 | op (op 1 = begin, 2 = end). The SDM defines it as doing nothing and it never
 * touches memory, so the program runs unchanged on real hardware, under QEMU or KVM: only Emu64 gives it a
 * meaning. ID is a constant from 0 to 4095 (it is encoded in the instruction); the toy kernel's names are
 * 1 syscalls, 2 touch, 3 pingpong, 4 mmap, 5 pagecache. The "memory" clobber keeps the compiler from moving
 * loads and stores across the marker.
 */
#ifndef EMU64_H
#define EMU64_H

#define EMU64_REGION_OP_BEGIN 1
#define EMU64_REGION_OP_END 2
#define EMU64_REGION_MARK(id, op) \
	__asm__ volatile(".byte 0x0f, 0x1f, 0x80\n\t.long %c0" : : "i"((0xE64u << 20) | (((id) & 0xFFFu) << 8) | (op)) : "memory")
#define EMU64_REGION_BEGIN(id) EMU64_REGION_MARK(id, EMU64_REGION_OP_BEGIN)
#define EMU64_REGION_END(id) EMU64_REGION_MARK(id, EMU64_REGION_OP_END)

#endif
